"""Parameter sweeps over any ``concurrent.futures.Executor``: in-process, a process pool, or a cluster's.

A grid point is a dict: ``profile`` and ``workload`` name presets; any other key that is a field of
:class:`~labkit.model.Profile` or :class:`~labkit.model.Workload` overrides it; ``method`` picks the
closed form (``analytic``, default) or the DES (``des``, with ``rollouts``, ``seed``, ``jitter``,
``drop_rate``, ``evict_rate``). Every point is evaluated by the module-level :func:`evaluate`, so it pickles
to worker processes and cluster workers alike; results do not depend on where a point ran.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import pandas as pd

from labkit.model import Profile, Workload, load_profile, load_workload

_PROFILE_FIELDS = {f.name for f in dataclasses.fields(Profile)} - {"name"}
_WORKLOAD_FIELDS = {f.name for f in dataclasses.fields(Workload)} - {"name", "description"}
_SIM_KEYS = {"method", "rollouts", "seed", "jitter", "drop_rate", "evict_rate", "connection_limit_s"}
_KNOWN = _PROFILE_FIELDS | _WORKLOAD_FIELDS | _SIM_KEYS | {"profile", "workload"}
# Workload fields that collide with no Profile field, so a flat dict can hold both.
assert not (_PROFILE_FIELDS & _WORKLOAD_FIELDS)


def expand_grid(grid: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A dict of lists becomes its Cartesian product; a list of dicts is taken as is."""
    if isinstance(grid, Mapping):
        keys = list(grid)
        values = [v if isinstance(v, list | tuple) else [v] for v in grid.values()]
        points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]
    else:
        points = [dict(p) for p in grid]
    for point in points:
        unknown = set(point) - _KNOWN
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown sweep parameter")
    return points


def build(point: Mapping[str, Any]) -> tuple[Profile, Workload]:
    profile = load_profile(
        point.get("profile", "http_baseline"), **{k: v for k, v in point.items() if k in _PROFILE_FIELDS}
    )
    workload = load_workload(
        point.get("workload", "codex_bugfix"), **{k: v for k, v in point.items() if k in _WORKLOAD_FIELDS}
    )
    return profile, workload


def evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of one grid point (module level so executors can pickle it)."""
    from labkit.analysis.metrics import rollout_metrics, turn_metrics
    from labkit.sim.analytic import forecast
    from labkit.sim.des import Faults, simulate

    profile, workload = build(point)
    method = point.get("method", "analytic")
    row: dict[str, Any] = {"profile": profile.name, "workload": workload.name, **point}
    if method == "analytic":
        f = forecast(profile, workload, point.get("seed"))
        row.update(
            e2e_s=f.e2e_s,
            ttft_mean_s=f.ttft_mean_s,
            overhead_share=f.overhead_share,
            api_s=f.api_s,
            network_s=f.network_s,
            inference_s=f.inference_s,
            tool_s=f.tool_s,
        )
    elif method == "des":
        faults = Faults(
            drop_rate=point.get("drop_rate", 0.0),
            evict_rate=point.get("evict_rate", 0.0),
            connection_limit_s=point.get("connection_limit_s", 3600.0),
        )
        spans = simulate(
            profile,
            workload,
            rollouts=point.get("rollouts", 20),
            seed=point.get("seed", 0),
            jitter=point.get("jitter", 0.2),
            faults=faults,
        )
        r = rollout_metrics(spans)
        t = turn_metrics(spans)
        row.update(
            e2e_s=float(r["e2e_s"].mean()),
            e2e_p50_s=float(r["e2e_s"].quantile(0.5)),
            e2e_p95_s=float(r["e2e_s"].quantile(0.95)),
            ttft_mean_s=float(t["ttft_s"].mean()),
            ttft_p95_s=float(t["ttft_s"].quantile(0.95)),
            overhead_share=float(r["overhead_share"].mean()),
            api_s=float(r["api_s"].mean()),
            network_s=float(r["network_s"].mean()),
            inference_s=float(r["inference_s"].mean()),
            tool_s=float(r["client_s"].mean()),
            fallbacks=float(r["fallbacks"].mean()),
        )
    else:
        raise ValueError(f"method: must be 'analytic' or 'des', got {method!r}")
    return row


def sweep(
    grid: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]],
    executor: Executor | None = None,
    chunksize: int = 1,
) -> pd.DataFrame:
    """Evaluate every grid point, in-process or on ``executor``; one row per point, in grid order."""
    points = expand_grid(grid)
    if executor is None:
        rows = [evaluate(p) for p in points]
    else:
        try:
            rows = list(executor.map(evaluate, points, chunksize=chunksize))
        except TypeError:  # executors whose map() takes no chunksize (e.g. dask's ClientExecutor)
            rows = list(executor.map(evaluate, points))
    return pd.DataFrame(rows)
