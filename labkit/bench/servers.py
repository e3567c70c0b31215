"""Servers for the ``server`` benchmark, each run in its own subprocess pinned to one core.

- ``raw-ws``: a raw ``websockets`` server. A message ``{"n": N}`` gets N JSON events shaped like a
  Responses API text turn (created, in_progress, deltas, done, completed), built inline: the baseline
  has the same framing and JSON work as the simulator but no logic at all.
- ``raw-sse``: a hand-written asyncio HTTP handler that answers ``POST`` with the same N events as SSE.
- ``labkit``: the simulated server (instant profile, no pacing) on one port for both transports.

Run as ``python -m labkit.bench.servers KIND [JSON-CONFIG]``: the process pins itself to its first usable core, prints
``URLS <url> [<url>]`` and serves until its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from labkit.bench.pinning import pin_self

_ITEM = "msg_bench"


def _response(status: str) -> dict[str, Any]:
    return {"id": "resp_bench", "object": "response", "status": status, "model": "bench", "output": []}


def raw_events(n: int) -> list[str]:
    """N JSON events of a text turn: 2 lifecycle events, N - 3 deltas, a done and a completed event."""
    out = [
        json.dumps({"type": "response.created", "sequence_number": 0, "response": _response("in_progress")}),
        json.dumps({"type": "response.in_progress", "sequence_number": 1, "response": _response("in_progress")}),
    ]
    for i in range(2, max(n - 2, 2)):
        out.append(
            json.dumps(
                {
                    "type": "response.output_text.delta",
                    "sequence_number": i,
                    "item_id": _ITEM,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "tok ",
                    "logprobs": [],
                },
                separators=(",", ":"),
            )
        )
    out.append(json.dumps({"type": "response.output_text.done", "sequence_number": len(out), "text": ""}))
    out.append(
        json.dumps({"type": "response.completed", "sequence_number": len(out), "response": _response("completed")})
    )
    return out


async def _serve_raw_ws() -> tuple[str, Any]:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            n = int(json.loads(message)["n"])
            for event in raw_events(n):
                await ws.send(event)

    server = await serve(handler, "127.0.0.1", 0, compression=None, max_size=1 << 20)
    port = next(iter(server.sockets)).getsockname()[1]
    return f"ws://127.0.0.1:{port}/", server.close


async def _serve_raw_sse() -> tuple[str, Any]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Connection: close\r\n\r\n"
            )
            for event in raw_events(int(body["n"])):
                kind = event[10 : event.index('"', 10)]
                writer.write(f"event: {kind}\ndata: {event}\n\n".encode())
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    return f"http://127.0.0.1:{port}/v1/responses", server.close


async def _serve_labkit(config: dict[str, Any]) -> tuple[str, Any]:
    """The simulator; ``config`` may set ``profile``, ``tps``, ``instant``, ``max_cached_bytes``, the store
    caps (``max_stored``, ``max_stored_bodies``, ``max_stored_bytes``) and ``workload`` overrides."""
    from labkit.live.server import SimServer
    from labkit.live.server.heap import freeze_start_up
    from labkit.model import load_profile, load_workload

    profile = load_profile(config.get("profile", "websocket"))
    if "tps" in config:
        profile = profile.with_(decode_tps=float(config["tps"]))
    workload = load_workload(config.get("workload_name", "codex_bugfix"), **config.get("workload", {}))
    options: dict[str, Any] = {}
    for name in ("max_cached_bytes", "max_stored", "max_stored_bodies", "max_stored_bytes"):
        if config.get(name) is not None:
            options[name] = int(config[name])
    server = await SimServer.start(
        profile=profile, workload=workload, port=0, instant=config.get("instant", True), **options
    )
    freeze_start_up()  # as labkit serve does: the process only serves from here on
    return f"{server.base_url}/responses {server.ws_url}", server.stop


async def _main(kind: str, config: dict[str, Any]) -> None:
    if kind == "labkit":
        urls, stop = await _serve_labkit(config)
    else:
        urls, stop = await {"raw-ws": _serve_raw_ws, "raw-sse": _serve_raw_sse}[kind]()
    print(f"URLS {urls}", flush=True)
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    result = stop()
    if asyncio.iscoroutine(result):
        await result


if __name__ == "__main__":
    pin_self(0)
    asyncio.run(_main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
