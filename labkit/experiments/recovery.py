"""Parameter recovery: serve a random profile with the simulator, measure it live, fit it, compare.

One trial draws a non-default profile (the ``websocket`` preset with the fitted parameters drawn at random from
the ranges in ``RANGES``), serves it with :class:`labkit.live.server.SimServer` on loopback, runs the
``calibration`` workload over WebSocket mode with labkit's own client (:func:`labkit.live.runner.run_rollouts`),
fits the spans (:func:`labkit.traces.fit.fit_spans`) and checks each fitted parameter against the truth: inside
its interval, and within 10% (``decode_tps`` within 3%). Then held-out rollouts (other seeds) are measured and
predicted by the closed form with the fitted profile; the end-to-end error of each is recorded.

It drives a live server, so it lives with the experiments, not in :mod:`labkit.traces` (which reads files and
computes, and never imports :mod:`labkit.live`); it imports :mod:`labkit.live` inside its functions.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.sim.analytic import forecast
from labkit.traces.fit import FitResult, compare_parameters, fit_spans
from labkit.util.progress import progress

#: Ranges the true parameters are drawn from (log-uniform for rates, uniform otherwise).
RANGES: dict[str, tuple[float, float]] = {
    "decode_tps": (400.0, 2000.0),
    "prefill_overhead_s": (0.03, 0.12),
    "prefill_tokens_per_s": (20_000.0, 100_000.0),
    "prefix_cache_hit_share": (0.5, 0.95),
    "safety_out_s": (0.01, 0.05),
    "safety_out_per_1k_s": (0.01, 0.05),
}
LOG_UNIFORM = frozenset({"decode_tps", "prefill_tokens_per_s"})
#: Tolerance of each recovered parameter (relative); the rest 10%.
TOLERANCE = {"decode_tps": 0.03}
DEFAULT_TOLERANCE = 0.10
HELD_OUT_TOLERANCE = 0.05
#: Not compared: set by the loopback socket, not by the simulated profile (the simulator does not add them).
NOT_SIMULATED = frozenset({"connect_s"})


def random_profile(seed: int, base: str = "websocket") -> Profile:
    """A seeded random non-default profile: ``base`` with the parameters of ``RANGES`` drawn at random."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xF17]))
    values = {}
    for key, (lo, hi) in RANGES.items():
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if key in LOG_UNIFORM else rng.uniform(lo, hi)
        values[key] = float(x)
    return load_profile(base).with_(name=f"random_{seed}", **values)


def token_cost(workload: Workload | str = "calibration", rollouts: int = 6, seed: int = 0) -> dict[str, int]:
    """Tokens a measurement of ``rollouts`` rollouts (seeds ``seed..``) bills on a real API: every request's whole
    conversation as input (chained or not, the API bills the full context; cached tokens at a discount), every
    output token."""
    w = load_workload(workload)
    inp = out = req = 0
    for i in range(rollouts):
        specs = w.turn_specs(seed + i)
        inp += sum(s.conversation_tokens for s in specs)
        out += sum(s.output_tokens + s.reasoning_tokens for s in specs)
        req += len(specs)
    return {"requests": req, "input_tokens": inp, "output_tokens": out, "rollouts": rollouts}


async def measure_simulated(
    profile: Profile,
    workload: Workload | str = "calibration",
    *,
    rollouts: int = 6,
    concurrency: int = 3,
    seed: int = 0,
    transport: str = "ws",
) -> pd.DataFrame:
    """Spans of ``rollouts`` live rollouts against a simulator serving ``profile`` on loopback."""
    from labkit.live.runner import rollouts_spans, run_rollouts
    from labkit.live.server import SimServer

    w = load_workload(workload)
    async with SimServer(profile, w) as server:
        results = await run_rollouts(
            transport, w, base_url=server.base_url, rollouts=rollouts, concurrency=concurrency, seed=seed
        )
    return rollouts_spans(results)


@dataclass(frozen=True)
class Trial:
    seed: int
    truth: dict[str, float]
    parameters: dict[str, dict[str, Any]]
    held_out_errors: tuple[float, ...]
    seconds: float

    @property
    def recovered(self) -> dict[str, bool]:
        """Per compared parameter: inside its interval and within its tolerance."""
        return {
            k: bool(v["inside"] and v["rel_error"] <= TOLERANCE.get(k, DEFAULT_TOLERANCE))
            for k, v in self.parameters.items()
            if k not in NOT_SIMULATED
        }

    @property
    def ok(self) -> bool:
        return all(self.recovered.values()) and all(abs(e) <= HELD_OUT_TOLERANCE for e in self.held_out_errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "truth": self.truth,
            "parameters": self.parameters,
            "recovered": self.recovered,
            "held_out_errors": list(self.held_out_errors),
            "ok": self.ok,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Recovery:
    trials: tuple[Trial, ...]
    rollouts: int
    held_out: int
    workload: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Share of trials in which every parameter was recovered and every held-out rollout predicted."""
        return float(np.mean([t.ok for t in self.trials])) if self.trials else math.nan

    def parameter_rates(self) -> dict[str, float]:
        keys = sorted({k for t in self.trials for k in t.recovered})
        return {k: float(np.mean([t.recovered.get(k, False) for t in self.trials])) for k in keys}

    def held_out_summary(self) -> dict[str, float]:
        errs = np.abs([e for t in self.trials for e in t.held_out_errors])
        if not len(errs):
            return {}
        return {
            "n": len(errs),
            "mean_abs_rel": float(errs.mean()),
            "max_abs_rel": float(errs.max()),
            "within_5pct": float(np.mean(errs <= HELD_OUT_TOLERANCE)),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "trials": len(self.trials),
            "workload": self.workload,
            "rollouts_per_fit": self.rollouts,
            "held_out_rollouts": self.held_out,
            "recovery_rate": self.rate,
            "parameter_rates": self.parameter_rates(),
            "held_out": self.held_out_summary(),
            "ranges": {k: list(v) for k, v in RANGES.items()},
            "per_trial": [t.to_dict() for t in self.trials],
        }


async def run_trial(
    seed: int,
    *,
    workload: str = "calibration",
    rollouts: int = 6,
    held_out: int = 2,
    concurrency: int = 3,
    n_boot: int = 200,
) -> tuple[Trial, FitResult]:
    """One recovery trial (see the module docstring)."""
    from labkit.analysis.metrics import rollout_metrics

    t0 = time.perf_counter()
    truth = random_profile(seed)
    w = load_workload(workload)
    base_seed = seed * 10_000
    spans = await measure_simulated(truth, w, rollouts=rollouts, concurrency=concurrency, seed=base_seed)
    result = fit_spans(spans, base="websocket", name=f"fitted_{seed}", source=f"recovery trial {seed}", n_boot=n_boot)
    held_seed = base_seed + 5_000
    errors: list[float] = []
    if held_out:
        held = await measure_simulated(truth, w, rollouts=held_out, concurrency=concurrency, seed=held_seed)
        measured = rollout_metrics(held).sort_values("rollout")
        r: Any
        for r in measured.itertuples(index=False):
            predicted = forecast(result.profile, w, seed=held_seed + int(r.rollout)).e2e_s
            errors.append((predicted - float(r.e2e_s)) / float(r.e2e_s))
    trial = Trial(
        seed=seed,
        truth={k: float(getattr(truth, k)) for k in RANGES},
        parameters=compare_parameters(result, truth),
        held_out_errors=tuple(errors),
        seconds=time.perf_counter() - t0,
    )
    return trial, result


async def recovery(trials: int, *, first_seed: int = 1, **kwargs: Any) -> Recovery:
    """``trials`` trials with seeds ``first_seed..``, one after the other (they measure wall-clock time)."""
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials: must be an integer >= 1, got {trials!r}")
    out = []
    for k in progress(range(trials), desc="recovery trials", total=trials, unit="trial"):
        trial, _ = await run_trial(first_seed + k, **kwargs)
        out.append(trial)
    return Recovery(
        trials=tuple(out),
        rollouts=int(kwargs.get("rollouts", 6)),
        held_out=int(kwargs.get("held_out", 2)),
        workload=str(kwargs.get("workload", "calibration")),
    )
