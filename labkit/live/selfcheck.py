"""How closely the live server keeps to its plan: one scripted rollout against a fresh server.

The server's own lateness (timer wake-ups, framing, the event loop) is the part of a live measurement
that the latency model does not contain. This drives a chained rollout with the workload's sizes through the
rollout runner (:mod:`labkit.live.runner`, the one agent loop) over WebSocket mode or HTTP/SSE, with tools that
answer at once (the server never sees tool time), and compares each turn with its plan, on the server's clock
and at the client (the exchange's own timestamps: sent, first delta, terminal event).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any, Literal

from labkit.live.runner import RolloutConfig, RolloutRunner
from labkit.live.server.app import SimServer
from labkit.model import Profile, TurnSpec, Workload, load_workload
from labkit.wire.tokens import filler_text


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
        config = RolloutConfig(
            "ws" if transport == "ws" else "http-chained",
            base_url=server.base_url,
            api_key="self-check",
            tool_runner=_instant_tools,
        )
        result = await RolloutRunner(config).run(wl, seed=0 if seed is None else seed)
        rows = server.timing()
        metrics = server.metrics
    exchanges = [te.exchange for te in result.exchanges]
    if len(exchanges) != len(rows):
        raise RuntimeError(f"self-check: {len(exchanges)} exchanges but {len(rows)} turns on the server")
    # (sent, first delta, terminal event) per turn, at the client.
    client = [(ex.t_sent, ex.delta_t[0] if ex.delta_t else ex.t_end, ex.t_end) for ex in exchanges]
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


async def _instant_tools(calls: Sequence[dict[str, Any]], spec: TurnSpec, sizes: Sequence[int]) -> list[str]:
    """Tools that answer at once with the scripted sizes: the server's lateness is what is measured."""
    return [filler_text(n, 2) for n in sizes]
