"""HTTP: ``POST /v1/responses`` on httpx (what the official SDK uses), streamed as SSE or as one JSON body."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import httpx
from httpx_sse import EventSource

# httpx loads its async network backend lazily on the first request (~25 ms on this kind of machine),
# which would land in the first turn's measured time: load it with the client instead.
try:
    import anyio._backends._asyncio  # noqa: F401
    import httpcore._backends.anyio  # noqa: F401
except ImportError:  # pragma: no cover - private modules; only a warm-up
    pass

from labkit.live.client.config import auth_headers, is_loopback, resolve_api_key, resolve_base_url, responses_url
from labkit.live.client.record import Exchange, dumps, request_input_tokens
from labkit.live.client.transport import Mode, Steer
from labkit.wire.protocol import parse_server_event


class HttpClient:
    """A Responses API client over HTTP, every event timestamped.

    ``keep_alive=True`` reuses one pooled connection across requests, as the SDK does; ``False`` opens a new
    connection per request (the pool keeps none), so each request pays the handshake, recorded as its
    ``connect`` span. Whether a request is stateless or chained is the body's business
    (``previous_response_id`` with ``store=true``): see :mod:`labkit.live.runner`.
    """

    mode: Mode = "http"
    #: HTTP has no ``response.steer``: a steering user's input goes with the next request.
    steering = False

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        keep_alive: bool = True,
        stream: bool = True,
        timeout: float | None = 300.0,
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.url = responses_url(self.base_url)
        self._api_key = resolve_api_key(api_key)
        self.keep_alive = keep_alive
        self.stream = stream
        #: Seconds to wait for a whole response; the connection is dropped when it runs out.
        self.timeout = timeout
        self._headers = {"Content-Type": "application/json", **auth_headers(self._api_key), **(headers or {})}
        limits = httpx.Limits(max_keepalive_connections=8 if keep_alive else 0, max_connections=64)
        self._client = httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            # Loopback never goes through a proxy from the environment.
            trust_env=not is_loopback(self.url),
        )
        #: Connections opened so far.
        self.connections = 0

    async def create(
        self,
        body: dict[str, Any],
        *,
        stream: bool | None = None,
        timeout: float | None = None,
        steer: Steer | None = None,
    ) -> Exchange:
        """POST one create request and read its answer; never raises on a server-side failure: the
        returned :class:`Exchange` says what happened (``status``, ``error``, ``http_status``)."""
        if steer is not None:
            raise ValueError("steer: response.steer exists only in WebSocket mode")
        streaming = self.stream if stream is None else stream
        # Serialised before the clock starts: the exchange begins when the request is ready to go.
        payload = dumps({**body, "stream": streaming}).encode()
        ntokens = request_input_tokens(body)
        ex = Exchange(t_start=time.perf_counter(), request_bytes=len(payload), request_tokens=ntokens)
        ex.chained = bool(body.get("previous_response_id"))

        async def trace(name: str, info: dict[str, Any]) -> None:
            # The handshake ends when TCP (and TLS, if any) is up; the request is written right after.
            if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
                ex.t_connected = time.perf_counter()
                if name == "connection.connect_tcp.complete":
                    self.connections += 1
            elif name.endswith("send_request_headers.started"):
                ex.t_sent = time.perf_counter()

        headers = self._headers if streaming else {**self._headers, "Accept": "application/json"}
        if streaming:
            headers = {**headers, "Accept": "text/event-stream"}
        limit = self.timeout if timeout is None else timeout
        request = self._client.build_request(
            "POST", self.url, content=payload, headers=headers, extensions={"trace": trace}
        )
        try:
            async with asyncio.timeout(limit):
                response = await self._client.send(request, stream=True)
                try:
                    await self._read(ex, response)
                finally:
                    await response.aclose()
        except TimeoutError:
            ex.fail(time.perf_counter(), "timeout", "timeout", f"no complete response within {limit} s")
        except httpx.TimeoutException as exc:
            ex.fail(time.perf_counter(), "timeout", "timeout", f"{type(exc).__name__}: {exc}")
        except httpx.TransportError as exc:
            ex.fail(time.perf_counter(), "dropped", "connection_closed", f"{type(exc).__name__}: {exc}")
        if not ex.t_sent:
            ex.t_sent = ex.t_connected or ex.t_start
        return ex

    async def _read(self, ex: Exchange, response: httpx.Response) -> None:
        ex.http_status = response.status_code
        ctype = response.headers.get("content-type", "")
        if response.status_code >= 400:
            raw = await response.aread()
            t = time.perf_counter()
            ex.events.append((t, f"http.{response.status_code}"))
            err = _error_body(raw)
            ex.fail(
                t,
                "error",
                str(err.get("code") or f"http_{response.status_code}"),
                str(err.get("message") or raw[:200].decode(errors="replace")),
                response.status_code,
            )
            ex.error = {**(ex.error or {}), **err}
            return
        if "text/event-stream" in ctype:
            ended = False
            # Read the stream to its end even after the terminal event, so the connection goes back
            # to the pool (closing a half-read response drops it and the next request reconnects).
            async for sse in EventSource(response).aiter_sse():
                if ended:
                    continue
                t = time.perf_counter()
                try:
                    event = parse_server_event(sse.data)
                except ValueError:
                    continue
                ended = ex.on_event(t, event, len(sse.data))
            if not ended:
                ex.fail(
                    time.perf_counter(), "dropped", "stream_ended", "the event stream ended before a terminal event"
                )
            return
        raw = await response.aread()
        t = time.perf_counter()
        ex.events.append((t, "response"))
        ex.received_bytes = len(raw)
        try:
            obj = json.loads(raw)
        except ValueError:
            ex.fail(t, "error", "invalid_json", "the response body is not JSON")
            return
        ex.finish(t, obj, obj.get("status") if isinstance(obj, dict) else None)

    async def follow(self, *, timeout: float | None = None, input: Sequence[dict[str, Any]] = ()) -> Exchange:
        """HTTP has no steering, so the server never starts a response by itself: there is nothing to follow."""
        raise ValueError("follow: only WebSocket mode starts a steered response's successor by itself")

    async def reconnect(self) -> None:
        """Nothing to drop: an HTTP server keeps no connection-scoped state (pooled connections stay)."""

    async def close(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _error_body(raw: bytes) -> dict[str, Any]:
    """The ``error`` object of an HTTP error body (``{"error": {type, code, message, param}}``)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return {}
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return dict(obj["error"])
    return {}
