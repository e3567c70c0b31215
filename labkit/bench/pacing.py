"""``pacing``: achieved vs configured decode rate and TTFT at 65, 1,000 and 4,000 tokens/s, and the drift
of a whole 20-turn rollout against the model's forecast.

The simulator runs in a subprocess pinned to one core (``websocket`` profile at the given rate); the
agent runner (WebSocket mode) runs here on the other core. Output sizes are chosen so that decoding takes
~0.3 s a turn at every rate. From the client's spans:

- achieved TPS = output tokens after the first / time from the first to the last output delta, pooled
  over the rollout's turns; ratio = achieved / configured;
- TTFT ratio = median over turns of measured TTFT / the closed-form TTFT of the same turn (loopback);
- drift = measured rollout end to end - forecast end to end (tool time is real sleeping, so included).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.bench.pinning import pinned
from labkit.bench.runner import result, summarize
from labkit.bench.server import ServerProcess
from labkit.model import load_profile, load_workload
from labkit.util.progress import progress

GOAL = "1 ± 0.05"
RATES: tuple[float, ...] = (65.0, 1000.0, 4000.0)
DECODE_S = 0.3


def _workload_overrides(tps: float, turns: int) -> dict[str, Any]:
    tokens = max(20, round(DECODE_S * tps))
    return {
        "turns": turns,
        "output_tokens": tokens,
        "final_output_tokens": tokens,
        "token_sigma": 0.0,
        "tool_time_median_s": 0.01,
        "tool_time_sigma": 0.0,
    }


def measure_rate(tps: float, turns: int, repeats: int) -> dict[str, Any]:
    from labkit.live.runner import run_rollout
    from labkit.sim.analytic import forecast

    overrides = _workload_overrides(tps, turns)
    workload = load_workload("codex_bugfix", **overrides)
    profile = load_profile("websocket", decode_tps=tps).loopback()
    tps_ratios: list[float] = []
    ttft_ratios: list[float] = []
    ttft_excess_ms: list[float] = []
    drift_ms: list[float] = []
    e2e_ratios: list[float] = []
    with ServerProcess("labkit", {"tps": tps, "workload": overrides, "instant": False}) as server, pinned(1):
        base_url = server.urls[0].rsplit("/responses", 1)[0]
        # One short warm-up rollout: imports and first-connection costs are not pacing.
        asyncio.run(run_rollout("ws", workload.with_(turns=1), base_url=base_url, seed=99))
        for rep in progress(range(repeats), desc=f"pacing {tps:g} TPS repeats", unit="repeat"):
            res = asyncio.run(run_rollout("ws", workload, base_url=base_url, seed=rep))
            spans = res.spans
            fc = forecast(profile, workload, rep)
            dec = spans[(spans["stage"] == "decode") & (spans["attempt"] == 0)]
            tokens = float(dec["tokens"].sum())
            seconds = float((dec["end_s"] - dec["start_s"]).sum())
            tps_ratios.append(tokens / seconds / tps)
            tm = turn_metrics(spans).sort_values("turn")
            measured = tm["ttft_s"].to_numpy()
            planned = fc.ttft_s[: len(measured)]
            ttft_ratios.append(statistics.median(m / p for m, p in zip(measured, planned, strict=True)))
            ttft_excess_ms.append(statistics.median((m - p) * 1e3 for m, p in zip(measured, planned, strict=True)))
            e2e = float(rollout_metrics(spans)["e2e_s"].iloc[0])
            drift_ms.append((e2e - fc.e2e_s) * 1e3)
            e2e_ratios.append(e2e / fc.e2e_s)
    return {
        "tps": tps,
        "output_tokens_per_turn": overrides["output_tokens"],
        "turns": turns,
        "tps_ratio": summarize(tps_ratios),
        "ttft_ratio": summarize(ttft_ratios),
        "ttft_excess_ms": summarize(ttft_excess_ms),
        "rollout_drift_ms": summarize(drift_ms),
        "rollout_e2e_ratio": summarize(e2e_ratios),
    }


def run(quick: bool = False) -> dict[str, Any]:
    turns = 4 if quick else 20
    repeats = 1 if quick else 3
    figures = [measure_rate(tps, turns, repeats) for tps in RATES]
    parts = []
    for f in figures:
        label = f"{f['tps']:g} TPS"
        parts.append(
            result(
                f"tps@{f['tps']:g}",
                f["tps_ratio"]["median"],
                "±",
                0.05,
                ratio_means=f"achieved / configured decode rate at {label}",
                ratio_stats=f["tps_ratio"],
                summary=f"{f['tps_ratio']['median'] * f['tps']:,.1f} tokens/s achieved",
            )
        )
        parts.append(
            result(
                f"ttft@{f['tps']:g}",
                f["ttft_ratio"]["median"],
                "±",
                0.05,
                ratio_means=f"measured / modelled TTFT at {label} (median over turns)",
                ratio_stats=f["ttft_ratio"],
                summary=f"{f['ttft_excess_ms']['median']:+.1f} ms a turn",
                excess_ms=f["ttft_excess_ms"],
            )
        )
        parts.append(
            result(
                f"drift@{f['tps']:g}",
                f["rollout_e2e_ratio"]["median"],
                "±",
                0.05,
                ratio_means=f"measured / forecast end to end of a {f['turns']}-turn rollout at {label}",
                ratio_stats=f["rollout_e2e_ratio"],
                summary=f"{f['rollout_drift_ms']['median']:+.0f} ms over the rollout",
                drift_ms=f["rollout_drift_ms"],
            )
        )
    tps_parts = [p for p in parts if p["name"].startswith("tps@")]
    worst = max(tps_parts, key=lambda p: abs(p["ratio"] - 1))
    return result(
        "pacing",
        worst["ratio"],
        "±",
        0.05,
        ratio_means=f"achieved / configured decode rate, worst of {', '.join(f'{r:g}' for r in RATES)} TPS",
        parts=parts,
        rates=figures,
        repeats=repeats,
    )
