"""The reproduction: the numbers of OpenAI's engineering post computed from the default presets and a workload.

:func:`compare` puts any two profiles side by side on one workload; :func:`headline` computes the post's
claims (-45% TTFT from the critical-path sprint, -40% end to end with WebSocket mode at ~1,000 tokens/s) with
the published values beside them. Both return frozen dataclasses; ``to_dict()`` is their JSON form (the CLI's
``--json``) and :meth:`Headline.lines` is the one text form (the CLI and notebook 01 print it).

Every value comes with its 5-95% interval over an :class:`~labkit.analysis.ensemble.Ensemble` of parameter sets
that reproduce the fitted public numbers equally well (``intervals``; the defaults are one member of it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from labkit.analysis.crossover import crossover_tps
from labkit.analysis.ensemble import Ensemble, Member, Setting, default_ensemble, interval, setting_rollout
from labkit.analysis.metrics import reduction
from labkit.model import Profile, Workload, load_profile, load_workload, published_facts
from labkit.sim.analytic import forecast

#: Comparison fields that get an interval over the ensemble.
COMPARISON_INTERVALS = (
    "ttft_reduction",
    "e2e_reduction",
    "baseline_e2e_s",
    "candidate_e2e_s",
    "baseline_ttft_mean_s",
    "candidate_ttft_mean_s",
    "overhead_share_baseline",
    "overhead_share_candidate",
)
#: Headline fields that get an interval over the ensemble.
HEADLINE_INTERVALS = (
    "ttft_reduction",
    "e2e_reduction_at_65_tps",
    "e2e_reduction_at_1000_tps",
    "overhead_share_at_65_tps",
    "overhead_share_at_1000_tps",
    "crossover_tps",
)


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
    #: 5-95% over the ensemble, per field of :data:`COMPARISON_INTERVALS` (``{lo, hi, median}``); ``None``: not asked.
    intervals: dict[str, dict[str, float]] | None = None
    #: How the ensemble was made (members, seed, draws tried and rejected, method).
    ensemble: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _band(self, key: str, fmt: str, scale: float = 1.0) -> str:
        if not self.intervals:
            return ""
        i = self.intervals[key]
        return f" (5-95%: {i['lo'] * scale:{fmt}}-{i['hi'] * scale:{fmt}})"

    def lines(self) -> list[str]:
        return [
            f"{self.candidate} vs {self.baseline} on {self.workload} ({self.turns} turns) at {self.tps:g} TPS",
            f"  end to end   {self.baseline_e2e_s:8.2f} s  -> {self.candidate_e2e_s:8.2f} s   "
            f"({_change(self.e2e_reduction)}{self._band('e2e_reduction', '.1%')})",
            f"  mean TTFT    {self.baseline_ttft_mean_s * 1e3:8.0f} ms -> {self.candidate_ttft_mean_s * 1e3:8.0f} ms  "
            f"({_change(self.ttft_reduction)}{self._band('ttft_reduction', '.1%')})",
            f"  API-overhead share {self.overhead_share_baseline:.1%}{self._band('overhead_share_baseline', '.1%')} -> "
            f"{self.overhead_share_candidate:.1%}{self._band('overhead_share_candidate', '.1%')}",
        ]


def _change(red: float) -> str:
    return f"{red:.1%} less" if red >= 0 else f"{-red:.1%} more"


def _comparison_values(
    setting: Setting, baseline: str | Profile, candidate: str | Profile, overrides: dict[str, Any], w: Workload
) -> dict[str, float]:
    fb = setting_rollout(setting, setting.profile(baseline, **overrides), w)
    fc = setting_rollout(setting, setting.profile(candidate, **overrides), w)
    return {
        "ttft_reduction": reduction(fb.ttft_mean_s, fc.ttft_mean_s),
        "e2e_reduction": reduction(fb.e2e_s, fc.e2e_s),
        "baseline_e2e_s": fb.e2e_s,
        "candidate_e2e_s": fc.e2e_s,
        "baseline_ttft_mean_s": fb.ttft_mean_s,
        "candidate_ttft_mean_s": fc.ttft_mean_s,
        "overhead_share_baseline": fb.overhead_share,
        "overhead_share_candidate": fc.overhead_share,
    }


def _intervals(ens: Ensemble, fn: Any, keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    rows = [fn(m) for m in ens.members]
    return {k: interval([r[k] for r in rows]).to_dict() for k in keys}


def compare(
    baseline: str | Profile,
    candidate: str | Profile,
    *,
    tps: float | None = None,
    workload: str | Workload = "codex_bugfix",
    turns: int | None = None,
    ensemble: Ensemble | None = None,
) -> Comparison:
    """Any two profiles (preset names, profile files or objects) on one workload: TTFT and end-to-end
    reductions and both overhead shares, from the closed form; with ``ensemble``, each value's 5-95% interval over
    its members (each member applied to both profiles and to the workload's tool times)."""
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
        intervals=None
        if ensemble is None
        else _intervals(
            ensemble, lambda m: _comparison_values(m, baseline, candidate, overrides, w), COMPARISON_INTERVALS
        ),
        ensemble=None if ensemble is None else ensemble.summary(),
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
    #: 5-95% over the ensemble, per field of :data:`HEADLINE_INTERVALS` (``{lo, hi, median}``); ``None``: not asked.
    intervals: dict[str, dict[str, float]] | None = None
    #: How the ensemble was made (members, seed, draws tried and rejected, method).
    ensemble: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _band(self, key: str, fmt: str) -> str:
        if not self.intervals:
            return ""
        i = self.intervals[key]
        return f" (5-95%: {i['lo']:{fmt}}-{i['hi']:{fmt}})"

    def lines(self) -> list[str]:
        """The one text form of the headline: model against published, one claim a line."""
        b, c = self.baseline_profile, self.candidate_profile
        ttft_pair = " vs ".join(reversed(self.profiles["ttft"]))
        rows: list[tuple[str, str, float | None]] = [
            (f"TTFT reduction, {ttft_pair}", "ttft_reduction", self.published_ttft_reduction),
            (
                f"End to end reduction at 1,000 TPS, {c} vs {b}",
                "e2e_reduction_at_1000_tps",
                self.published_e2e_reduction,
            ),
            (f"End to end reduction at 65 TPS, {c} vs {b}", "e2e_reduction_at_65_tps", None),
            (f"API-overhead share of {b} at 65 TPS", "overhead_share_at_65_tps", None),
            (f"API-overhead share of {b} at 1,000 TPS", "overhead_share_at_1000_tps", None),
        ]
        head = "model vs published" + (" (5-95% over the ensemble)" if self.intervals else "")
        out = [f"workload {self.workload} ({self.tool_calls} tool calls); {head}"]
        for label, key, pub in rows:
            band = self._band(key, ".1%")
            line = f"  {label:<64} {getattr(self, key):7.1%}{band}"
            out.append(line + (f"   (published {pub:.0%})" if pub is not None else ""))
        cross = f"{self.crossover_tps:7.0f}{self._band('crossover_tps', ',.0f')}"
        out.append(f"  {'TPS at which ' + b + ' API overhead equals inference':<64} {cross}")
        if self.ensemble:
            e = self.ensemble
            out.append(f"  ({e['members']} parameter sets consistent with the fitted numbers, seed {e['seed']})")
        return out

    def text(self) -> str:
        return "\n".join(self.lines())


def headline_values(setting: Setting, workload: str | Workload, slow: float, fast: float) -> dict[str, float]:
    """The headline's numbers under one parameter set (the defaults or an ensemble member), from five rollouts.
    Overhead does not depend on the decode speed and inference is a + b / TPS, so two decode speeds give the
    crossover in closed form."""

    def run(name: str, tps: float) -> Any:
        return setting_rollout(setting, setting.profile(name, decode_tps=tps), workload)

    b_fast, b_slow = run("http_baseline", fast), run("http_baseline", slow)
    o_fast, w_fast, w_slow = run("http_optimized", fast), run("websocket", fast), run("websocket", slow)
    per_inv_tps = (b_slow.inference_s - b_fast.inference_s) / (1 / slow - 1 / fast)
    fixed = b_fast.inference_s - per_inv_tps / fast
    gap = b_fast.overhead_s - fixed
    return {
        "ttft_reduction": reduction(b_fast.ttft_mean_s, o_fast.ttft_mean_s),
        "e2e_reduction_at_65_tps": reduction(b_slow.e2e_s, w_slow.e2e_s),
        "e2e_reduction_at_1000_tps": reduction(b_fast.e2e_s, w_fast.e2e_s),
        "overhead_share_at_65_tps": b_slow.overhead_share,
        "overhead_share_at_1000_tps": b_fast.overhead_share,
        "crossover_tps": per_inv_tps / gap if gap > 0 else float("inf"),
    }


def headline(
    workload: str | Workload = "codex_bugfix", ensemble: Ensemble | None = None, intervals: bool = True
) -> Headline:
    """The claims of OpenAI's engineering post as the model reproduces them, with the published values beside,
    and each value's 5-95% interval over ``ensemble`` (default: :func:`~labkit.analysis.ensemble.default_ensemble`;
    ``intervals=False``: none)."""
    facts = published_facts()
    slow = float(facts["tps_gpt5"]["value"])
    fast = float(facts["tps_codex_spark"]["value"])
    ttft = compare("http_baseline", "http_optimized", tps=fast, workload=workload)
    at_slow = compare("http_baseline", "websocket", tps=slow, workload=workload)
    at_fast = compare("http_baseline", "websocket", tps=fast, workload=workload)
    ens = (ensemble or default_ensemble()) if intervals else None

    def member_values(m: Member) -> dict[str, float]:
        return headline_values(m, workload, slow, fast)

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
        intervals=None if ens is None else _intervals(ens, member_values, HEADLINE_INTERVALS),
        ensemble=None if ens is None else ens.summary(),
    )
