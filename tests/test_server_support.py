"""Helpers shared by the server tests: read one response's events over WebSocket or SSE."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from labkit.live.server import SimServer
from labkit.wire import protocol as P
from labkit.wire.tokens import filler_text

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")
TOOLS = [{"type": "function", "name": "run_tool", "parameters": {"type": "object", "properties": {}}}]


async def ws_events(ws: Any, event: dict[str, Any] | None = None, *, stream_id: str | None = None) -> list[dict]:
    """Send ``event`` (if given) and collect events until a terminal one (of ``stream_id``'s lane)."""
    if event is not None:
        await ws.send(json.dumps(event))
    out = []
    while True:
        ev = json.loads(await ws.recv())
        if stream_id is not None and ev.get("stream_id") != stream_id:
            continue
        out.append(ev)
        if ev["type"] in TERMINAL:
            return out


async def sse_events(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> list[dict]:
    events = []
    async with aconnect_sse(client, "POST", "/responses", json={**body, "stream": True}, **kw) as source:
        source.response.raise_for_status()
        async for sse in source.aiter_sse():
            ev = json.loads(sse.data)
            assert ev["type"] == sse.event
            events.append(ev)
    return events


@contextlib.asynccontextmanager
async def sim_server(*args: Any, **kw: Any) -> AsyncIterator[SimServer]:
    """A simulated server that never listens (no socket): reach it with ``labkit.live.memory.memory_connect``,
    WebSocket mode in memory (the same session and engine as over a socket)."""
    server = SimServer(*args, **kw)
    try:
        yield server
    finally:
        await server.stop()


def create(input: Any, **kw: Any) -> dict[str, Any]:
    return P.build_create("sim", input, **kw)


def task(n: int) -> list[dict[str, Any]]:
    """A first-turn input of exactly ``n`` estimated tokens."""
    return [P.user_message(filler_text(n, 1))]


def tool_output(call_id: str, n: int) -> dict[str, Any]:
    return P.function_call_output(call_id, filler_text(n, 2))
