"""The simulated Responses API server: WebSocket mode and HTTP (SSE or JSON) on one port, on aiohttp.

``/v1/responses`` answers a WebSocket upgrade (WebSocket mode) and ``POST`` (SSE with ``stream: true``,
one JSON response object otherwise), so one ``base_url`` serves both, as on the real API. Every decision
about a request is made by :class:`labkit.live.server.engine.Engine`; this module only frames and sends.

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
import math
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from labkit.live.netaddr import is_loopback_host
from labkit.live.server.engine import Engine, LaneCache, TurnFailed, TurnLog
from labkit.live.server.faults import DropConnection, Faults, injected_failure
from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.wire.protocol import (
    CreateRequest,
    ProtocolError,
    error_body,
    parse_client_event,
    parse_create_body,
    sse_frame,
    ws_frame,
)

log = logging.getLogger("labkit.live.server")

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Documented WebSocket-mode limits: active responses per connection (more are queued) and named lanes.
MAX_ACTIVE_RESPONSES = 16
MAX_LANES = 32


class _Lane:
    __slots__ = ("busy", "queue", "task")

    def __init__(self) -> None:
        self.queue: deque[tuple[CreateRequest, float, bool]] = deque()
        self.task: asyncio.Task[None] | None = None
        self.busy = False


class _Connection:
    """One WebSocket-mode connection: its lanes, its cache, its lifetime."""

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server = server
        self.engine = server.engine
        self.ws = ws
        self.request = request
        self.cache = LaneCache(server.engine.cache_budget)
        self.lanes: dict[str | None, _Lane] = {}
        self.active = asyncio.Semaphore(server.max_active_responses)
        self.replica = server.engine.replicas.route(f"ws{id(self)}") if server.engine.replicas.count > 1 else 0
        self.events_sent = 0
        self.closing = False
        self._expiry: asyncio.TimerHandle | None = None
        self._expire_task: asyncio.Task[None] | None = None

    async def emit(self, event: dict[str, Any]) -> None:
        limit = self.server.faults.drop_after_events
        if limit is not None and self.events_sent >= limit:
            self.engine.metrics["faults_dropped"] += 1
            raise DropConnection()
        self.events_sent += 1
        self.engine.metrics["events_sent"] += 1
        await self.ws.send_str(ws_frame(event))

    async def send_error(self, exc: ProtocolError, stream_id: str | None = None) -> None:
        self.engine.metrics["errors"] += 1
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(ws_frame(exc.event(stream_id=stream_id)))

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        lifetime = self.server.connection_lifetime_s
        if math.isfinite(lifetime):
            self._expiry = loop.call_later(lifetime, self._expire)
        try:
            async for msg in self.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.on_message(msg.data, loop.time())
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self.shutdown()

    async def on_message(self, data: str | bytes, t_recv: float) -> None:
        if self.closing:
            return
        try:
            request = parse_client_event(data, max_bytes=self.server.max_message_bytes)
        except ProtocolError as exc:
            await self.send_error(exc)
            return
        key = request.stream_id
        lane = self.lanes.get(key)
        if lane is None:
            named = sum(1 for k in self.lanes if k is not None)
            if key is not None and named >= self.server.max_lanes:
                await self.send_error(
                    ProtocolError(
                        "websocket_stream_limit_reached",
                        f"stream_id: this connection already has {named} lanes (the limit)",
                        "stream_id",
                    ),
                    stream_id=key,
                )
                return
            lane = self.lanes[key] = _Lane()
        if key is None and (lane.busy or lane.queue):
            # The default lane runs one response at a time; named lanes queue instead.
            await self.send_error(
                ProtocolError(
                    "response_in_progress",
                    "stream_id: a response is already in progress on this connection's default lane; "
                    "wait for it to finish, or name a lane with stream_id",
                    "stream_id",
                )
            )
            return
        lane.queue.append((request, t_recv, lane.busy or bool(lane.queue)))
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane))

    async def _drain(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while lane.queue and not self.closing:
            request, t_recv, queued = lane.queue.popleft()
            lane.busy = True
            try:
                waited = self.active.locked()
                async with self.active:
                    # A create that waited (behind its lane or the active limit) starts its clock when it
                    # leaves the queue; otherwise at its arrival.
                    await self._run(request, loop.time() if queued or waited else t_recv)
            finally:
                lane.busy = False

    async def _run(self, request: CreateRequest, t0: float) -> None:
        engine = self.engine
        try:
            turn = engine.prepare(
                request, transport="websocket", t0=t0, conn_cache=self.cache, conn_replica=self.replica
            )
        except ProtocolError as exc:
            await self.send_error(exc, stream_id=request.stream_id)
            return
        try:
            await engine.run(turn, self.emit)
        except TurnFailed:
            await self.send_error(injected_failure(), stream_id=request.stream_id)
        except DropConnection:
            self.abort()
        except (ConnectionError, RuntimeError) as exc:
            # The client went away mid-stream: nothing to tell it; the parent stays valid.
            log.debug("websocket send failed: %s", type(exc).__name__)
        except Exception:
            # A bug must cost one response, not the connection or the server.
            log.exception("labkit server: response failed")
            await self.send_error(
                ProtocolError(
                    "server_error", "The server had an internal error.", None, status=500, type="server_error"
                ),
                stream_id=request.stream_id,
            )

    def abort(self) -> None:
        """Cut the connection without a close frame, as a network failure would."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def _expire(self) -> None:
        self._expire_task = asyncio.create_task(self._close_expired())

    async def _close_expired(self) -> None:
        await self._cancel_lanes()
        await self.send_error(
            ProtocolError(
                "websocket_connection_limit_reached",
                f"connection: reached its lifetime limit of {self.server.connection_lifetime_s:g} s; "
                "open a new connection to continue",
                None,
            )
        )
        with contextlib.suppress(Exception):
            await self.ws.close(code=1000, message=b"connection lifetime limit reached")

    async def _cancel_lanes(self) -> None:
        self.closing = True
        tasks = [lane.task for lane in self.lanes.values() if lane.task is not None and not lane.task.done()]
        for task in tasks:
            task.cancel()
        # return_exceptions: the lanes' own CancelledErrors are collected; a cancellation of the caller
        # still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await self._cancel_lanes()
        # A closed connection's cache is gone: give its bytes back to the server-wide budget.
        self.cache.clear()


class SimServer:
    """The simulated Responses API on one host and port.

    In a notebook cell (the server stays up between cells)::

        server = await SimServer.start(profile="websocket", tps=1000)
        ...
        await server.stop()

    In a script: ``async with SimServer(profile="websocket") as server: ...``.

    ``server.base_url`` (``http://127.0.0.1:PORT/v1``) is what the official SDK takes; WebSocket mode is
    at ``server.ws_url``. ``server.metrics`` counts connections, responses, cache hits and misses,
    errors, coalesced tokens, cached bytes, injected faults.
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
        connection_lifetime_s: float = 3600.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_active_responses: int = MAX_ACTIVE_RESPONSES,
        max_lanes: int = MAX_LANES,
        max_stored: int = 100_000,
        max_cached_bytes: int | None = None,
        shutdown_timeout_s: float = 2.0,
        spin_s: float = 0.0015,
    ) -> None:
        prof = load_profile(profile) if isinstance(profile, str) else profile
        if not isinstance(prof, Profile):
            raise ValueError(f"profile: must be a preset name or a Profile, got {type(profile).__name__}")
        if tps is not None:
            prof = prof.with_(decode_tps=tps)
        wl = load_workload(workload) if isinstance(workload, str) else workload
        if not isinstance(wl, Workload):
            raise ValueError(f"workload: must be a preset name or a Workload, got {type(workload).__name__}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port: must be an integer within [0, 65535], got {port!r}")
        if not (isinstance(connection_lifetime_s, int | float) and connection_lifetime_s > 0):
            raise ValueError(f"connection_lifetime_s: must be > 0, got {connection_lifetime_s!r}")
        if not (isinstance(max_message_bytes, int) and max_message_bytes >= 1024):
            raise ValueError(f"max_message_bytes: must be an integer >= 1024, got {max_message_bytes!r}")
        if not (isinstance(max_active_responses, int) and max_active_responses >= 1):
            raise ValueError("max_active_responses: must be an integer >= 1")
        if not (isinstance(max_lanes, int) and max_lanes >= 1):
            raise ValueError("max_lanes: must be an integer >= 1")
        if api_key is not None and not api_key:
            raise ValueError("api_key: must be a non-empty string or None")
        self.profile = prof
        self.workload = wl
        self.host = host
        self._port = port
        self.faults = faults or Faults()
        self.engine = Engine(
            prof,
            wl,
            seed=seed,
            instant=instant,
            replicas=replicas,
            routing=routing,
            faults=self.faults,
            max_stored=max_stored,
            spin_s=spin_s,
            max_cached_bytes=max_cached_bytes,
        )
        self.connection_lifetime_s = float(connection_lifetime_s)
        self.max_message_bytes = max_message_bytes
        self.max_active_responses = max_active_responses
        self.max_lanes = max_lanes
        self._api_key = api_key
        self._shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None
        self._connections: set[_Connection] = set()
        self._http_tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    @classmethod
    async def start(cls, profile: str | Profile = "websocket", **options: Any) -> SimServer:
        """Create and start a server inside the running loop; returns once it accepts connections."""
        server = cls(profile, **options)
        await server._start()
        return server

    async def _start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("server: already started")
        # aiohttp's own limit is a backstop well above ours, so that an oversize message gets a clear
        # error event and the connection stays usable; beyond it aiohttp closes with 1009.
        app = web.Application(client_max_size=self.max_message_bytes)
        app.router.add_get("/v1/responses", self._handle_get)
        app.router.add_post("/v1/responses", self._handle_post)
        app.router.add_get("/v1/labkit/metrics", self._handle_metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout_s)
        await runner.setup()
        if not is_loopback_host(self.host) and self._api_key is None:
            log.warning("listening on %s without an api_key: anyone who can reach it can use it", self.host)
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(exc.errno, f"port: cannot listen on {self.host}:{self._port} ({exc.strerror})") from exc
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self._port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every WebSocket (code 1001), cancel open streams, stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for conn in list(self._connections):
            await conn.shutdown()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), 1.0)
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
        m = dict(self.engine.metrics)
        cached = sum(c.cache.cached_tokens() for c in self._connections)
        m["cached_bytes"] = int(cached * self.profile.bytes_per_token)
        m["cached_responses"] = sum(len(c.cache.lanes) for c in self._connections)
        m["stored_responses"] = len(self.engine.store)
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
        self.engine.metrics["errors"] += 1
        return web.json_response(exc.body(), status=exc.status)

    async def _handle_metrics(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._unauthorized()
        return web.json_response(self.metrics)

    def _unauthorized(self) -> web.Response:
        self.engine.metrics["errors"] += 1
        body = error_body("invalid_api_key", "Authorization: missing or incorrect API key", None)
        body["error"]["type"] = "authentication_error"
        return web.json_response(body, status=401)

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            compress=False,
            max_msg_size=4 * self.max_message_bytes + (1 << 20),
            autoping=True,
            timeout=1.0,
        )
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
        if not self._authorized(request):
            # The handshake is done; close with 1008 (policy violation) and no detail about the key.
            self.engine.metrics["errors"] += 1
            await ws.close(code=1008, message=b"invalid api key")
            return ws
        m = self.engine.metrics
        m["connections"] += 1
        m["connections_open"] += 1
        conn = _Connection(self, ws, request)
        self._connections.add(conn)
        try:
            await conn.serve()
        finally:
            self._connections.discard(conn)
            m["connections_open"] -= 1
        return ws

    async def _handle_post(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._http_tasks.add(task)
        try:
            return await self._post(request)
        finally:
            if task is not None:
                self._http_tasks.discard(task)

    async def _post(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        engine = self.engine
        engine.metrics["http_requests"] += 1
        if not self._authorized(request):
            return self._unauthorized()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._error_response(
                ProtocolError(
                    "request_too_large",
                    f"body: larger than the limit of {self.max_message_bytes} bytes",
                    None,
                    status=413,
                )
            )
        try:
            req = parse_create_body(body)
            turn = engine.prepare(req, transport="http", t0=t0)
        except ProtocolError as exc:
            return self._error_response(exc)

        limit = self.faults.drop_after_events
        if not req.stream:
            try:
                events = await engine.run(turn, None)
            except TurnFailed:
                return self._error_response(injected_failure())
            except DropConnection:
                return self._abort(request)
            return web.json_response(events.response())

        resp = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await resp.prepare(request)
        sent = 0

        async def emit(event: dict[str, Any]) -> None:
            nonlocal sent
            if limit is not None and sent >= limit:
                engine.metrics["faults_dropped"] += 1
                raise DropConnection()
            sent += 1
            engine.metrics["events_sent"] += 1
            await resp.write(sse_frame(event))

        try:
            await engine.run(turn, emit)
        except TurnFailed as failed:
            await resp.write(sse_frame(failed.events.failed()))
        except DropConnection:
            return self._abort(request, resp)
        except (ConnectionError, RuntimeError):
            return resp
        await resp.write_eof()
        return resp

    def _abort(self, request: web.Request, resp: web.StreamResponse | None = None) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        return resp if resp is not None else web.Response(status=500)


__all__ = ["SimServer"]
