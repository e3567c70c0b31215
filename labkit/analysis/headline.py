"""The reproduction: the numbers of OpenAI's engineering post computed from the default presets and a workload.

:func:`compare` puts any two profiles side by side on one workload; :func:`headline` computes the post's
claims (-45% TTFT from the critical-path sprint, -40% end to end with WebSocket mode at ~1,000 tokens/s) with
the published values beside them. Both return frozen dataclasses; ``to_dict()`` is their JSON form (the CLI's
``--json``) and :meth:`Headline.lines` is the one text form (the CLI and notebook 01 print it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from labkit.analysis.crossover import crossover_tps
from labkit.analysis.metrics import reduction
from labkit.model import Profile, Workload, load_profile, load_workload, published_facts
from labkit.sim.analytic import forecast


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two profiles on one workload at one decode speed (reductions are fractions of the baseline)."""

    baseline: str
    candidate: str
    workload: str
    turns: int
    tps: float
    ttft_reduction: float
    e2e_reduction: float
    baseline_e2e_s: float
    candidate_e2e_s: float
    baseline_ttft_mean_s: float
    candidate_ttft_mean_s: float
    overhead_share_baseline: float
    overhead_share_candidate: float
    method: str = "analytic"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        return [
            f"{self.candidate} vs {self.baseline} on {self.workload} ({self.turns} turns) at {self.tps:g} TPS",
            f"  end to end   {self.baseline_e2e_s:8.2f} s  -> {self.candidate_e2e_s:8.2f} s   "
            f"({_change(self.e2e_reduction)})",
            f"  mean TTFT    {self.baseline_ttft_mean_s * 1e3:8.0f} ms -> {self.candidate_ttft_mean_s * 1e3:8.0f} ms  "
            f"({_change(self.ttft_reduction)})",
            f"  API-overhead share {self.overhead_share_baseline:.1%} -> {self.overhead_share_candidate:.1%}",
        ]


def _change(red: float) -> str:
    return f"{red:.1%} less" if red >= 0 else f"{-red:.1%} more"


def compare(
    baseline: str | Profile,
    candidate: str | Profile,
    *,
    tps: float | None = None,
    workload: str | Workload = "codex_bugfix",
    turns: int | None = None,
) -> Comparison:
    """Any two profiles (preset names, profile files or objects) on one workload: TTFT and end-to-end
    reductions and both overhead shares, from the closed form."""
    overrides = {} if tps is None else {"decode_tps": tps}
    w = load_workload(workload)
    if turns is not None:
        w = w.with_(turns=turns)
    pb = load_profile(baseline, **overrides)
    pc = load_profile(candidate, **overrides)
    fb, fc = forecast(pb, w), forecast(pc, w)
    return Comparison(
        baseline=pb.name,
        candidate=pc.name,
        workload=w.name,
        turns=w.turns,
        tps=pb.decode_tps,
        ttft_reduction=reduction(fb.ttft_mean_s, fc.ttft_mean_s),
        e2e_reduction=reduction(fb.e2e_s, fc.e2e_s),
        baseline_e2e_s=fb.e2e_s,
        candidate_e2e_s=fc.e2e_s,
        baseline_ttft_mean_s=fb.ttft_mean_s,
        candidate_ttft_mean_s=fc.ttft_mean_s,
        overhead_share_baseline=fb.overhead_share,
        overhead_share_candidate=fc.overhead_share,
    )


@dataclass(frozen=True, slots=True)
class Headline:
    """The claims of OpenAI's engineering post as the model reproduces them, with the published values beside."""

    ttft_reduction: float
    e2e_reduction_at_65_tps: float
    e2e_reduction_at_1000_tps: float
    overhead_share_at_65_tps: float
    overhead_share_at_1000_tps: float
    crossover_tps: float
    published_ttft_reduction: float
    published_e2e_reduction: float
    profiles: dict[str, list[str]]
    baseline_profile: str
    candidate_profile: str
    workload: str
    tool_calls: int
    method: str = "analytic (equal to the deterministic DES)"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The one text form of the headline: model against published, one claim a line."""
        b, c = self.baseline_profile, self.candidate_profile
        ttft_pair = " vs ".join(reversed(self.profiles["ttft"]))
        rows: list[tuple[str, float, float | None]] = [
            (f"TTFT reduction, {ttft_pair}", self.ttft_reduction, self.published_ttft_reduction),
            (
                f"End to end reduction at 1,000 TPS, {c} vs {b}",
                self.e2e_reduction_at_1000_tps,
                self.published_e2e_reduction,
            ),
            (f"End to end reduction at 65 TPS, {c} vs {b}", self.e2e_reduction_at_65_tps, None),
            (f"API-overhead share of {b} at 65 TPS", self.overhead_share_at_65_tps, None),
            (f"API-overhead share of {b} at 1,000 TPS", self.overhead_share_at_1000_tps, None),
        ]
        out = [f"workload {self.workload} ({self.tool_calls} tool calls); model vs published"]
        for label, value, pub in rows:
            out.append(f"  {label:<64} {value:7.1%}" + (f"   (published {pub:.0%})" if pub is not None else ""))
        out.append(f"  {'TPS at which ' + b + ' API overhead equals inference':<64} {self.crossover_tps:7.0f}")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def headline(workload: str | Workload = "codex_bugfix") -> Headline:
    """The claims of OpenAI's engineering post as the model reproduces them, with the published values beside."""
    facts = published_facts()
    slow = float(facts["tps_gpt5"]["value"])
    fast = float(facts["tps_codex_spark"]["value"])
    ttft = compare("http_baseline", "http_optimized", tps=fast, workload=workload)
    at_slow = compare("http_baseline", "websocket", tps=slow, workload=workload)
    at_fast = compare("http_baseline", "websocket", tps=fast, workload=workload)
    return Headline(
        ttft_reduction=ttft.ttft_reduction,
        e2e_reduction_at_65_tps=at_slow.e2e_reduction,
        e2e_reduction_at_1000_tps=at_fast.e2e_reduction,
        overhead_share_at_65_tps=at_slow.overhead_share_baseline,
        overhead_share_at_1000_tps=at_fast.overhead_share_baseline,
        crossover_tps=crossover_tps("http_baseline", workload),
        published_ttft_reduction=float(facts["ttft_reduction_critical_path"]["value"]),
        published_e2e_reduction=float(facts["e2e_reduction_websocket"]["value"]),
        profiles={"ttft": ["http_baseline", "http_optimized"], "e2e": ["http_baseline", "websocket"]},
        baseline_profile="http_baseline",
        candidate_profile="websocket",
        workload=at_fast.workload,
        tool_calls=at_fast.turns - 1,
    )
