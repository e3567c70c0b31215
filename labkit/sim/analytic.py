"""Closed forms: the deterministic single-agent rollout, and Erlang C for the multi-server queue.

The deterministic rollout is the sum of ``plan_turn`` over the workload's turns plus tool times, with the
cache state each turn would have. Random routing over N replicas makes a replica-local cache hit a coin
flip with p = 1/N; the closed form takes its expectation (each stage's duration is linear in the hit).
This is the fast path behind the sliders; the DES must agree with it exactly when nothing is random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labkit.model import (
    API_STAGES,
    INFERENCE_STAGES,
    NETWORK_STAGES,
    STAGES,
    CacheState,
    Profile,
    TurnSpec,
    Workload,
    hit_probability,
    plan_turn,
)
from labkit.model.spans import SpanColumns

_new_tuple = tuple.__new__

_STAGE_INDEX = {name: i for i, name in enumerate(STAGES)}


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


def expected_stage_matrix(profile: Profile, specs: tuple[TurnSpec, ...]) -> np.ndarray:
    """Expected seconds per (turn, stage), columns in ``STAGES`` order (the last column is ``tool``)."""
    p = hit_probability(profile)
    out = np.zeros((len(specs), len(STAGES)))
    for i, spec in enumerate(specs):
        hit = plan_turn(profile, spec, cache_state(profile, spec, True))
        if p < 1.0:
            miss = plan_turn(profile, spec, cache_state(profile, spec, False))
            for j, (h, m) in enumerate(zip(hit, miss, strict=True)):
                out[i, j] = p * h.duration_s + (1 - p) * m.duration_s
        else:
            for j, s in enumerate(hit):
                out[i, j] = s.duration_s
        out[i, -1] = spec.tool_s
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
    specs = workload.turn_specs(seed)
    m = expected_stage_matrix(profile, specs)
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


def analytic_spans(profile: Profile, workload: Workload, seed: int | None = None, rollout: int = 0) -> SpanColumns:
    """The closed-form rollout laid out as a spans table (``source='analytic'``), expected durations."""
    specs = workload.turn_specs(seed)
    m = expected_stage_matrix(profile, specs)
    cols = SpanColumns()
    t = 0.0
    for i, spec in enumerate(specs):
        plan = plan_turn(profile, spec, cache_state(profile, spec, hit_probability(profile) >= 0.5))
        for j, stage in enumerate(plan):
            d = float(m[i, j])
            cols.add(
                "analytic", profile.name, rollout, i, stage.name, t, t + d, stage.tokens, stage.bytes, stage.cache_hit
            )
            t += d
        if not spec.final:
            cols.add("analytic", profile.name, rollout, i, "tool", t, t + spec.tool_s)
            t += spec.tool_s
    return cols


# -- Erlang C ----------------------------------------------------------------------------------------


def erlang_c(lam: float, mu: float, c: int) -> float:
    """Probability that an arrival waits in an M/M/c queue (requires lam < c * mu)."""
    if lam <= 0 or mu <= 0:
        raise ValueError("lam, mu: must be > 0")
    if c < 1:
        raise ValueError("c: must be >= 1")
    a = lam / mu
    rho = a / c
    if rho >= 1:
        raise ValueError(f"lam: unstable queue, utilisation {rho:.3f} >= 1")
    # Sum in log space-free form via the recursive Erlang B, which is numerically stable.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - rho + rho * b)


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in queue W_q of an M/M/c queue."""
    return erlang_c(lam, mu, c) / (c * mu - lam)


def mmc_mean_sojourn(lam: float, mu: float, c: int) -> float:
    return mmc_mean_wait(lam, mu, c) + 1 / mu


def mmc_mean_queue_length(lam: float, mu: float, c: int) -> float:
    return lam * mmc_mean_wait(lam, mu, c)


__all__ = [
    "RolloutForecast",
    "analytic_spans",
    "cache_state",
    "erlang_c",
    "expected_stage_matrix",
    "forecast",
    "mmc_mean_queue_length",
    "mmc_mean_sojourn",
    "mmc_mean_wait",
]
