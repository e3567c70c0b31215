"""A raw pacing server: plain ``websockets``, the same paced streams as labkit's simulator, no logic at all.

The baseline of ``labkit bench capacity``. Each ``response.create`` on a connection is the connection's next
turn; the server waits the turn's pre-decode time, streams its output tokens at ``tps`` (every wake-up sends
the tokens due as one delta frame, as the simulator does), waits the post-processing time, then sends
``response.completed`` with the usage and a function call (a message on the last turn). Per-turn token
counts and pre/post times come from the parent (the same plan the simulator follows); nothing is parsed
beyond ``json.loads`` of the request, nothing is stored.

Run as ``python -m labkit.bench.rawpacing JSON-CONFIG``: pins itself to its first usable core, prints
``URLS <ws-url>`` and serves until its stdin closes. :class:`labkit.bench.server.RawPacingProcess` does that
from Python (kept out of this module so the baseline process imports nothing but what it serves with).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

_SEP = (",", ":")


def turn_plan(turns: int, workload_overrides: dict[str, Any], tps: float) -> list[dict[str, float]]:
    """Per turn: output tokens and the server-side seconds before the first delta and after the last, from
    the simulator's own plan (``websocket`` profile at ``tps``; a connection-cache hit after turn 0)."""
    from labkit.model import CacheState, load_profile, load_workload, plan_turn
    from labkit.model.stages import SERVER_STAGES

    profile = load_profile("websocket", decode_tps=tps)
    specs = load_workload("codex_bugfix", **workload_overrides).turn_specs(0)
    pre_names = set(SERVER_STAGES[: SERVER_STAGES.index("decode")])
    post_names = set(SERVER_STAGES[SERVER_STAGES.index("decode") + 1 :])
    out = []
    for spec in specs[:turns]:
        plan = plan_turn(profile, spec, CacheState(True, spec.index > 0, False))
        out.append(
            {
                "tokens": float(max(1, spec.output_tokens)),
                "pre_s": sum(s.duration_s for s in plan if s.name in pre_names),
                "post_s": sum(s.duration_s for s in plan if s.name in post_names),
            }
        )
    return out


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _serve(config: dict[str, Any]) -> tuple[str, Any]:
    from websockets.asyncio.server import ServerConnection, serve

    tps = float(config["tps"])
    plan: list[dict[str, float]] = config["plan"]

    async def handler(ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        turn = 0
        conn = id(ws)
        async for _message in ws:
            p = plan[min(turn, len(plan) - 1)]
            final = turn >= len(plan) - 1
            n = int(p["tokens"])
            rid = f"resp_{conn:x}_{turn}"
            t0 = loop.time()
            seq = 0
            for kind in ("response.created", "response.in_progress"):
                await ws.send(
                    json.dumps({"type": kind, "sequence_number": seq, "response": {"id": rid}}, separators=_SEP)
                )
                seq += 1
            delta_type = "response.output_text.delta" if final else "response.function_call_arguments.delta"
            t_first = t0 + p["pre_s"]
            await _sleep_until(loop, t_first)
            sent = 0
            while sent < n:
                due = min(n, int((loop.time() - t_first) * tps) + 1)
                if due > sent:
                    frame = {"type": delta_type, "sequence_number": seq, "delta": "tok " * (due - sent)}
                    await ws.send(json.dumps(frame, separators=_SEP))
                    seq += 1
                    sent = due
                if sent < n:
                    await _sleep_until(loop, t_first + sent / tps)
            await _sleep_until(loop, t_first + (n - 1) / tps + p["post_s"])
            item = (
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": ""}]}
                if final
                else {"type": "function_call", "call_id": f"call_{conn:x}_{turn}", "name": "tool", "arguments": "{}"}
            )
            done = {
                "type": "response.completed",
                "sequence_number": seq,
                "response": {
                    "id": rid,
                    "status": "completed",
                    "output": [item],
                    "usage": {"input_tokens": 0, "output_tokens": n, "total_tokens": n},
                },
            }
            await ws.send(json.dumps(done, separators=_SEP))
            turn += 1

    server = await serve(handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None)
    port = next(iter(server.sockets)).getsockname()[1]
    return f"ws://127.0.0.1:{port}/v1/responses", server.close


async def _main(config: dict[str, Any]) -> None:
    url, stop = await _serve(config)
    print(f"URLS {url}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    stop()


if __name__ == "__main__":
    from labkit.bench.pinning import pin_self

    pin_self(0)
    asyncio.run(_main(json.loads(sys.argv[1])))
