"""``labkit record``: a proxy between an agent and a Responses API that records the session for replay.

The agent points its ``base_url`` at the proxy (``http://127.0.0.1:PORT/v1``); the proxy forwards every request
to the upstream over the same transport (a WebSocket upgrade becomes a WebSocket to the upstream, an SSE stream
is passed through as it arrives, a JSON answer as a whole) and records each request and event with its time
(:mod:`labkit.live.recording`). Headers are forwarded, never recorded: the API key reaches the upstream and not
the disk. On stop it writes the session's spans (``spans.csv``) for ``labkit replay`` and ``labkit fit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from labkit.live.appsite import start_app, stop_app
from labkit.live.recording import RECORDING_FILE, SPANS_FILE, Event, Exchange, Recording, header, write_spans

log = logging.getLogger("labkit.live.proxy")

#: Request headers that belong to one hop (aiohttp sets its own), or that would let the upstream compress.
_HOP_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "upgrade",
        "keep-alive",
        "transfer-encoding",
        "accept-encoding",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    }
)
_TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete", "response.done", "error"})

__all__ = ["RecordingProxy"]


def _forwarded(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}


def _json(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


class _Pending:
    """A WebSocket ``response.create`` waiting for its events (per lane, FIFO as the lanes run)."""

    __slots__ = ("events", "request", "seq", "t_sent")

    def __init__(self, seq: int, t_sent: float, request: dict[str, Any]) -> None:
        self.seq, self.t_sent, self.request = seq, t_sent, request
        self.events: list[Event] = []


class RecordingProxy:
    """Forward to ``upstream`` (an API root such as ``https://api.openai.com/v1``) and record into ``out``."""

    def __init__(self, upstream: str, out: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not upstream.startswith(("http://", "https://")):
            raise ValueError(f"upstream: must be an http:// or https:// API root, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self.out = Path(out)
        self.host, self._port = host, port
        self.recording = Recording(upstream=self.upstream.split("?")[0])
        self._t0 = time.perf_counter()
        self._seq = 0
        self._connections = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._file: Any = None
        self._sockets: set[web.WebSocketResponse] = set()

    # -- lifecycle --
    async def start(self) -> RecordingProxy:
        self.out.mkdir(parents=True, exist_ok=True)
        self._file = (self.out / RECORDING_FILE).open("w", encoding="utf-8")
        self._write(header(self.recording.upstream))
        self._session = aiohttp.ClientSession(auto_decompress=True, timeout=aiohttp.ClientTimeout(total=None))
        self._runner, self._port = await start_app(self._handle, self.host, self._port)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await stop_app(runner, self._sockets, b"proxy shutdown")
        if self._session is not None:
            await self._session.close()
        self._file.close()
        write_spans(self.recording, self.out / SPANS_FILE)

    async def __aenter__(self) -> RecordingProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}/v1"

    # -- recording --
    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._file.flush()

    def _keep(self, exchange: Exchange) -> None:
        self.recording.exchanges.append(exchange)
        self._write(exchange.to_dict())

    # -- HTTP --
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        query = f"?{request.query_string}" if request.query_string else ""
        try:
            if request.method == "GET" and tail == "responses" and upgrade:
                return await self._websocket(request)
            return await self._http(request, "/" + tail + query)
        except (aiohttp.ClientConnectionError, OSError, TimeoutError) as exc:
            # The agent sees why (a 502 in the API's error shape), and nothing is recorded for it.
            log.warning("labkit record: upstream %s unreachable: %s", self.upstream, exc)
            message = f"upstream: cannot reach {self.upstream} ({type(exc).__name__})"
            error = {"message": message, "type": "server_error", "param": None, "code": "upstream_unreachable"}
            return web.json_response({"error": error}, status=502)

    async def _http(self, request: web.Request, path: str) -> web.StreamResponse:
        assert self._session is not None
        seq, t_sent = self._next_seq(), self._now()
        raw = await request.read()
        body = _json(raw) if raw else None
        async with self._session.request(
            request.method, self.upstream + path, data=raw or None, headers=_forwarded(request.headers)
        ) as up:
            kind = up.headers.get("Content-Type", "")
            if "text/event-stream" in kind:
                return await self._sse(request, up, seq, t_sent, path, body)
            data = await up.read()
            self._keep(
                Exchange(seq, "http", request.method, path, t_sent, self._now(), body, up.status, body=_json(data))
            )
            return web.Response(body=data, status=up.status, content_type=kind.split(";")[0] or None)

    async def _sse(
        self, request: web.Request, up: aiohttp.ClientResponse, seq: int, t_sent: float, path: str, body: Any
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=up.status, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        events: list[Event] = []
        try:
            async for line in up.content:
                await resp.write(line)
                if line.startswith(b"data:"):
                    data = _json(line[5:].strip())
                    if isinstance(data, dict):
                        events.append(Event(self._now(), data))
        finally:
            self._keep(Exchange(seq, "http", request.method, path, t_sent, self._now(), body, up.status, tuple(events)))
        await resp.write_eof()
        return resp

    # -- WebSocket mode --
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        url = "ws" + self.upstream[len("http") :] + "/responses"
        try:
            upstream = await self._session.ws_connect(
                url, headers=_forwarded(request.headers), compress=0, max_msg_size=0, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:
            # The upstream refused the upgrade (a bad key: 401): the client gets the same status.
            return web.json_response({"error": {"message": exc.message, "code": None}}, status=exc.status)
        ws = web.WebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        self._connections += 1
        conn = self._connections
        lanes: dict[str | None, deque[_Pending]] = {}
        try:
            pump = asyncio.create_task(self._from_upstream(upstream, ws, lanes, conn))
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                obj = _json(msg.data)
                if isinstance(obj, dict) and obj.get("type") == "response.create":
                    lane = obj.get("stream_id") if isinstance(obj.get("stream_id"), str) else None
                    lanes.setdefault(lane, deque()).append(_Pending(self._next_seq(), self._now(), obj))
                await (upstream.send_str(msg.data) if msg.type == WSMsgType.TEXT else upstream.send_bytes(msg.data))
        finally:
            await upstream.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self._sockets.discard(ws)
        return ws

    async def _from_upstream(
        self,
        upstream: aiohttp.ClientWebSocketResponse,
        ws: web.WebSocketResponse,
        lanes: dict[str | None, deque[_Pending]],
        conn: int,
    ) -> None:
        async for msg in upstream:
            if msg.type != WSMsgType.TEXT:
                break
            t = self._now()
            await ws.send_str(msg.data)
            event = _json(msg.data)
            if not isinstance(event, dict):
                continue
            lane = event.get("stream_id") if isinstance(event.get("stream_id"), str) else None
            waiting = lanes.get(lane)
            if not waiting:
                continue
            head = waiting[0]
            head.events.append(Event(t, event))
            if event.get("type") in _TERMINAL:
                waiting.popleft()
                status = int(event.get("status") or 400) if event.get("type") == "error" else 200
                self._keep(
                    Exchange(
                        head.seq,
                        "websocket",
                        "POST",
                        "/responses",
                        head.t_sent,
                        t,
                        head.request,
                        status,
                        tuple(head.events),
                        connection=conn,
                    )
                )
        with contextlib.suppress(Exception):
            await ws.close()
