"""How closely the live server keeps to its plan: one scripted rollout against a fresh server.

The server's own lateness (timer wake-ups, framing, the event loop) is the part of a live measurement
that the latency model does not contain. This drives a chained rollout with the workload's sizes over
WebSocket mode (``websockets``) or HTTP/SSE (``httpx``), without tool time (the server never sees it),
and compares each turn with its plan, on the server's clock and at the client.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from typing import Any, Literal

import httpx
import websockets

from labkit.live.server.app import SimServer
from labkit.model import Profile, Workload, load_workload
from labkit.wire import protocol as P
from labkit.wire.tokens import filler_text

_TOOLS = [{"type": "function", "name": "run_tool", "parameters": {"type": "object", "properties": {}}}]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def self_check(
    profile: str | Profile = "websocket",
    workload: str | Workload = "codex_bugfix",
    *,
    tps: float | None = None,
    transport: Literal["ws", "http"] = "ws",
    seed: int | None = None,
) -> dict[str, Any]:
    """Run one rollout and summarise the per-turn lateness against the plan (seconds)."""
    if transport not in ("ws", "http"):
        raise ValueError(f"transport: must be 'ws' or 'http', got {transport!r}")
    wl = load_workload(workload)
    async with SimServer(profile, wl, tps=tps, seed=seed) as server:
        specs = server.engine.specs
        loop = asyncio.get_running_loop()
        client: list[tuple[float, float, float]] = []  # (sent, first delta, completed) on the loop clock
        first_input: list[dict[str, Any]] = [P.user_message(filler_text(specs[0].new_input_tokens, 1))]
        body: dict[str, Any] = {"model": "sim", "input": first_input, "tools": _TOOLS, "store": transport == "http"}
        if transport == "ws":
            async with websockets.connect(server.ws_url, compression=None, max_size=None) as ws:
                for spec in specs:
                    t_send = loop.time()
                    await ws.send(json.dumps({"type": "response.create", **body}))
                    t_first = None
                    while True:
                        ev = json.loads(await ws.recv())
                        if t_first is None and ev["type"].endswith(".delta"):
                            t_first = loop.time()
                        if ev["type"] in ("response.completed", "error"):
                            break
                    client.append((t_send, t_first or loop.time(), loop.time()))
                    if ev["type"] == "error":
                        raise RuntimeError(f"self-check: server error {ev['error']['code']}")
                    body = _next(body, ev["response"], specs, spec.index, store=False)
        else:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
                for spec in specs:
                    t_send = loop.time()
                    t_first = None
                    resp = None
                    async with http.stream("POST", "/responses", json={**body, "stream": True}) as r:
                        r.raise_for_status()
                        async for line in r.aiter_lines():
                            if not line.startswith("data: "):
                                continue
                            ev = json.loads(line[6:])
                            if t_first is None and ev["type"].endswith(".delta"):
                                t_first = loop.time()
                            if ev["type"] == "response.completed":
                                resp = ev["response"]
                    client.append((t_send, t_first or loop.time(), loop.time()))
                    if resp is None:
                        raise RuntimeError("self-check: the stream ended without response.completed")
                    body = _next(body, resp, specs, spec.index, store=True)
        rows = server.timing()
        metrics = server.metrics
    first_late = [r["actual_first_s"] - r["planned_first_s"] for r in rows]
    done_late = [r["actual_done_s"] - r["planned_done_s"] for r in rows]
    ttft_err = [(c[1] - c[0]) - r["planned_first_s"] for c, r in zip(client, rows, strict=True)]
    total_err = [(c[2] - c[0]) - r["planned_done_s"] for c, r in zip(client, rows, strict=True)]
    planned_total = [r["planned_done_s"] for r in rows]
    return {
        "transport": transport,
        "profile": server.profile.name,
        "tps": server.profile.decode_tps,
        "workload": wl.name,
        "turns": len(rows),
        "server_first_late_median_s": statistics.median(first_late),
        "server_first_late_p95_s": _quantile(first_late, 0.95),
        "server_done_late_median_s": statistics.median(done_late),
        "server_done_late_p95_s": _quantile(done_late, 0.95),
        "client_ttft_error_median_s": statistics.median(ttft_err),
        "client_turn_error_median_s": statistics.median(total_err),
        "client_turn_rel_error_median": statistics.median(
            e / p for e, p in zip(total_err, planned_total, strict=True) if p > 0
        ),
        "delta_frames": metrics["delta_frames"],
        "coalesced_tokens": metrics["coalesced_tokens"],
        "output_tokens": metrics["output_tokens"],
    }


def _next(body: dict[str, Any], resp: dict[str, Any], specs: Any, index: int, *, store: bool) -> dict[str, Any]:
    if index + 1 >= len(specs):
        return body
    call_id = resp["output"][0].get("call_id", "call_none")
    out = P.function_call_output(call_id, filler_text(specs[index + 1].new_input_tokens, 2))
    return {"model": "sim", "input": [out], "tools": _TOOLS, "store": store, "previous_response_id": resp["id"]}
