"""An ensemble of parameter sets that all reproduce the fitted public numbers: the uncertainty of every answer.

The defaults in ``data/calibration.toml`` are one member of a family: OpenAI's engineering post publishes ratios,
not per-stage milliseconds. This module draws the *assumed* parameters from documented priors (:data:`PRIORS`: how
the fixed API cost splits over the stages, the per-token API costs, hops, prefill speed and overhead, round trip,
queueing, tool times, the prefix-cache hit share and where inside "about 45%" / "about 40%" the truth lies), then
re-solves the two calibrated parameters for each draw so that the fitted numbers hold:

- the common scale of the fixed API costs and the safety classifiers' speed-up in the sprint are solved so that
  ``http_optimized`` cuts mean TTFT by the drawn ~45% and ``websocket`` cuts end to end by the drawn ~40% on
  ``codex_bugfix`` at 1,000 tokens/s. Both reductions are ratios of sums that are linear in the fixed-cost
  scale and in the classifiers' speed factor, so four closed-form rollouts per profile give the solution exactly;
- a draw is accepted when the solution exists with classifiers no slower after the sprint than before, and the
  WebSocket-mode guide's "up to roughly 40%" holds as a bound: no rollout with 20+ tool calls (``codex_bugfix`` and
  the realistic Codex-sized sessions) gains more than 40% + :data:`~labkit.analysis.claims.TOLERANCE`;
- optionally (:class:`FitConstraint`, a ``labkit fit --json`` file of real sessions) a member's fixed time per call
  may not exceed the fitted ``call_fixed_s`` upper bound: what a client log measures includes API work, queueing,
  prefill and client-side context building, so it bounds the model's fixed part from above and no more.

Rejection sampling over the priors with an exact re-solve (ABC with a zero-width acceptance on the fitted ratios
within their drawn targets). Seeded; :func:`build_ensemble` is cached per (members, seed, fit).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from labkit.analysis.calibrate import FIXED_API_PARAMS, PER_TOKEN_API_PARAMS, SAFETY_PARAMS
from labkit.model import (
    API_STAGES,
    INFERENCE_STAGES,
    NETWORK_STAGES,
    STAGES,
    CacheState,
    Profile,
    TurnSpec,
    Workload,
    load_profile,
    load_workload,
    plan_turn,
)
from labkit.model.closedform import expected_plan_seconds

#: The post's decode speed for the fitted numbers.
FIT_TPS = 1000.0
#: The quantiles every interval reports.
QUANTILES = (0.05, 0.95)
#: Parameters a member changes, relative to the defaults, in every profile it is applied to.
SAMPLED_FIELDS = (
    *FIXED_API_PARAMS,
    *PER_TOKEN_API_PARAMS,
    "rtt_s",
    "connect_s",
    "queue_s",
    "prefill_overhead_s",
    "prefill_tokens_per_s",
)
#: Lognormal sigma of each fixed API stage's share around the defaults' split, and of each per-token cost.
FIXED_SPLIT_SIGMA = 0.5
PER_TOKEN_SPLIT_SIGMA = 0.3
#: Bracket of the solved fixed API-cost scale (relative to the drawn split).
API_SCALE_RANGE = (0.02, 50.0)


@dataclass(frozen=True, slots=True)
class Prior:
    """One assumed parameter's prior: a uniform, log-uniform or integer-uniform range, and why."""

    name: str
    kind: Literal["uniform", "log-uniform", "integer"]
    lo: float
    hi: float
    unit: str
    why: str

    def draw(self, rng: np.random.Generator) -> float:
        if self.kind == "uniform":
            return float(rng.uniform(self.lo, self.hi))
        if self.kind == "log-uniform":
            return float(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))
        return float(rng.integers(int(self.lo), int(self.hi) + 1))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRIORS: tuple[Prior, ...] = (
    Prior(
        "per_token_scale",
        "log-uniform",
        0.1,
        10.0,
        "x defaults",
        "per-token API costs (validate, state load, render, classifiers per 1k tokens): unpublished; the realistic "
        "sessions bound them from above through the guide's 'up to ~40%'",
    ),
    Prior("hops", "integer", 2, 6, "hops", "hops before the sprint (the post: some were removed)"),
    Prior(
        "prefill_tokens_per_s",
        "log-uniform",
        30_000,
        300_000,
        "tokens/s",
        "uncached prompt tokens per second on fast inference hardware (unpublished)",
    ),
    Prior(
        "prefill_overhead_s",
        "uniform",
        0.01,
        0.05,
        "s",
        "fixed prefill cost (llm-d-inference-sim's defaults: 25-40 ms on H100)",
    ),
    Prior("rtt_s", "uniform", 0.02, 0.08, "s", "client to API edge round trip (TCP+TLS connect = 2 round trips)"),
    Prior("queue_s", "log-uniform", 0.003, 0.03, "s", "inference admission on an unloaded fleet"),
    Prior(
        "tool_time_median_s",
        "log-uniform",
        0.1,
        0.7,
        "s",
        "median tool time of codex_bugfix (TraceLab: ~0.13 s for Claude Code, ~0.63 s for Codex); every workload's "
        "tool times scale by the same ratio",
    ),
    Prior(
        "prefix_cache_hit_share",
        "uniform",
        0.92,
        0.97,
        "fraction",
        "share of the earlier conversation in the prefix (KV) cache (real Codex calls 94-95%, TraceLab 96%)",
    ),
    Prior("ttft_target", "uniform", 0.43, 0.47, "fraction", "the post's 'about 45%' TTFT cut, within 2 points"),
    Prior("e2e_target", "uniform", 0.38, 0.42, "fraction", "the post's 'about 40%' end-to-end cut, within 2 points"),
)
_PRIOR = {p.name: p for p in PRIORS}


# -- applying a parameter set --------------------------------------------------------------------------------


class Setting(Protocol):
    """Where a computation gets its profiles and workloads: the defaults, or one ensemble member."""

    def profile(self, p: str | Profile, **overrides: Any) -> Profile: ...

    def workload(self, w: str | Workload) -> Workload: ...

    # Settings key caches of per-setting results (a member is a frozen dataclass; the defaults one object).
    def __hash__(self) -> int: ...


class Defaults:
    """The calibrated defaults, as a :class:`Setting`."""

    def profile(self, p: str | Profile, **overrides: Any) -> Profile:
        return load_profile(p, **overrides)

    def workload(self, w: str | Workload) -> Workload:
        return load_workload(w)


DEFAULTS = Defaults()


@lru_cache(maxsize=1)
def _references() -> tuple[Profile, Profile, float]:
    tool_median = load_workload("codex_bugfix").tool_time_median_s
    return load_profile("http_baseline"), load_profile("http_optimized"), tool_median


def _apply(base: Profile, safety_factor: float, p: Profile, overrides: dict[str, Any] | None = None) -> Profile:
    """``p`` with a member's parameters: each sampled field times (member baseline / default baseline); safety
    classifiers that the profile speeds up (as the sprint does) by the member's factor instead of the defaults';
    hops and the prefix-cache hit share where the profile keeps the baseline's."""
    ref_base, ref_opt, _ = _references()
    changes: dict[str, Any] = {}
    for f in SAMPLED_FIELDS:
        d, v = getattr(ref_base, f), getattr(p, f)
        if d == 0 or v == 0 or not math.isfinite(v):
            continue
        new = v * getattr(base, f) / d
        if f in SAFETY_PARAMS and not math.isclose(v, d, rel_tol=1e-9):
            new *= safety_factor / (getattr(ref_opt, f) / d)
        changes[f] = new
    if p.hops == ref_base.hops:
        changes["hops"] = base.hops
    if p.prefix_cache_hit_share == ref_base.prefix_cache_hit_share:
        changes["prefix_cache_hit_share"] = base.prefix_cache_hit_share
    changes.update(overrides or {})
    return p.with_(**changes)


@dataclass(frozen=True, slots=True)
class Member:
    """One parameter set of the ensemble: its ``http_baseline``, the sprint's safety factor (classifier time after
    / before), the tool-time ratio, and the draws and solved values that made it."""

    index: int
    baseline: Profile
    safety_factor: float
    tool_ratio: float
    api_scale: float
    draws: tuple[tuple[str, float], ...]

    def profile(self, p: str | Profile, **overrides: Any) -> Profile:
        return _member_profile(self, p, tuple(sorted(overrides.items())))

    def workload(self, w: str | Workload) -> Workload:
        wl = load_workload(w)
        return wl.with_(tool_time_median_s=wl.tool_time_median_s * self.tool_ratio)

    @property
    def safety_speedup(self) -> float:
        return 1.0 / self.safety_factor

    def row(self) -> dict[str, float]:
        return {**dict(self.draws), "api_scale": self.api_scale, "safety_speedup": self.safety_speedup}


@lru_cache(maxsize=4096)
def _member_profile(m: Member, p: str | Profile, overrides: tuple[tuple[str, Any], ...]) -> Profile:
    return _apply(m.baseline, m.safety_factor, _preset(p) if isinstance(p, str) else p, dict(overrides))


@lru_cache(maxsize=64)
def _preset(name: str) -> Profile:
    return load_profile(name)


# -- fast closed-form rollouts ---------------------------------------------------------------------------------

_DECODE = STAGES.index("decode")
_OVERHEAD_COLS = [i for i, s in enumerate(STAGES[:-1]) if s in API_STAGES or s in NETWORK_STAGES]
_INFERENCE_COLS = [i for i, s in enumerate(STAGES[:-1]) if s in INFERENCE_STAGES]


@dataclass(frozen=True, slots=True)
class Rollout:
    """The closed form's totals for one rollout: end to end, mean TTFT, API + network overhead, inference."""

    e2e_s: float
    ttft_mean_s: float
    overhead_s: float
    inference_s: float

    @property
    def overhead_share(self) -> float:
        return self.overhead_s / self.e2e_s


@lru_cache(maxsize=256)
def _tool_times(workload: Workload) -> np.ndarray:
    return np.array([s.tool_s for s in workload.turn_specs()])


def _tool_total(workload: Workload, ratio: float) -> float | None:
    """The tool time of ``workload`` with its tool-time median times ``ratio``, from its unscaled turns: a lognormal
    with a scaled median is every draw scaled, then capped (``None`` when a capped draw hides its raw value)."""
    tools, cap = _tool_times(workload), workload.tool_time_max_s
    if ratio < 1.0 and bool((tools >= cap).any()):
        return None
    return float(np.minimum(tools * ratio, cap).sum())


def rollout(profile: Profile, workload: Workload, tool_ratio: float = 1.0) -> Rollout:
    """:func:`labkit.model.closedform.forecast`'s totals, from the closed form's stage seconds
    (:func:`~labkit.model.closedform.expected_plan_seconds`), with the workload's tool times scaled by
    ``tool_ratio`` (token draws do not depend on tool times, so the turns are shared)."""
    d = expected_plan_seconds(profile, workload.turn_specs())
    tools = _tool_total(workload, tool_ratio)
    if tools is None:  # a capped draw hides its raw value: the scaled workload's own tool times
        wl = workload.with_(tool_time_median_s=workload.tool_time_median_s * tool_ratio)
        tools = float(sum(s.tool_s for s in wl.turn_specs()))
    return Rollout(
        e2e_s=float(d.sum() + tools),
        ttft_mean_s=float(d[:, :_DECODE].sum(axis=1).mean()),
        overhead_s=float(d[:, _OVERHEAD_COLS].sum()),
        inference_s=float(d[:, _INFERENCE_COLS].sum()),
    )


def e2e_reduction(setting: Setting, baseline: str, candidate: str, workload: str | Workload, tps: float) -> float:
    """End-to-end reduction of ``candidate`` against ``baseline`` on ``workload`` under ``setting``."""
    b = setting_rollout(setting, setting.profile(baseline, decode_tps=tps), workload)
    c = setting_rollout(setting, setting.profile(candidate, decode_tps=tps), workload)
    return 1 - c.e2e_s / b.e2e_s


def setting_rollout(setting: Setting, profile: Profile, workload: str | Workload) -> Rollout:
    """The rollout of an already-applied profile on ``workload`` as ``setting`` sees it (a member's tool times)."""
    wl = load_workload(workload)
    return rollout(profile, wl, setting.tool_ratio if isinstance(setting, Member) else 1.0)


def call_fixed_s(profile: Profile) -> float:
    """The time of one continuation call that does not grow with tokens: every stage at zero uncached input and one
    output token, on an open connection with its caches hit (what a fit's ``call_fixed_s`` estimates)."""
    spec = TurnSpec(1, 0, 0, 1, 0.0, False)
    return float(sum(s.duration_s for s in plan_turn(profile, spec, CacheState(True, True, True))))


# -- sampling and solving --------------------------------------------------------------------------------------


def _draw(rng: np.random.Generator) -> tuple[dict[str, float], Profile]:
    """One draw of the priors, and the raw baseline it gives (fixed API costs at scale 1)."""
    ref_base, _, _ = _references()
    draws = {p.name: p.draw(rng) for p in PRIORS}
    changes: dict[str, Any] = {}
    for f in FIXED_API_PARAMS:
        ratio = float(rng.lognormal(0.0, FIXED_SPLIT_SIGMA))
        draws[f"{f} split"] = ratio
        changes[f] = getattr(ref_base, f) * ratio
    for f in PER_TOKEN_API_PARAMS:
        changes[f] = getattr(ref_base, f) * draws["per_token_scale"] * float(rng.lognormal(0.0, PER_TOKEN_SPLIT_SIGMA))
    changes.update(
        hops=int(draws["hops"]),
        rtt_s=draws["rtt_s"],
        connect_s=2 * draws["rtt_s"],
        queue_s=draws["queue_s"],
        prefill_overhead_s=draws["prefill_overhead_s"],
        prefill_tokens_per_s=draws["prefill_tokens_per_s"],
        prefix_cache_hit_share=draws["prefix_cache_hit_share"],
    )
    return draws, ref_base.with_(**changes)


def _scaled(raw: Profile, a: float) -> Profile:
    return raw.with_(**{f: getattr(raw, f) * a for f in FIXED_API_PARAMS})


def _member(raw: Profile, a: float, u: float, tool_ratio: float, draws: dict[str, float], index: int = -1) -> Member:
    return Member(index, _scaled(raw, a), u, tool_ratio, a, tuple(draws.items()))


def _solve(raw: Profile, draws: dict[str, float], tool_ratio: float) -> tuple[float, float] | str:
    """The fixed-cost scale ``a`` and safety factor ``u`` that give the drawn TTFT and end-to-end targets on
    ``codex_bugfix`` at 1,000 tokens/s, or why there is none (``no_solution``: no fixed-cost scale in
    :data:`API_SCALE_RANGE` meets both; ``slower_classifiers``: only with classifiers slower after the sprint).
    Mean TTFT and end to end are linear in ``a`` and in ``u`` separately, so rollouts at the corners (a, u) in
    {0, 1}^2 determine them everywhere."""
    t, e = draws["ttft_target"], draws["e2e_target"]
    bug = load_workload("codex_bugfix")
    # c[a, u, profile, (ttft, e2e)] at the corners; profiles: baseline, optimized, websocket.
    c = np.empty((2, 2, 3, 2))
    for a in (0, 1):
        for u in (0, 1):
            m = _member(raw, a, u, tool_ratio, draws)
            for k, n in enumerate(("http_baseline", "http_optimized", "websocket")):
                r = rollout(m.profile(n, decode_tps=FIT_TPS), bug, tool_ratio)
                c[a, u, k] = (r.ttft_mean_s, r.e2e_s)

    cf = c.tolist()

    # Works on floats and on arrays of fixed-cost scales alike.
    def bilinear(k: int, j: int, a: Any, u: Any) -> Any:
        c00, c10, c01, c11 = cf[0][0][k][j], cf[1][0][k][j], cf[0][1][k][j], cf[1][1][k][j]
        return c00 + a * (c10 - c00) + u * ((c01 - c00) + a * (c11 - c10 - c01 + c00))

    def u_for(a: Any) -> Any:
        t0, t1 = bilinear(1, 0, a, 0.0), bilinear(1, 0, a, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ((1 - t) * bilinear(0, 0, a, 0.0) - t0) / (t1 - t0)

    def gap(a: Any) -> Any:
        return bilinear(2, 1, a, u_for(a)) - (1 - e) * bilinear(0, 1, a, 0.0)

    # A coarse log grid brackets the first root, then 48 halvings of that bracket in log scale.
    grid = np.geomspace(*API_SCALE_RANGE, 40)
    g = gap(grid)
    ok = np.isfinite(g[:-1]) & np.isfinite(g[1:]) & ((g[:-1] > 0) != (g[1:] > 0))
    if not ok.any():
        return "no_solution"
    i = int(np.argmax(ok))
    lo, hi, glo = float(grid[i]), float(grid[i + 1]), float(g[i])
    for _ in range(48):
        mid = math.sqrt(lo * hi)
        gm = float(gap(mid))
        if (gm > 0) == (glo > 0):
            lo, glo = mid, gm
        else:
            hi = mid
    a_root = math.sqrt(lo * hi)
    u_root = float(u_for(a_root))
    return (a_root, u_root) if 0 < u_root <= 1 else "slower_classifiers"


@dataclass(frozen=True, slots=True)
class FitConstraint:
    """What a real-session fit (``labkit fit --json``) says about the model: ``call_fixed_s`` bounds a member's fixed
    time per call (on ``profile``) from above; ``decode_tps`` is recorded beside it."""

    call_fixed_s: float
    call_fixed_lo: float
    call_fixed_hi: float
    decode_tps: float | None = None
    profile: str = "websocket"
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _number(d: Any, where: str) -> float:
    if isinstance(d, bool) or not isinstance(d, int | float) or not math.isfinite(d):
        raise ValueError(f"{where}: must be a finite number, got {d!r}")
    return float(d)


def load_fit(path: str | Path, profile: str = "websocket") -> FitConstraint:
    """A :class:`FitConstraint` from a ``labkit fit --json`` file: ``{"parameters": {NAME: {value, lo, hi, ...}}}``
    with at least ``call_fixed_s`` (``decode_tps`` is read when present)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"fit: {p}: not a readable JSON file ({exc})") from exc
    params = doc.get("parameters") if isinstance(doc, dict) else None
    if not isinstance(params, dict):
        raise ValueError(f"fit.parameters: {p}: missing or not an object")
    cf = params.get("call_fixed_s")
    if not isinstance(cf, dict):
        raise ValueError(f"fit.parameters.call_fixed_s: {p}: missing (the fitted fixed time per call)")
    value = _number(cf.get("value"), "fit.parameters.call_fixed_s.value")
    lo = _number(cf.get("lo", value), "fit.parameters.call_fixed_s.lo")
    hi = _number(cf.get("hi", value), "fit.parameters.call_fixed_s.hi")
    if not lo <= value <= hi:
        raise ValueError(f"fit.parameters.call_fixed_s: need lo <= value <= hi, got {lo}, {value}, {hi}")
    tps = params.get("decode_tps")
    decode = _number(tps.get("value"), "fit.parameters.decode_tps.value") if isinstance(tps, dict) else None
    load_profile(profile)
    return FitConstraint(value, lo, hi, decode, profile, p.name)


def _accept(m: Member, fit: FitConstraint | None) -> str | None:
    """Why a solved member is rejected, or ``None``."""
    from labkit.analysis.claims import TOLERANCE, realistic_sessions

    bound = _guide_bound() + TOLERANCE
    for w in [load_workload("codex_bugfix"), *realistic_sessions()]:
        if e2e_reduction(m, "http_baseline", "websocket", w, FIT_TPS) > bound:
            return "guide_e2e_up_to_40"
    if fit is not None and call_fixed_s(m.profile(fit.profile)) > fit.call_fixed_hi:
        return "fit_call_fixed_s"
    return None


def _guide_bound() -> float:
    from labkit.analysis.registry import published

    return published("guide_e2e_up_to_40").value


# -- the ensemble ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """A 5-95% interval over the ensemble, with its median."""

    lo: float
    hi: float
    median: float

    def to_dict(self) -> dict[str, float]:
        return {"lo": self.lo, "hi": self.hi, "median": self.median}

    def text(self, fmt: str = ".1%") -> str:
        return f"5-95%: {self.lo:{fmt}}-{self.hi:{fmt}}"


def interval(values: Sequence[float] | np.ndarray) -> Interval:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    lo, hi = np.quantile(v, QUANTILES)
    return Interval(float(lo), float(hi), float(np.median(v)))


@dataclass(frozen=True)
class Ensemble:
    """Accepted members, how many draws it took, and why the others were rejected."""

    members: tuple[Member, ...]
    seed: int
    tried: int
    rejected: dict[str, int]
    fit: FitConstraint | None = None

    def __len__(self) -> int:
        return len(self.members)

    def map(self, fn: Callable[[Member], float]) -> np.ndarray:
        return np.array([fn(m) for m in self.members], dtype=float)

    def interval(self, fn: Callable[[Member], float]) -> Interval:
        return interval(self.map(fn))

    def draws(self) -> pd.DataFrame:
        """One row per member: every draw of the priors, the fixed-stage split, and the solved parameters."""
        return pd.DataFrame([m.row() for m in self.members])

    def rests_on(self, values: Sequence[float] | np.ndarray) -> tuple[str, float]:
        """The assumed parameter a quantity depends on most over the ensemble: the largest absolute Spearman rank
        correlation between the quantity and a prior's draws (the fixed-stage split counts as one draw each)."""
        d = self.draws().drop(columns=["api_scale", "safety_speedup"])
        v = pd.Series(np.asarray(values, dtype=float))
        if v.nunique() < 2:
            return ("none", 0.0)
        rho = d.apply(lambda col: col.corr(v, method="spearman")).dropna()
        if rho.empty:
            return ("none", 0.0)
        name = str(rho.abs().idxmax())
        return name, float(rho[name])

    def verdict(self, values: Sequence[float] | np.ndarray, holds: Sequence[bool] | np.ndarray) -> str:
        """Whether a conclusion holds across the ensemble, as a clause for a Finding: ``holds in all N parameter
        sets`` or ``holds in K of N parameter sets; it rests most on <the assumption> (rank correlation r)``,
        naming the prior the quantity ``values`` depends on most."""
        ok = np.asarray(holds, dtype=bool)
        n, k = len(self.members), int(ok.sum())
        name, rho = self.rests_on(values)
        if k == n:
            return f"holds in all {n} parameter sets of the ensemble"
        return (
            f"holds in {k} of {n} parameter sets of the ensemble; it rests most on {assumption_label(name)} "
            f"(rank correlation {rho:+.2f})"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "members": len(self.members),
            "seed": self.seed,
            "tried": self.tried,
            "rejected": dict(self.rejected),
            "quantiles": list(QUANTILES),
            "method": "priors over the assumed parameters; fixed API-cost scale and safety speed-up re-solved per "
            "draw for the post's ~45% TTFT and ~40% end to end; rejected past the guide's up-to-40% bound"
            + ("; fixed time per call bounded by a real-session fit" if self.fit else ""),
            "fit": self.fit.to_dict() if self.fit else None,
        }


_LABELS = {
    "per_token_scale": "the assumed per-token API costs",
    "hops": "the assumed hops before the sprint",
    "prefill_tokens_per_s": "the assumed prefill speed",
    "prefill_overhead_s": "the assumed prefill overhead",
    "rtt_s": "the assumed round trip",
    "queue_s": "the assumed queueing",
    "tool_time_median_s": "the assumed tool time",
    "prefix_cache_hit_share": "the assumed prefix-cache hit share",
    "ttft_target": "where inside 'about 45%' the TTFT cut lies",
    "e2e_target": "where inside 'about 40%' the end-to-end cut lies",
}


def assumption_label(name: str) -> str:
    """A prior's name as a Finding says it (``validate_s split`` -> the assumed share of validate_s in ...)."""
    if name.endswith(" split"):
        return f"the assumed share of `{name.removesuffix(' split')}` in the fixed API cost"
    return _LABELS.get(name, f"`{name}`")


# -- sweeps over the ensemble, for bands ----------------------------------------------------------------------


def ensemble_sweep(
    ens: Ensemble,
    profiles: Sequence[str],
    workload: str | Workload,
    *,
    tps: Sequence[float],
    turns: Sequence[int] | None = None,
    baseline: str = "http_baseline",
) -> pd.DataFrame:
    """One row per (member, profile, decode speed, turns): end to end, mean TTFT, overhead share and the reduction
    and speed-up against ``baseline``; ``member`` -1 is the defaults. The input of :func:`bands`."""
    base_w = load_workload(workload)
    settings: list[tuple[int, Setting]] = [(-1, DEFAULTS), *((m.index, m) for m in ens.members)]
    rows = []
    for idx, setting in settings:
        for n in turns or [base_w.turns]:
            w = base_w.with_(turns=int(n))
            for t in tps:
                ref = setting_rollout(setting, setting.profile(baseline, decode_tps=float(t)), w)
                for name in profiles:
                    r = setting_rollout(setting, setting.profile(name, decode_tps=float(t)), w)
                    rows.append(
                        {
                            "member": idx,
                            "scenario": name,
                            "tps": float(t),
                            "turns": int(n),
                            "e2e_s": r.e2e_s,
                            "ttft_mean_s": r.ttft_mean_s,
                            "overhead_share": r.overhead_share,
                            "inference_share": r.inference_s / r.e2e_s,
                            "reduction": 1 - r.e2e_s / ref.e2e_s,
                            "speedup": ref.e2e_s / r.e2e_s,
                        }
                    )
    return pd.DataFrame(rows)


def bands(df: pd.DataFrame, x: str, y: str, by: str = "scenario") -> pd.DataFrame:
    """Per (``by``, ``x``): the 5-95% band and median of ``y`` over the members, and the defaults' value
    (``member`` -1) as ``default``."""
    if missing := {x, y, by, "member"} - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    members = df[df["member"] >= 0]
    if members.empty:
        raise ValueError("df: no ensemble members (member >= 0)")
    g = members.groupby([by, x], sort=True)[y]
    out = pd.DataFrame(
        {"lo": g.quantile(QUANTILES[0]), "median": g.median(), "hi": g.quantile(QUANTILES[1])}
    ).reset_index()
    defaults = df[df["member"] < 0].set_index([by, x])[y]
    out["default"] = [defaults.get((a, b), math.nan) for a, b in zip(out[by], out[x], strict=True)]
    out.attrs.update(x=x, y=y, by=by, members=int(members["member"].nunique()))
    return out


def priors_markdown() -> str:
    """:data:`PRIORS` as a Markdown table (the model guide holds it; a test keeps it current)."""
    lines = ["| assumed parameter | prior | range | unit | why |", "|---|---|---|---|---|"]
    for p in PRIORS:
        lines.append(f"| `{p.name}` | {p.kind} | {p.lo:,g} to {p.hi:,g} | {p.unit} | {p.why} |")
    lines.append(
        f"| each fixed API stage's share | lognormal around the defaults' split | sigma {FIXED_SPLIT_SIGMA:g} | "
        "x defaults | how the fixed API cost splits over validate, state load, config, classifiers, hops, persist "
        "and billing (the total is solved) |"
    )
    lines.append(
        f"| each per-token API cost | lognormal around `per_token_scale` | sigma {PER_TOKEN_SPLIT_SIGMA:g} | "
        "x defaults | how the per-token cost splits over validate, state load, render and classifiers |"
    )
    return "\n".join(lines)


def build_ensemble(members: int = 200, seed: int = 0, fit: FitConstraint | None = None) -> Ensemble:
    """``members`` accepted parameter sets, drawn from :data:`PRIORS` with ``seed`` (cached per arguments)."""
    if not isinstance(members, int) or members < 2:
        raise ValueError(f"members: must be an integer >= 2, got {members!r}")
    return _build(members, seed, fit)


@lru_cache(maxsize=8)
def _build(n: int, seed: int, fit: FitConstraint | None) -> Ensemble:
    _, _, tool_ref = _references()
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xE45E])))
    accepted: list[Member] = []
    rejected: dict[str, int] = {}
    tried = 0
    while len(accepted) < n:
        if tried >= 25 * n:
            raise ValueError(
                f"ensemble: only {len(accepted)} of {tried} draws are consistent with the fitted numbers "
                f"(rejected: {rejected}); the constraints leave the priors almost no room"
            )
        tried += 1
        draws, raw = _draw(rng)
        tool_ratio = draws["tool_time_median_s"] / tool_ref
        solved = _solve(raw, draws, tool_ratio)
        if isinstance(solved, str):
            rejected[solved] = rejected.get(solved, 0) + 1
            continue
        m = _member(raw, solved[0], solved[1], tool_ratio, draws, len(accepted))
        why = _accept(m, fit)
        if why is not None:
            rejected[why] = rejected.get(why, 0) + 1
            continue
        accepted.append(m)
    return Ensemble(tuple(accepted), seed, tried, rejected, fit)


def default_ensemble() -> Ensemble:
    return build_ensemble()


__all__ = [
    "DEFAULTS",
    "PRIORS",
    "QUANTILES",
    "Defaults",
    "Ensemble",
    "FitConstraint",
    "Interval",
    "Member",
    "Prior",
    "Rollout",
    "Setting",
    "assumption_label",
    "bands",
    "build_ensemble",
    "call_fixed_s",
    "default_ensemble",
    "e2e_reduction",
    "ensemble_sweep",
    "interval",
    "load_fit",
    "priors_markdown",
    "rollout",
]
