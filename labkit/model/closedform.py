"""The closed form: the expected single-agent rollout, from the model alone.

The deterministic rollout is the sum of the plans of the workload's turns plus tool times, each turn planned in
the cache state it has when nothing goes wrong (:func:`cache_state`: a persistent connection is open after the
first turn, a WebSocket connection cache hit after the first turn, an HTTP continuation lands on its
conversation's replica with the profile's :func:`~labkit.model.hit_probability`). Random routing over N
replicas makes a replica-local cache hit a coin flip with p = 1/N; the closed form takes its expectation (each
stage's duration is linear in the hit). The plans come from :func:`~labkit.model.plan.plan_rollout`, one numpy
pass per rollout, whose rows equal :func:`~labkit.model.plan_turn`'s durations exactly.

This is the one copy every layer uses: the sliders and the sweeps (:mod:`labkit.sim.analytic` re-exports it),
the trace fits and replays (:mod:`labkit.traces`, which may not import the simulators), and the ensemble's
members (:mod:`labkit.analysis.ensemble`). The DES must agree with it exactly when nothing is random.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labkit.model.plan import CacheState, hit_probability, plan_rollout, plan_rollout_stages
from labkit.model.profile import Profile
from labkit.model.spans import SpanColumns
from labkit.model.stages import API_STAGES, INFERENCE_STAGES, NETWORK_STAGES, STAGES
from labkit.model.workload import TurnSpec, Workload

_new_tuple = tuple.__new__
_STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}
# cache_state depends on a turn only through whether it is the first: these stand for every first and later turn.
_FIRST_TURN = TurnSpec(0, 0, 0, 1, 0.0, False)
_LATER_TURN = TurnSpec(1, 0, 0, 1, 0.0, False)


def cache_state(profile: Profile, turn: TurnSpec, replica_hit: bool, reconnected: bool = False) -> CacheState:
    """The cache state of a turn's request (``reconnected``: it opens a fresh connection; ``replica_hit``: it
    lands on the replica that served the conversation's previous turn). The DES asks this once a request."""
    later = not (turn.index == 0 or reconnected)
    # Built as a plain tuple (a NamedTuple's keyword constructor costs more than the rest of this function).
    return _new_tuple(
        CacheState,
        (
            later and (profile.transport == "websocket" or profile.keep_alive),
            later and profile.chaining == "connection",
            replica_hit and turn.index > 0,
        ),
    )


def rollout_cache_states(profile: Profile, specs: Sequence[TurnSpec], replica_hit: bool) -> np.ndarray:
    """:func:`cache_state` of every turn of an undisturbed rollout, as the (turns x 3) boolean array
    :func:`~labkit.model.plan.plan_rollout` takes."""
    first = cache_state(profile, _FIRST_TURN, replica_hit)
    later = cache_state(profile, _LATER_TURN, replica_hit)
    continuing = np.fromiter((s.index > 0 for s in specs), dtype=bool, count=len(specs))
    return np.where(continuing[:, None], np.array(later, dtype=bool), np.array(first, dtype=bool))


def expected_plan_seconds(profile: Profile, specs: Sequence[TurnSpec]) -> np.ndarray:
    """Expected seconds per (turn, plan stage) of an undisturbed rollout: the plan on the conversation's replica,
    or its expectation over the replica hit when routing is random (columns in plan order, no ``tool``)."""
    p = hit_probability(profile)
    hit = plan_rollout(profile, specs, rollout_cache_states(profile, specs, True))
    if p >= 1.0:
        return hit
    miss = plan_rollout(profile, specs, rollout_cache_states(profile, specs, False))
    return p * hit + (1 - p) * miss


def expected_stage_matrix(profile: Profile, specs: Sequence[TurnSpec]) -> np.ndarray:
    """Expected seconds per (turn, stage), columns in ``STAGES`` order (the last column is ``tool``)."""
    out = np.empty((len(specs), len(STAGES)))
    out[:, :-1] = expected_plan_seconds(profile, specs)
    out[:, -1] = [spec.tool_s for spec in specs]
    return out


@dataclass(frozen=True)
class RolloutForecast:
    """The closed-form result for one profile and workload."""

    profile: str
    workload: str
    stage_s: dict[str, float]
    ttft_s: tuple[float, ...]
    turn_latency_s: tuple[float, ...]
    e2e_s: float

    @property
    def ttft_mean_s(self) -> float:
        return float(np.mean(self.ttft_s))

    def category_s(self, stages: frozenset[str]) -> float:
        return sum(v for k, v in self.stage_s.items() if k in stages)

    @property
    def api_s(self) -> float:
        return self.category_s(API_STAGES)

    @property
    def network_s(self) -> float:
        return self.category_s(NETWORK_STAGES)

    @property
    def inference_s(self) -> float:
        return self.category_s(INFERENCE_STAGES)

    @property
    def tool_s(self) -> float:
        return self.stage_s["tool"]

    @property
    def overhead_share(self) -> float:
        """API service + network time as a share of end to end."""
        return (self.api_s + self.network_s) / self.e2e_s

    def to_row(self) -> dict[str, Any]:
        """One metrics row, in :func:`labkit.analysis.metrics.rollout_metrics` column names (``scenario`` is the
        profile), so a figure takes a closed-form sweep, a DES sweep or live metrics alike."""
        return {
            "scenario": self.profile,
            "workload": self.workload,
            "e2e_s": self.e2e_s,
            "ttft_mean_s": self.ttft_mean_s,
            "turn_latency_mean_s": float(np.mean(self.turn_latency_s)),
            "turns": len(self.ttft_s),
            "network_s": self.network_s,
            "api_s": self.api_s,
            "inference_s": self.inference_s,
            "client_s": self.tool_s,
            "overhead_share": self.overhead_share,
        }


def forecast(profile: Profile, workload: Workload, seed: int | None = None) -> RolloutForecast:
    """Closed-form end to end, TTFT per turn and time per stage of one rollout."""
    m = expected_stage_matrix(profile, workload.turn_specs(seed))
    decode_col = _STAGE_INDEX["decode"]
    ttft = m[:, :decode_col].sum(axis=1)
    turn_latency = m[:, :-1].sum(axis=1)
    totals = m.sum(axis=0)
    return RolloutForecast(
        profile=profile.name,
        workload=workload.name,
        stage_s={name: float(totals[i]) for i, name in enumerate(STAGES)},
        ttft_s=tuple(float(x) for x in ttft),
        turn_latency_s=tuple(float(x) for x in turn_latency),
        e2e_s=float(totals.sum()),
    )


def expected_e2e_s(profile: Profile, workload: Workload, seed: int | None = None) -> float:
    """Expected seconds of one rollout end to end (model stages plus tool times): :func:`forecast`'s ``e2e_s``,
    without the per-turn and per-stage tables."""
    return float(expected_stage_matrix(profile, workload.turn_specs(seed)).sum(axis=0).sum())


def analytic_spans(profile: Profile, workload: Workload, seed: int | None = None, rollout: int = 0) -> SpanColumns:
    """The closed-form rollout laid out as a spans table (``source='analytic'``), expected durations; tokens,
    bytes and cache hits are those of the likelier replica outcome."""
    specs = workload.turn_specs(seed)
    m = expected_stage_matrix(profile, specs)
    _, tokens, nbytes, hits = plan_rollout_stages(
        profile, specs, rollout_cache_states(profile, specs, hit_probability(profile) >= 0.5)
    )
    names = STAGES[:-1]
    cols = SpanColumns()
    t = 0.0
    for i, spec in enumerate(specs):
        for j, stage in enumerate(names):
            d = float(m[i, j])
            cols.add(
                "analytic",
                profile.name,
                rollout,
                i,
                stage,
                t,
                t + d,
                int(tokens[i, j]),
                int(nbytes[i, j]),
                bool(hits[i, j]),
            )
            t += d
        if not spec.final:
            cols.add("analytic", profile.name, rollout, i, "tool", t, t + spec.tool_s)
            t += spec.tool_s
    return cols


__all__ = [
    "RolloutForecast",
    "analytic_spans",
    "cache_state",
    "expected_e2e_s",
    "expected_plan_seconds",
    "expected_stage_matrix",
    "forecast",
    "rollout_cache_states",
]
