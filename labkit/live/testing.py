"""The simulator as a test fixture: started on its own loop in a thread, with what the agent sent, typed.

:class:`ResponsesApi` runs a :class:`~labkit.live.server.SimServer` on a private event loop in a background
thread, so any test can use it: synchronous code with the sync ``OpenAI`` client, ``pytest-asyncio`` or ``anyio``
tests with ``AsyncOpenAI`` or the Agents SDK, whatever loop they run. Every request the server accepted is kept
as a :class:`~labkit.wire.protocol.CreateRequest` in :attr:`ResponsesApi.requests`, in arrival order, for
assertions. The pytest fixtures (``responses_api``, ``responses_api_session``) are in :mod:`labkit.pytest_plugin`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.live.server.app import SimServer
from labkit.live.server.engine import Resolved
from labkit.live.server.script import Script, load_script
from labkit.wire.protocol import CreateRequest

__all__ = ["DEFAULT_OPTIONS", "ResponsesApi"]

#: A fixture's server unless a test says otherwise: short rollouts, no waits.
DEFAULT_OPTIONS: dict[str, Any] = {"profile": "websocket", "workload": "fast_test", "instant": True}


class ResponsesApi:
    """A simulated Responses API for one test (or session), on its own loop in a thread."""

    api_key = "sk-labkit-test"

    def __init__(self, **options: Any) -> None:
        self.options = {**DEFAULT_OPTIONS, **options}
        self._lock = threading.Lock()
        self._requests: list[CreateRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.server: SimServer | None = None

    # -- lifecycle --
    def start(self) -> ResponsesApi:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self.server = loop.run_until_complete(SimServer.start(**self.options))
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                return
            self._record_requests(self.server)
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="labkit-responses-api", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("responses_api: the simulator did not start within 30 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def __enter__(self) -> ResponsesApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record_requests(self, server: SimServer) -> None:
        # Every create is resolved once, streamed or not, over either transport (Engine.resolve).
        resolve = server.engine.resolve

        def recording_resolve(request: CreateRequest, **kwargs: Any) -> Resolved:
            with self._lock:
                self._requests.append(request)
            return resolve(request, **kwargs)

        server.engine.resolve = recording_resolve  # type: ignore[method-assign]

    # -- what a test uses --
    @property
    def _server(self) -> SimServer:
        if self.server is None:
            raise RuntimeError("responses_api: not started")
        return self.server

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` of the official SDK (WebSocket mode derives from it)."""
        return self._server.base_url

    @property
    def ws_url(self) -> str:
        return self._server.ws_url

    @property
    def requests(self) -> list[CreateRequest]:
        """Every ``response.create`` / ``POST /v1/responses`` the server accepted, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> CreateRequest:
        reqs = self.requests
        if not reqs:
            raise AssertionError("responses_api: the agent sent no request")
        return reqs[-1]

    def tool_outputs(self) -> list[dict[str, Any]]:
        """The ``function_call_output`` items the agent sent, in order."""
        return [item for r in self.requests for item in r.input if item.get("type") == "function_call_output"]

    def clear(self) -> None:
        """Forget the requests seen so far (a session-wide server between tests)."""
        with self._lock:
            self._requests.clear()

    def use_script(self, script: Script | Mapping[str, Any] | str | Path | None) -> None:
        """What the model does from now on (``None``: the workload's output)."""
        self._server.engine.script = None if script is None else load_script(script)

    @property
    def metrics(self) -> dict[str, float]:
        return self._server.metrics

    def client(self, **kwargs: Any) -> Any:
        """A sync ``openai.OpenAI`` client pointed at the simulator."""
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.api_key, **kwargs)

    def async_client(self, **kwargs: Any) -> Any:
        """An ``openai.AsyncOpenAI`` client pointed at the simulator."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, **kwargs)
