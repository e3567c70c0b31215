"""A scripted Responses API endpoint for client and runner tests: each response is played from a script.

The simulator (``labkit.live.server``) decides its own outputs; these tests need exact control over what a
real server may send (``response.done``, ``response.queued``, reasoning items, several function calls,
steering and its automatic successor) so the clients are checked against the protocol, not against one
server. One aiohttp app: ``GET /v1/responses`` upgrades to WebSocket mode, ``POST /v1/responses`` answers SSE.
Every received client message is kept in ``received``.

Two ways to reach it: in memory, with no socket (``api.ws_client()``, ``api.http_client()``: labkit's
``MemoryTransport`` and ``MemoryHttpTransport``), which is how the client's and runner's rule tests run; or on
127.0.0.1 (``async with ScriptedApi(...) as api``, then ``api.base_url``), for the tests of the transport itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from labkit.live.memory import MemoryHttpTransport, MemorySink, MemoryTransport
from labkit.wire.tokens import filler_text

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


@dataclass
class Item:
    """One output item to play: ``reasoning``, ``function_call`` or ``message`` of ``tokens`` tokens."""

    type: str
    tokens: int = 4
    name: str = "run_shell"
    #: A function call cut short (``status: incomplete``).
    cut: bool = False


@dataclass
class Script:
    """How one response goes: its items, its terminal event, and the usage it reports."""

    items: list[Item] = field(default_factory=lambda: [Item("message")])
    terminal: str = "response.completed"
    reasoning_tokens: int = 0
    #: Send ``response.queued`` first (the request waited behind another response).
    queued_s: float | None = None
    #: Seconds between events (0: back to back).
    pace_s: float = 0.0
    incomplete_reason: str | None = None
    #: The final response's ``status`` (default: the one the terminal event implies).
    status: str | None = None


class Player:
    """Plays scripts as events; ``send`` writes one event to the transport."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.send = send
        self.seq = 0

    async def emit(self, type_: str, pace_s: float = 0.0, **fields: Any) -> None:
        if pace_s:
            await asyncio.sleep(pace_s)
        await self.send({"type": type_, "sequence_number": self.seq, **fields})
        self.seq += 1

    async def play(
        self,
        script: Script,
        *,
        response_id: str | None = None,
        previous_response_id: str | None = None,
        steer: asyncio.Event | None = None,
    ) -> dict[str, Any]:
        """Every event of one response; with ``steer``, the message stops once it is set (``incomplete``,
        reason ``steered``). Returns the final response object."""
        rid = response_id or new_id("resp")
        response: dict[str, Any] = {
            "id": rid,
            "object": "response",
            "status": "in_progress",
            "output": [],
            "previous_response_id": previous_response_id,
            "usage": None,
            "incomplete_details": None,
            "error": None,
        }
        p = script.pace_s
        if script.queued_s is not None:
            await self.emit("response.queued", response={**response, "status": "queued"})
            await asyncio.sleep(script.queued_s)
        await self.emit("response.created", response=dict(response))
        await self.emit("response.in_progress", p, response=dict(response))
        output: list[dict[str, Any]] = []
        steered = False
        for index, spec in enumerate(script.items):
            if spec.type == "reasoning":
                item = {"id": new_id("rs"), "type": "reasoning", "summary": []}
                await self.emit("response.output_item.added", p, output_index=index, item=item)
                await self.emit("response.output_item.done", p, output_index=index, item=item)
            elif spec.type == "function_call":
                text = '{"q":"' + filler_text(max(0, spec.tokens - 2)) + '"}'
                item = {"id": new_id("fc"), "type": "function_call", "call_id": new_id("call"), "name": spec.name}
                await self.emit("response.output_item.added", p, output_index=index, item={**item, "arguments": ""})
                for k in range(0, len(text), 4):
                    await self.emit(
                        "response.function_call_arguments.delta", p, output_index=index, delta=text[k : k + 4]
                    )
                item = {**item, "arguments": text, "status": "incomplete" if spec.cut else "completed"}
                await self.emit("response.output_item.done", p, output_index=index, item=item)
            else:
                text = filler_text(spec.tokens)
                mid = new_id("msg")
                opened = {"id": mid, "type": "message"}
                await self.emit("response.output_item.added", p, output_index=index, item=opened)
                sent = []
                for k in range(0, len(text), 4):
                    if steer is not None and steer.is_set() and sent:
                        steered = True
                        break
                    sent.append(text[k : k + 4])
                    await self.emit("response.output_text.delta", p or 0.001, output_index=index, delta=text[k : k + 4])
                text = "".join(sent)
                item = {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "status": "incomplete" if steered else "completed",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
                await self.emit("response.output_item.done", p, output_index=index, item=item)
            output.append(item)
        visible = sum((len(o.get("arguments", "")) + 3) // 4 for o in output if o["type"] == "function_call")
        usage = {
            "input_tokens": 1,
            "output_tokens": visible + script.reasoning_tokens,
            "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
        }
        terminal, reason = script.terminal, script.incomplete_reason
        if steered:
            terminal, reason = "response.incomplete", "steered"
        status = script.status or {"response.incomplete": "incomplete", "response.failed": "failed"}.get(
            terminal, "completed"
        )
        if steered:
            status = "incomplete"
        final = {
            **response,
            "status": status,
            "output": output,
            "usage": usage,
            "incomplete_details": {"reason": reason} if reason else None,
        }
        await self.emit(terminal, p, response=final)
        return final


#: A script for one create: gets the parsed ``response.create`` body, returns how to answer it.
Scripter = Callable[[dict[str, Any]], Script]


class ScriptedApi:
    """The endpoint: ``scripter`` picks the script of each create. Steering over WebSocket mode follows the
    SDK's documented flow: ``response.steer.accepted``, the running message stops (``incomplete``, reason
    ``steered``), and a successor (``successor`` script) starts by itself from the steering input."""

    def __init__(self, scripter: Scripter, successor: Script | None = None) -> None:
        self.scripter = scripter
        self.successor = successor or Script([Item("message", 6)])
        self.received: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/responses", self._ws)
        app.router.add_post("/v1/responses", self._http)
        return app

    def ws_client(self, *, timeout: float | None = 300.0) -> MemoryTransport:
        """A WebSocket-mode client of this API in memory: each connection is a new :class:`WsSession`."""
        return MemoryTransport(peer=lambda sink: _MemoryWsSession(self, sink), timeout=timeout)

    def http_client(self) -> MemoryHttpTransport:
        """An HTTP client of this API in memory (the same aiohttp app, served without a socket)."""
        return MemoryHttpTransport(self.app())

    async def __aenter__(self) -> ScriptedApi:
        self._runner = web.AppRunner(self.app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = WsSession(self, ws.send_str)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            await session.receive(msg.data)
        await session.finish()
        return ws

    async def _http(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(event: dict[str, Any]) -> None:
            await resp.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        await Player(send).play(self.scripter(body))
        await resp.write_eof()
        return resp


class WsSession:
    """One WebSocket-mode connection of a :class:`ScriptedApi`: creates run one after another; a steer of the
    running response is accepted, any other fails (``response_not_active``)."""

    def __init__(self, api: ScriptedApi, send_text: Callable[[str], Awaitable[None]]) -> None:
        self.api = api
        self.player = Player(lambda event: send_text(json.dumps(event)))
        self.steer = asyncio.Event()
        self.running: asyncio.Task[None] | None = None
        self.current: dict[str, str] = {}

    async def _answer(self, body: dict[str, Any]) -> None:
        rid = new_id("resp")
        self.current["id"] = rid
        self.current.pop("done", None)
        self.steer.clear()
        await self.player.play(self.api.scripter(body), response_id=rid, steer=self.steer)
        self.current["done"] = rid
        if self.steer.is_set():
            # The successor starts by itself with the accepted steering input.
            await self.player.play(self.api.successor, previous_response_id=rid)

    async def receive(self, data: str | bytes) -> None:
        obj = json.loads(data)
        self.api.received.append(obj)
        if obj.get("type") == "response.create":
            if self.running is not None:
                await self.running
            self.running = asyncio.create_task(self._answer(obj))
        elif obj.get("type") == "response.steer":
            ok = obj.get("previous_response_id") == self.current.get("id") and "done" not in self.current
            if ok:
                self.steer.set()
                await self.player.emit("response.steer.accepted", steer={"id": new_id("steer"), **obj})
            else:
                await self.player.emit(
                    "response.steer.failed",
                    error={"code": "response_not_active", "message": "not running", "type": "invalid_request_error"},
                    steer=obj,
                )

    async def finish(self) -> None:
        if self.running is not None:
            await self.running


class _MemoryWsSession(WsSession):
    """A :class:`WsSession` behind labkit's in-memory WebSocket (``MemoryPeer``)."""

    def __init__(self, api: ScriptedApi, sink: MemorySink) -> None:
        super().__init__(api, sink.send_text)

    async def shutdown(self) -> None:
        # The client went away: a response still playing has no one to play to.
        if self.running is not None and not self.running.done():
            self.running.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await self.running
