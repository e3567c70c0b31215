"""The simulated Responses API server: WebSocket mode and HTTP (SSE or JSON) on one port, on aiohttp.

``/v1/responses`` answers a WebSocket upgrade (WebSocket mode) and ``POST`` (SSE with ``stream: true``,
one JSON response object otherwise), so one ``base_url`` serves both, as on the real API. Every decision
about a request is made by :class:`labkit.live.server.engine.Engine`; this module serves HTTP (creates, the
stored-response surface of :mod:`labkit.live.server.surface`) and hands each WebSocket to a
:class:`~labkit.live.server.connection.Connection`.

Why aiohttp: it serves both on one port, starts inside a running loop in well under a millisecond with
``AppRunner``/``TCPSite`` (a notebook cell can start it and it stays up between cells), leaves signal
handlers and logging alone, and was the cheapest per WebSocket message of the candidates measured. Its
one trap: it does not close open WebSockets on shutdown, so :meth:`SimServer.stop` closes them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from labkit.live.netaddr import is_loopback_host
from labkit.live.server import surface
from labkit.live.server.connection import Connection, SessionDriver
from labkit.live.server.descriptors import default_max_connections, raise_open_files_limit
from labkit.live.server.engine import Engine, Turn, TurnFailed, TurnLog
from labkit.live.server.faults import DropConnection, Faults, injected_failure
from labkit.live.server.guard import ConnectionGuard
from labkit.live.server.ids import wall_clock
from labkit.live.server.jsonin import load_body
from labkit.live.server.jsonout import dumps
from labkit.live.server.logsafety import install_log_safety
from labkit.live.server.masking import MaskCheckingWebSocketResponse
from labkit.live.server.options import (
    CONNECTION_LIFETIME_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_HTTP_IDLE_TIMEOUT_S,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_WS_IDLE_TIMEOUT_S,
    MAX_ACTIVE_RESPONSES,
    MAX_LANES,
    ServerBounds,
)
from labkit.live.server.script import Script, load_script
from labkit.live.server.session import MAX_QUEUED, MAX_QUEUED_PER_LANE
from labkit.live.server.state import DEFAULT_MAX_STORED_BYTES
from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.wire.protocol import (
    ProtocolError,
    ServerEvent,
    error_body,
    internal_error,
    parse_create_json,
)

log = logging.getLogger("labkit.live.server")


def _profile_of(profile: str | Profile, tps: float | None) -> Profile:
    """The server's profile: a preset name or a Profile, with ``tps`` (if given) as its decode rate."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    if not isinstance(prof, Profile):
        raise ValueError(f"profile: must be a preset name or a Profile, got {type(profile).__name__}")
    return prof if tps is None else prof.with_(decode_tps=tps)


def _workload_of(workload: str | Workload) -> Workload:
    wl = load_workload(workload)
    if not isinstance(wl, Workload):
        raise ValueError(f"workload: must be a preset name or a Workload, got {type(workload).__name__}")
    return wl


def _check_listening(port: int, api_key: str | None) -> None:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port: must be an integer within [0, 65535], got {port!r}")
    if api_key is not None and not api_key:
        raise ValueError("api_key: must be a non-empty string or None")


class SimServer:
    """The simulated Responses API on one host and port.

    In a notebook cell (the server stays up between cells)::

        server = await SimServer.start(profile="websocket", tps=1000)
        ...
        await server.stop()

    In a script: ``async with SimServer(profile="websocket") as server: ...``.

    ``server.base_url`` (``http://127.0.0.1:PORT/v1``) is what the official SDK takes; WebSocket mode is
    at ``server.ws_url``. ``server.metrics`` counts connections, responses, cache hits and misses,
    errors, coalesced tokens, cached bytes, injected faults. ``server.bounds`` holds its bounds and timeouts
    (:class:`~labkit.live.server.options.ServerBounds`, each also a keyword argument here).
    """

    def __init__(
        self,
        profile: str | Profile = "websocket",
        workload: str | Workload = "codex_bugfix",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tps: float | None = None,
        seed: int | None = None,
        instant: bool = False,
        api_key: str | None = None,
        replicas: int | None = None,
        routing: str | None = None,
        faults: Faults | None = None,
        connection_lifetime_s: float = CONNECTION_LIFETIME_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_active_responses: int = MAX_ACTIVE_RESPONSES,
        max_lanes: int = MAX_LANES,
        max_stored: int = 100_000,
        max_stored_bodies: int = 10_000,
        max_stored_bytes: int = DEFAULT_MAX_STORED_BYTES,
        max_cached_bytes: int | None = None,
        shutdown_timeout_s: float = 2.0,
        spin_s: float = 0.0015,
        models: Sequence[str] = surface.DEFAULT_MODELS,
        script: Script | Mapping[str, Any] | str | Path | None = None,
        header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
        http_idle_timeout_s: float = DEFAULT_HTTP_IDLE_TIMEOUT_S,
        ws_idle_timeout_s: float = DEFAULT_WS_IDLE_TIMEOUT_S,
        max_connections: int | None = None,
        max_queued_per_lane: int = MAX_QUEUED_PER_LANE,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.profile = _profile_of(profile, tps)
        self.workload = _workload_of(workload)
        _check_listening(port, api_key)
        if isinstance(models, str) or not all(isinstance(m, str) and m for m in models):
            raise ValueError("models: must be a sequence of non-empty model ids")
        #: The bounds and timeouts, validated (labkit.live.server.options).
        self.bounds = ServerBounds(
            connection_lifetime_s=connection_lifetime_s,
            max_message_bytes=max_message_bytes,
            max_active_responses=max_active_responses,
            max_lanes=max_lanes,
            max_queued_per_lane=max_queued_per_lane,
            max_queued=max_queued,
            max_stored=max_stored,
            max_stored_bodies=max_stored_bodies,
            max_stored_bytes=max_stored_bytes,
            max_cached_bytes=max_cached_bytes,
            max_connections=max_connections,
            header_timeout_s=header_timeout_s,
            http_idle_timeout_s=http_idle_timeout_s,
            ws_idle_timeout_s=ws_idle_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        self.host = host
        self._port = port
        self.faults = faults or Faults()
        self.engine = self._engine(seed=seed, instant=instant, replicas=replicas, routing=routing, spin_s=spin_s)
        # A scripted model (labkit.live.server.script): a Script, a mapping, or a YAML file's path.
        self.engine.script = None if script is None else load_script(script)
        #: What ``GET /v1/models`` lists (creates accept any model name).
        self.models = tuple(models)
        self._models_created = int(wall_clock())
        self._api_key = api_key
        #: ``None`` until start: then the process's descriptor limit (raised to its hard limit) less a reserve.
        self.max_connections = self.bounds.max_connections
        self.guard: ConnectionGuard | None = None
        self._runner: web.AppRunner | None = None
        #: The loop the server listens on (set by start()).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[SessionDriver] = set()
        self._http_tasks: set[asyncio.Task[Any]] = set()

    def _engine(
        self, *, seed: int | None, instant: bool, replicas: int | None, routing: str | None, spin_s: float
    ) -> Engine:
        """The engine, which holds what is stored and cached, so it gets the storage bounds."""
        bounds = self.bounds
        return Engine(
            self.profile,
            self.workload,
            seed=seed,
            instant=instant,
            replicas=replicas,
            routing=routing,
            faults=self.faults,
            max_stored=bounds.max_stored,
            max_stored_bodies=bounds.max_stored_bodies,
            max_stored_bytes=bounds.max_stored_bytes,
            spin_s=spin_s,
            max_cached_bytes=bounds.max_cached_bytes,
        )

    # The bounds a connection reads, by the names they had as keyword arguments.

    @property
    def connection_lifetime_s(self) -> float:
        return self.bounds.connection_lifetime_s

    @property
    def max_message_bytes(self) -> int:
        return self.bounds.max_message_bytes

    @property
    def max_active_responses(self) -> int:
        return self.bounds.max_active_responses

    @property
    def max_lanes(self) -> int:
        return self.bounds.max_lanes

    @property
    def max_queued_per_lane(self) -> int:
        return self.bounds.max_queued_per_lane

    @property
    def max_queued(self) -> int:
        return self.bounds.max_queued

    @property
    def header_timeout_s(self) -> float:
        return self.bounds.header_timeout_s

    @property
    def http_idle_timeout_s(self) -> float:
        return self.bounds.http_idle_timeout_s

    @property
    def ws_idle_timeout_s(self) -> float:
        return self.bounds.ws_idle_timeout_s

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    async def start(cls, profile: str | Profile = "websocket", **options: Any) -> SimServer:
        """Create and start a server inside the running loop; returns once it accepts connections."""
        server = cls(profile, **options)
        await server._start()
        return server

    def web_app(self) -> web.Application:
        """The aiohttp application this server serves: its routes. The server listens with it;
        :mod:`labkit.live.memory` serves it over an in-memory pipe (no socket). Either attaches a
        :class:`ConnectionGuard` to the aiohttp server it runs the application on."""
        # aiohttp's own limit is a backstop well above ours, so that an oversize message gets a clear
        # error event and the connection stays usable; beyond it aiohttp closes with 1009.
        app = web.Application(client_max_size=self.max_message_bytes)
        app.router.add_get("/v1/responses", self._handle_get)
        app.router.add_post("/v1/responses", self._handle_post)
        app.router.add_post("/v1/responses/input_tokens", self._handle_input_tokens)
        app.router.add_post("/v1/responses/compact", self._handle_compact)
        app.router.add_get("/v1/responses/{response_id}", self._handle_retrieve)
        app.router.add_delete("/v1/responses/{response_id}", self._handle_delete)
        app.router.add_get("/v1/responses/{response_id}/input_items", self._handle_input_items)
        app.router.add_post("/v1/responses/{response_id}/cancel", self._handle_cancel)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model_id}", self._handle_model)
        app.router.add_get("/v1/labkit/metrics", self._handle_metrics)
        return app

    async def _start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("server: already started")
        # Client input reaches aiohttp's and asyncio's loggers: redact keys there, limit floods (logsafety).
        install_log_safety()
        if self.max_connections is None:
            self.max_connections = default_max_connections(raise_open_files_limit())
        guard = ConnectionGuard(max_connections=self.max_connections, header_timeout_s=self.header_timeout_s)
        self.guard = guard
        app = self.web_app()
        # keepalive_timeout: aiohttp closes a kept-alive connection idle (or halfway through its next request's
        # headers) this long; the guard bounds the first request's headers and the number of connections.
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=self.bounds.shutdown_timeout_s,
            keepalive_timeout=self.http_idle_timeout_s,
        )
        await runner.setup()
        assert runner.server is not None
        guard.attach(runner.server)
        if not is_loopback_host(self.host) and self._api_key is None:
            log.warning("listening on %s without an api_key: anyone who can reach it can use it", self.host)
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"port: cannot listen on {self.host}:{self._port} ({exc.strerror})") from exc
        self._runner = runner
        self._loop = asyncio.get_running_loop()
        # The bound address (port 0 picks one): aiohttp's public runner.addresses.
        addresses = runner.addresses
        if addresses:
            self._port = addresses[0][1]

    async def stop(self) -> None:
        """Close every WebSocket (code 1001), cancel open streams, stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._loop = None
        for conn in list(self._connections):
            await conn.shutdown()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.sink.close(1001, "server shutdown"), 1.0)
        for task in list(self._http_tasks):
            task.cancel()
        await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        # Both `async with SimServer(...)` and `async with await SimServer.start(...)` work.
        if self._runner is None:
            await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: what the official SDK and labkit's clients take as ``base_url``."""
        return f"{self.root_url}/v1"

    @property
    def url(self) -> str:
        """The same as :attr:`base_url`."""
        return self.base_url

    @property
    def ws_url(self) -> str:
        """``ws://HOST:PORT/v1/responses``: WebSocket mode."""
        return "ws" + self.root_url[len("http") :] + "/v1/responses"

    @property
    def metrics(self) -> dict[str, float]:
        """A snapshot of the server-side counters, plus the bytes held in connection caches."""
        m = self.engine.metrics.to_dict()
        cached = sum(c.cache.cached_tokens() for c in self._connections)
        m["cached_bytes"] = int(cached * self.profile.bytes_per_token)
        m["cached_responses"] = sum(len(c.cache.lanes) for c in self._connections)
        m["stored_responses"] = len(self.engine.store)
        m["stored_bytes"] = self.engine.bodies.bytes
        if self.guard is not None:
            m["refused_connections"] = self.guard.counters.refused_connections
            m["header_timeouts"] = self.guard.counters.header_timeouts
        return m

    @property
    def turn_log(self) -> list[TurnLog]:
        """The most recent turns as the server saw them: TurnSpec, CacheState, source, loop-clock times."""
        return list(self.engine.turn_log)

    def timing(self) -> list[dict[str, Any]]:
        """Per logged turn: the plan's server-side times against what the server achieved (seconds).

        ``planned_first_s`` / ``actual_first_s``: from the request's arrival to the first output delta;
        ``planned_done_s`` / ``actual_done_s``: to ``response.completed``. The difference is the server's
        own lateness (timer wake-ups, framing, the event loop), the part of a live measurement that the
        latency model does not contain.
        """
        return [self.engine.timing_row(t) for t in self.engine.turn_log]

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<SimServer {self.base_url} profile={self.profile.name} tps={self.profile.decode_tps:g} {state}>"

    # -- handlers ---------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self._api_key is None:
            return True
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._api_key.encode())

    def _error_response(self, exc: ProtocolError) -> web.Response:
        self.engine.metrics.errors += 1
        return web.json_response(exc.body(), status=exc.status)

    async def _handle_metrics(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized(request)
        return web.json_response(self.metrics)

    def _unauthorized(self, request: web.Request) -> web.Response:
        """401 as the real API: ``invalid_request_error`` with code ``invalid_api_key`` (the key is not echoed)."""
        self.engine.metrics.errors += 1
        if request.headers.get("Authorization"):
            message = "Incorrect API key provided."
        else:
            message = "You didn't provide an API key. Provide it in an Authorization header (Bearer auth)."
        return web.json_response(error_body("invalid_api_key", message, None), status=401)

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        ws = MaskCheckingWebSocketResponse(
            compress=False,
            max_msg_size=4 * self.max_message_bytes + (1 << 20),
            autoping=True,
            timeout=1.0,
        )
        if not self._authorized(request):
            # Before the upgrade is looked at: aiohttp's handshake logs the offered subprotocols, where a browser
            # client puts its key (openai-insecure-api-key.KEY). Refused with the API's 401 body.
            return self._unauthorized(request)
        if not ws.can_prepare(request).ok:
            return self._error_response(
                ProtocolError(
                    "websocket_upgrade_required",
                    "connection: GET /v1/responses is WebSocket mode; send a WebSocket upgrade or POST",
                    None,
                    status=426,
                )
            )
        await ws.prepare(request)
        conn = Connection(self, ws, request)
        self.attach(conn)
        try:
            await conn.serve()
        finally:
            self.detach(conn)
        return ws

    def attach(self, conn: SessionDriver) -> None:
        """Count and keep a WebSocket-mode connection (over aiohttp, or in memory) until :meth:`detach`."""
        m = self.engine.metrics
        m.connections += 1
        m.connections_open += 1
        self._connections.add(conn)

    def detach(self, conn: SessionDriver) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            self.engine.metrics.connections_open -= 1

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        # Each lookup of the running loop is a getpid() system call on Python 3.11: the loop the server
        # listens on is kept (an application served without start(), in memory, looks it up).
        loop = self._loop or asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is not None:
            self._http_tasks.add(task)
        try:
            return await self._post(request, loop)
        finally:
            if task is not None:
                self._http_tasks.discard(task)

    async def _read_body(self, request: web.Request) -> bytes:
        content = request.content
        if content.is_eof():
            # The whole body came in with the headers (a create of a few kilobytes is one read off the socket):
            # taken from the stream's buffer at once, without request.read()'s loop of awaits and its copy. The
            # same limit applies (the application's client_max_size).
            data = content.read_nowait()
            if len(data) > self.max_message_bytes:
                raise self._too_large()
            return data
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise self._too_large() from None

    def _too_large(self) -> ProtocolError:
        return ProtocolError(
            "request_too_large", f"body: larger than the limit of {self.max_message_bytes} bytes", None, status=413
        )

    async def _post(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> web.StreamResponse:
        t0 = loop.time()
        engine = self.engine
        engine.metrics.http_requests += 1
        if not self._authorized(request):
            return self._unauthorized(request)
        try:
            req = parse_create_json(load_body(await self._read_body(request), "body"))
            resolved = engine.resolve(req, transport="http", t0=t0)
            if not req.stream and engine.due_at_once(resolved):
                # Instant mode, nothing drawn against it: the Response assembled whole, no turn to wait in.
                return _json_answer(engine.answer_at_once(resolved, loop.time()))
            turn = engine.pace(resolved, paced=req.stream)
        except ProtocolError as exc:
            return self._error_response(exc)
        except Exception:
            # The edge's catch-all: a bug costs this request (the API's 500 body), logged once.
            log.exception("labkit server: a create request failed")
            return self._error_response(internal_error())
        if req.stream:
            return await self._stream(request, turn, loop)
        return await self._answer(request, turn, loop)

    async def _answer(self, request: web.Request, turn: Turn, loop: asyncio.AbstractEventLoop) -> web.StreamResponse:
        """A non-streaming answer that waits for its plan (timing on) or carries a drawn fault."""
        try:
            events = await self.engine.run(turn, None, loop)
        except TurnFailed:
            return self._error_response(injected_failure())
        except DropConnection:
            return self._abort(request)
        except Exception:
            log.exception("labkit server: response failed")
            return self._error_response(internal_error())
        # Assembled whole by the engine (no stream events): the Response response.completed would carry, in the
        # bytes the store encoded it in when it stored it.
        return _json_answer(turn.answer if turn.answer is not None else dumps(events.final or events.response()))

    async def _stream(self, request: web.Request, turn: Turn, loop: asyncio.AbstractEventLoop) -> web.StreamResponse:
        """A streamed answer: its events as SSE, each batch of events due together in one write."""
        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await resp.prepare(request)

        async def emit(events: list[ServerEvent]) -> None:
            # One write per batch of events due together (fewer syscalls and less framing per request).
            await resp.write(b"".join([e.to_sse() for e in events]))

        try:
            await self.engine.run(turn, emit, loop)
        except TurnFailed:
            pass  # response.failed already went out on the stream.
        except DropConnection:
            return self._abort(request, resp)
        except (ConnectionError, RuntimeError):
            return resp
        except Exception:
            # A bug costs this response only: a started stream ends response.failed, as over WebSocket.
            log.exception("labkit server: response failed")
            ev = turn.events
            with contextlib.suppress(ConnectionError, RuntimeError):
                if not ev.terminal:
                    await resp.write(ev.failed("server_error", "The server had an internal error.").to_sse())
        await resp.write_eof()
        return resp

    def _abort(self, request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return resp if resp is not None else web.Response(status=500)

    # -- the rest of the surface (labkit.live.server.surface) -----------------------------------------

    async def _surface(self, request: web.Request, call: Any) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized(request)
        self.engine.metrics.http_requests += 1
        try:
            return _json_answer(await call())
        except ProtocolError as exc:
            return self._error_response(exc)

    async def _json_body(self, request: web.Request) -> Any:
        return load_body(await self._read_body(request), "body")

    async def _handle_retrieve(self, request: web.Request) -> web.Response:
        rid = request.match_info["response_id"]

        async def call() -> bytes:
            if request.query.get("stream") in ("true", "1"):
                raise ProtocolError(
                    "invalid_value", "stream: replaying a stored response is not supported by the simulator", "stream"
                )
            return surface.retrieve(self.engine, rid)

        return await self._surface(request, call)

    async def _handle_delete(self, request: web.Request) -> web.Response:
        rid = request.match_info["response_id"]

        async def call() -> dict[str, Any]:
            return surface.delete(self.engine, rid)

        return await self._surface(request, call)

    async def _handle_input_items(self, request: web.Request) -> web.Response:
        rid = request.match_info["response_id"]

        async def call() -> dict[str, Any]:
            return surface.input_items(self.engine, rid, request.query)

        return await self._surface(request, call)

    async def _handle_cancel(self, request: web.Request) -> web.Response:
        rid = request.match_info["response_id"]

        async def call() -> dict[str, Any]:
            return surface.cancel(self.engine, rid)

        return await self._surface(request, call)

    async def _handle_input_tokens(self, request: web.Request) -> web.Response:
        async def call() -> dict[str, Any]:
            return surface.count_input_tokens(self.engine, await self._json_body(request))

        return await self._surface(request, call)

    async def _handle_compact(self, request: web.Request) -> web.Response:
        async def call() -> dict[str, Any]:
            return surface.compact(self.engine, await self._json_body(request))

        return await self._surface(request, call)

    async def _handle_models(self, request: web.Request) -> web.Response:
        async def call() -> dict[str, Any]:
            return surface.list_models(self.models, self._models_created)

        return await self._surface(request, call)

    async def _handle_model(self, request: web.Request) -> web.Response:
        model_id = request.match_info["model_id"]

        async def call() -> dict[str, Any]:
            return surface.retrieve_model(self.models, model_id, self._models_created)

        return await self._surface(request, call)


def _json_answer(obj: Any) -> web.Response:
    """A 200 ``application/json`` answer: compact UTF-8 JSON (:mod:`labkit.live.server.jsonout`); bytes are
    JSON already (a stored response)."""
    body = obj if isinstance(obj, bytes) else dumps(obj)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


__all__ = ["SimServer"]
