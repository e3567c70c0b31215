"""Closed forms on the simulated clock: the rollout's (re-exported from :mod:`labkit.model.closedform`, the one
copy, which the trace importers and the ensemble use too), and Erlang C for the multi-server queue.

The deterministic rollout is the sum of the plans of the workload's turns plus tool times, with the cache state
each turn would have; random routing over N replicas takes the expectation over the replica hit. This is the
fast path behind the sliders; the DES must agree with it exactly when nothing is random.
"""

from __future__ import annotations

from labkit.model.closedform import (
    RolloutForecast,
    analytic_spans,
    cache_state,
    expected_stage_matrix,
    forecast,
)

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
