"""The reproduction: the numbers of OpenAI's engineering post computed from the default presets and a workload."""

from __future__ import annotations

import math
from typing import Any

from labkit.analysis.metrics import reduction
from labkit.model import load_profile, load_workload, published_facts
from labkit.sim.analytic import RolloutForecast, forecast


def crossover_tps(profile_name: str = "http_baseline", workload_name: str = "codex_bugfix", **overrides: Any) -> float:
    """The decode rate at which the rollout's API overhead (service + network) equals its inference time.

    Overhead does not depend on the decode rate and inference falls with it, so the root is unique.
    """
    from labkit.analysis.calibrate import bisect

    w = load_workload(workload_name)

    def gap(log_tps: float) -> float:
        f = forecast(load_profile(profile_name, decode_tps=math.exp(log_tps), **overrides), w)
        return (f.api_s + f.network_s) - f.inference_s

    return math.exp(bisect(gap, math.log(1.0), math.log(1e6), tol=1e-9))


def compare(
    baseline: str,
    candidate: str,
    *,
    tps: float | None = None,
    workload: str = "codex_bugfix",
    turns: int | None = None,
) -> dict[str, Any]:
    """Any two presets on one workload: TTFT and end-to-end reductions and both overhead shares."""
    overrides = {} if tps is None else {"decode_tps": tps}
    w = load_workload(workload, **({} if turns is None else {"turns": turns}))
    fb: RolloutForecast = forecast(load_profile(baseline, **overrides), w)
    fc: RolloutForecast = forecast(load_profile(candidate, **overrides), w)
    return {
        "baseline": baseline,
        "candidate": candidate,
        "workload": w.name,
        "turns": w.turns,
        "tps": load_profile(baseline, **overrides).decode_tps,
        "ttft_reduction": reduction(fb.ttft_mean_s, fc.ttft_mean_s),
        "e2e_reduction": reduction(fb.e2e_s, fc.e2e_s),
        "baseline_e2e_s": fb.e2e_s,
        "candidate_e2e_s": fc.e2e_s,
        "baseline_ttft_mean_s": fb.ttft_mean_s,
        "candidate_ttft_mean_s": fc.ttft_mean_s,
        "overhead_share_baseline": fb.overhead_share,
        "overhead_share_candidate": fc.overhead_share,
        "method": "analytic",
    }


def headline(workload: str = "codex_bugfix") -> dict[str, Any]:
    """The claims of OpenAI's engineering post as the model reproduces them, with the published values beside."""
    facts = published_facts()
    slow = float(facts["tps_gpt5"]["value"])
    fast = float(facts["tps_codex_spark"]["value"])
    ttft = compare("http_baseline", "http_optimized", tps=fast, workload=workload)
    at_slow = compare("http_baseline", "websocket", tps=slow, workload=workload)
    at_fast = compare("http_baseline", "websocket", tps=fast, workload=workload)
    return {
        "ttft_reduction": ttft["ttft_reduction"],
        "e2e_reduction_at_65_tps": at_slow["e2e_reduction"],
        "e2e_reduction_at_1000_tps": at_fast["e2e_reduction"],
        "overhead_share_at_65_tps": at_slow["overhead_share_baseline"],
        "overhead_share_at_1000_tps": at_fast["overhead_share_baseline"],
        "crossover_tps": crossover_tps("http_baseline", workload),
        "published_ttft_reduction": facts["ttft_reduction_critical_path"]["value"],
        "published_e2e_reduction": facts["e2e_reduction_websocket"]["value"],
        "profiles": {"ttft": ["http_baseline", "http_optimized"], "e2e": ["http_baseline", "websocket"]},
        "baseline_profile": "http_baseline",
        "candidate_profile": "websocket",
        "workload": workload,
        "tool_calls": at_fast["turns"] - 1,
        "method": "analytic (equal to the deterministic DES)",
    }
