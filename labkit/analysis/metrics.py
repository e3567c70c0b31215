"""Metrics derived from a spans table only, never measured separately.

The per-turn and per-rollout formulas (:func:`turn_metrics`, :func:`rollout_metrics`) sit with the spans table
in :mod:`labkit.model.spanmetrics`, where the sweep engine (:mod:`labkit.sim.sweep`) reads them too; they are
re-exported here with the stage totals, percentiles and reductions built on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from labkit.model.spanmetrics import CATEGORIES, ROLLOUT_KEYS, TURN_KEYS, rollout_metrics, turn_metrics, with_category

__all__ = [
    "CATEGORIES",
    "ROLLOUT_KEYS",
    "TURN_KEYS",
    "percentiles",
    "reduction",
    "rollout_metrics",
    "stage_totals",
    "turn_metrics",
]


def stage_totals(spans: pd.DataFrame) -> pd.DataFrame:
    """Mean seconds per rollout spent in each stage, per source and scenario (for stacked bars)."""
    df = with_category(spans)
    per = df.groupby([*ROLLOUT_KEYS, "stage", "category"], sort=False)["duration_s"].sum().reset_index()
    mean = per.groupby(["source", "scenario", "stage", "category"], sort=False)["duration_s"].mean().reset_index()
    return mean.rename(columns={"duration_s": "seconds"})


def percentiles(
    df: pd.DataFrame, column: str, by: Sequence[str] = ("source", "scenario"), qs: Sequence[float] = (50, 90, 95, 99)
) -> pd.DataFrame:
    """Percentiles of ``column`` per group, as columns ``p50``, ``p90``, ..."""
    g = df.groupby(list(by))[column]
    return pd.DataFrame({f"p{q:g}": g.quantile(q / 100) for q in qs}).reset_index()


def reduction(baseline: float, candidate: float) -> float:
    """Fractional reduction of ``candidate`` against ``baseline`` (0.4 = 40% less time)."""
    if baseline <= 0:
        raise ValueError("baseline: must be > 0")
    return 1.0 - candidate / baseline
