"""``labkit serve --replay DIR``: answer an agent from a recording made by ``labkit record``.

Each request is matched to a recorded one: same method and path, same body apart from transport-only fields
(``type``, ``stream``, ``stream_id``, ``event_id``, ``background``; :func:`labkit.live.recording.match_key`), the
first unused in recording order (each recorded answer is given once). Since the replayed events carry the
recorded ids, an agent that continues from them (``previous_response_id``, ``call_id``) sends exactly the
recorded requests. It is answered over the transport it asks for (WebSocket mode, SSE or JSON) with the recorded
events, at their recorded times (``timing="recorded"``), paced by a latency profile (``"profile"``), or at once
(``"instant"``). A request that matches none fails loudly: a 400 (HTTP) or an ``error`` event (WebSocket) with
code ``replay_mismatch`` saying how it differs from the next unused recorded request, and a warning in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from aiohttp import WSMsgType, web

from labkit.live.appsite import start_app, stop_app
from labkit.live.recording import Exchange, Recording, match_key
from labkit.live.server.masking import MaskCheckingWebSocketResponse
from labkit.model import CacheState, Profile, TurnSpec, load_profile, plan_turn
from labkit.wire.protocol import ProtocolError, conversation_split, sse_frame, ws_frame

log = logging.getLogger("labkit.live.server")

Timing = Literal["recorded", "profile", "instant"]
_DELTAS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})
_PRE_DECODE = ("validate", "load_state", "render", "config", "safety_in", "hops", "queue", "prefill", "reasoning")
_POST_DECODE = ("safety_out", "persist", "postprocess")

__all__ = ["ReplayServer"]


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two JSON values first differ, e.g. ``input[0].output: 'x' != 'y'``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}".lstrip(".") + (": missing in the request" if key not in a else ": not recorded")
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path.lstrip('.') or 'body'}: {json.dumps(a)[:60]} != {json.dumps(b)[:60]} (recorded)"


class ReplayServer:
    """Recorded answers on one host and port (``base_url`` as :class:`~labkit.live.server.SimServer`'s)."""

    def __init__(
        self,
        recording: str | Path | Recording,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timing: Timing = "recorded",
        profile: str | Profile = "websocket",
    ) -> None:
        if timing not in ("recorded", "profile", "instant"):
            raise ValueError(f"timing: expected recorded, profile or instant, got {timing!r}")
        self.recording = recording if isinstance(recording, Recording) else Recording.read(recording)
        self.timing = timing
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.host, self._port = host, port
        self._unused = list(self.recording.exchanges)
        self.requests = 0
        self.mismatches: list[str] = []
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()

    async def start(self) -> ReplayServer:
        self._runner, self._port = await start_app(self._handle, self.host, self._port)
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await stop_app(runner, self._sockets, b"server shutdown")

    async def __aenter__(self) -> ReplayServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}/v1/responses"

    # -- matching --
    def match(self, method: str, path: str, body: dict[str, Any] | None) -> Exchange:
        """The first unused recorded exchange for this request; raises ``replay_mismatch`` naming the difference."""
        self.requests += 1
        key = match_key(method, path, body)
        for i, ex in enumerate(self._unused):
            if match_key(ex.method, ex.path, ex.request) == key:
                return self._unused.pop(i)
        endpoint = (method, path.split("?")[0])
        same = [e for e in self.recording.exchanges if (e.method, e.path.split("?")[0]) == endpoint]
        nearest = next((e for e in self._unused if e in same), None)
        if not same:
            why = f"nothing was recorded for {method} {endpoint[1]}"
        else:
            used = "" if nearest is not None else f"all {len(same)} recorded ones are used; "
            nearest = nearest or same[0]
            skip = ("type", "stream", "stream_id", "event_id", "background")
            ours = {k: v for k, v in (body or {}).items() if k not in skip}
            theirs = {k: v for k, v in (nearest.request or {}).items() if k not in skip}
            why = f"{used}recorded #{nearest.seq} differs at {_first_difference(ours, theirs)}"
        message = f"replay: request {self.requests} ({method} {path.split('?')[0]}) matches no recorded request: {why}"
        log.warning("labkit server: %s", message)
        self.mismatches.append(message)
        raise ProtocolError("replay_mismatch", message, None, status=400)

    # -- timing --
    def _offsets(self, ex: Exchange) -> list[float]:
        """When each recorded event goes out, in seconds after the request arrived."""
        if self.timing == "instant":
            return [0.0] * len(ex.events)
        if self.timing == "recorded":
            return [max(0.0, e.t - ex.t_sent) for e in ex.events]
        return self._profile_offsets(ex)

    def _profile_offsets(self, ex: Exchange) -> list[float]:
        request = ex.request or {}
        items = request.get("input")
        items = [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else items or []
        turns, context, new = conversation_split([i for i in items if isinstance(i, dict)])
        deltas = sum(1 for e in ex.events if e.data.get("type") in _DELTAS)
        spec = TurnSpec(turns, context, new, max(1, deltas), 0.0, True)
        chained = isinstance(request.get("previous_response_id"), str)
        cache = CacheState(connection_open=ex.transport == "websocket", connection_cache_hit=chained)
        d = {s.name: s.duration_s for s in plan_turn(self.profile, spec, cache)}
        pre, post = sum(d.get(n, 0.0) for n in _PRE_DECODE), sum(d.get(n, 0.0) for n in _POST_DECODE)
        out, k, t = [], 0, 0.0
        for e in ex.events:
            if e.data.get("type") in _DELTAS:
                t = pre + k / self.profile.decode_tps
                k += 1
            elif e.data.get("type") in ("response.completed", "response.incomplete", "response.failed"):
                t = t + post
            out.append(t)
        return out

    async def _play(self, ex: Exchange, send: Callable[[Mapping[str, Any]], Awaitable[None]], lane: str | None) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for offset, e in zip(self._offsets(ex), ex.events, strict=True):
            delay = t0 + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            event = dict(e.data)
            if lane is not None:
                event["stream_id"] = lane
            else:
                event.pop("stream_id", None)
            await send(event)

    # -- HTTP --
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if (
            request.method == "GET"
            and tail == "responses"
            and request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            return await self._websocket(request)
        path = "/" + tail + (f"?{request.query_string}" if request.query_string else "")
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
            ex = self.match(request.method, path, body)
        except ProtocolError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except ValueError:
            return web.json_response(ProtocolError("invalid_json", "body: not valid JSON").body(), status=400)
        stream = isinstance(body, dict) and body.get("stream") is True
        if not stream or not ex.events:
            answer = ex.body if ex.body is not None or not ex.events else ex.response
            return web.json_response(answer, status=ex.status)
        resp = web.StreamResponse(status=ex.status, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(event: Mapping[str, Any]) -> None:
            await resp.write(sse_frame(event))

        await self._play(ex, send, None)
        await resp.write_eof()
        return resp

    # -- WebSocket mode --
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = MaskCheckingWebSocketResponse(compress=False, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        locks: dict[str | None, asyncio.Lock] = {}
        tasks: set[asyncio.Task[None]] = set()

        async def send(event: Mapping[str, Any]) -> None:
            if not ws.closed:
                await ws.send_str(ws_frame(event))

        async def answer(obj: dict[str, Any]) -> None:
            lane = obj.get("stream_id") if isinstance(obj.get("stream_id"), str) else None
            async with locks.setdefault(lane, asyncio.Lock()):
                try:
                    ex = self.match("POST", "/responses", obj)
                except ProtocolError as exc:
                    await send(exc.event(stream_id=lane))
                    return
                await self._play(ex, send, lane)

        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    obj = json.loads(msg.data)
                except ValueError:
                    await send(ProtocolError("invalid_json", "message: not valid JSON").event())
                    continue
                task = asyncio.create_task(answer(obj if isinstance(obj, dict) else {}))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in list(tasks):
                task.cancel()
            self._sockets.discard(ws)
        return ws
