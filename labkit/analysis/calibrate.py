"""Which parameter sets agree with the published ratios: what is forced, and what is assumed.

OpenAI's engineering post publishes ratios (-45% TTFT from critical-path work, -40% end to end with WebSocket mode at
~1,000 tokens/s), not per-stage milliseconds. So the defaults in ``data/calibration.toml`` are one member of
a family. This module walks the family along one assumed axis and solves for the parameter the published
ratio then forces:

- :func:`e2e_family`: for each assumed tool time, the scale of all API-service costs that gives the
  published end-to-end reduction (with it, the per-turn overhead and the overhead shares at 65 and 1,000 TPS);
- :func:`ttft_family`: for each assumed hop latency, the speed-up of the safety classifiers that, with the
  caches and fewer hops, gives the published TTFT reduction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from labkit.model import Profile, Workload, load_profile, load_workload, published_facts
from labkit.sim.analytic import forecast

#: API-service time parameters paid once per request, whatever its size (scaled by ``api_scale``).
FIXED_API_PARAMS = (
    "validate_s",
    "state_load_s",
    "config_load_s",
    "config_cached_s",
    "safety_in_s",
    "safety_out_s",
    "hop_latency_s",
    "persist_s",
    "postprocess_s",
)
#: API-service time parameters paid per 1,000 tokens of what a stage reads (scaled by ``per_token_scale``).
PER_TOKEN_API_PARAMS = (
    "validate_per_1k_s",
    "state_load_per_1k_s",
    "render_per_1k_s",
    "safety_in_per_1k_s",
    "safety_out_per_1k_s",
)
SAFETY_PARAMS = ("safety_in_s", "safety_in_per_1k_s", "safety_out_s")


def bisect(f: Callable[[float], float], lo: float, hi: float, tol: float = 1e-6, max_iter: int = 200) -> float:
    """Root of a monotone ``f`` on [lo, hi] (``f(lo)`` and ``f(hi)`` must differ in sign)."""
    flo, fhi = f(lo), f(hi)
    if flo == 0:
        return lo
    if fhi == 0:
        return hi
    if (flo > 0) == (fhi > 0):
        raise ValueError(f"bisect: no sign change on [{lo}, {hi}] (f={flo:.4g}, {fhi:.4g})")
    for _ in range(max_iter):
        mid = (lo + hi) / 2
        fm = f(mid)
        if abs(hi - lo) < tol or fm == 0:
            return mid
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return (lo + hi) / 2


def scaled(profile: Profile, api_scale: float, per_token_scale: float | None = None) -> Profile:
    """The profile with its fixed API costs times ``api_scale`` and its per-token API costs times
    ``per_token_scale`` (default: ``api_scale`` too, so every API-service time scales together)."""
    k = api_scale if per_token_scale is None else per_token_scale
    changes = {f: getattr(profile, f) * api_scale for f in FIXED_API_PARAMS}
    changes.update({f: getattr(profile, f) * k for f in PER_TOKEN_API_PARAMS})
    return profile.with_(**changes)


def reductions(
    workload: Workload,
    tps: float,
    api_scale: float = 1.0,
    safety_speedup: float | None = None,
    **overrides: float,
) -> dict[str, float]:
    """TTFT reduction (http_optimized vs http_baseline) and end-to-end reduction (websocket vs
    http_baseline) at ``tps``, with API costs scaled and, optionally, the optimized safety speed-up set."""
    base = scaled(load_profile("http_baseline", decode_tps=tps, **overrides), api_scale)
    out: dict[str, Profile] = {}
    for name in ("http_optimized", "websocket"):
        p = scaled(load_profile(name, decode_tps=tps, **overrides), api_scale)
        if safety_speedup is not None:
            p = p.with_(**{k: getattr(base, k) / safety_speedup for k in SAFETY_PARAMS})
        out[name] = p
    fb, fo, fw = (
        forecast(base, workload),
        forecast(out["http_optimized"], workload),
        forecast(out["websocket"], workload),
    )
    return {
        "ttft_reduction": 1 - fo.ttft_mean_s / fb.ttft_mean_s,
        "e2e_reduction": 1 - fw.e2e_s / fb.e2e_s,
        "overhead_share_baseline": fb.overhead_share,
        "baseline_overhead_per_turn_s": (fb.api_s + fb.network_s) / workload.turns,
        "baseline_e2e_s": fb.e2e_s,
    }


def e2e_family(
    tool_medians_s: Sequence[float] = (0.05, 0.1, 0.16, 0.25, 0.4, 0.6, 1.0),
    target: float | None = None,
    workload: Workload | None = None,
    tps: float = 1000.0,
) -> pd.DataFrame:
    """For each assumed tool-time median, the API-cost scale forced by the end-to-end target."""
    target = published_facts()["e2e_reduction_websocket"]["value"] if target is None else target
    w0 = workload or load_workload("codex_bugfix")
    rows = []
    for tm in tool_medians_s:
        w = w0.with_(tool_time_median_s=tm)
        try:

            def gap(s: float, w: Workload = w, target: float = float(target)) -> float:
                return reductions(w, tps, s)["e2e_reduction"] - target

            scale = bisect(gap, 0.01, 100.0)
        except ValueError:
            rows.append({"tool_time_median_s": tm, "api_scale": float("nan"), "consistent": False})
            continue
        r1000 = reductions(w, tps, scale)
        r65 = reductions(w, published_facts()["tps_gpt5"]["value"], scale)
        rows.append(
            {
                "tool_time_median_s": tm,
                "tool_time_mean_s": w.mean_tool_time_s(),
                "api_scale": scale,
                "baseline_overhead_per_turn_s": r1000["baseline_overhead_per_turn_s"],
                "ttft_reduction": r1000["ttft_reduction"],
                "e2e_reduction_at_tps": r1000["e2e_reduction"],
                "e2e_reduction_at_65_tps": r65["e2e_reduction"],
                "overhead_share_at_65_tps": r65["overhead_share_baseline"],
                "overhead_share_at_tps": r1000["overhead_share_baseline"],
                "consistent": True,
            }
        )
    return pd.DataFrame(rows)


def ttft_family(
    hop_latencies_s: Sequence[float] = (0.004, 0.008, 0.012, 0.016, 0.02, 0.025),
    target: float | None = None,
    workload: Workload | None = None,
) -> pd.DataFrame:
    """For each assumed hop latency, the safety-classifier speed-up forced by the TTFT target."""
    target = published_facts()["ttft_reduction_critical_path"]["value"] if target is None else target
    w = workload or load_workload("codex_bugfix")
    rows = []
    for hop in hop_latencies_s:

        def gap(speedup: float, hop: float = hop) -> float:
            return reductions(w, 1000.0, safety_speedup=speedup, hop_latency_s=hop)["ttft_reduction"] - target

        try:
            speedup = bisect(gap, 1.0, 1000.0)
            ok = True
        except ValueError:
            speedup, ok = float("nan"), False
        rows.append({"hop_latency_s": hop, "safety_speedup": speedup, "consistent": ok})
    return pd.DataFrame(rows)
