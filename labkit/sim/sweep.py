"""The one sweep engine: parameter grids evaluated over any ``concurrent.futures.Executor``.

A grid point is a dict. ``profile`` is a preset name, a profile file or a :class:`~labkit.model.Profile`;
``workload`` a preset name or a workload object (a :class:`~labkit.model.Workload` or anything with ``name`` and
``turn_specs(seed)``, such as a trace); any other key that is a field of Profile or Workload (or an alias:
``tps``, ``context_tokens``, ``tool_s``) overrides it; ``method`` picks the closed form (``analytic``, default) or
the DES (``des``, with ``rollouts``, ``seed``, ``jitter``, ``drop_rate``, ``evict_rate``, ``connection_limit_s``).
Every point is evaluated by the module-level :func:`evaluate`, so it pickles to worker processes and cluster
workers alike (they import only the installed package); results do not depend on where a point ran.

:func:`sweep` takes the points; :func:`forecast_sweep` is the product form the notebooks use (profiles x grid,
with a ``speedup`` column against a baseline). Both return one row per point in grid order, with the columns of
:meth:`labkit.sim.analytic.RolloutForecast.to_row` (the DES adds quantiles and fallbacks).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from typing import Any

import pandas as pd

from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.model.spanmetrics import rollout_metrics, turn_metrics
from labkit.util.progress import progress

BASELINE = "http_baseline"
_PROFILE_FIELDS = {f.name for f in dataclasses.fields(Profile)} - {"name"}
_WORKLOAD_FIELDS = {f.name for f in dataclasses.fields(Workload)} - {"name", "description"}
#: Short names accepted in grids.
ALIASES = {"tps": "decode_tps", "context_tokens": "initial_context_tokens", "tool_s": "tool_time_median_s"}
_SIM_KEYS = {"method", "rollouts", "seed", "jitter", "drop_rate", "evict_rate", "connection_limit_s"}
_KNOWN = _PROFILE_FIELDS | _WORKLOAD_FIELDS | _SIM_KEYS | set(ALIASES) | {"profile", "workload"}
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


def build(point: Mapping[str, Any]) -> tuple[Profile, Any]:
    """The profile and workload of one grid point, overrides applied."""
    params = {ALIASES.get(k, k): v for k, v in point.items()}
    p_kw = {k: v for k, v in params.items() if k in _PROFILE_FIELDS}
    w_kw = {k: v for k, v in params.items() if k in _WORKLOAD_FIELDS}
    prof = point.get("profile", BASELINE)
    profile = load_profile(prof, **p_kw)
    work = point.get("workload", "codex_bugfix")
    if isinstance(work, str):
        workload: Any = load_workload(work, **w_kw)
    elif w_kw:
        if not isinstance(work, Workload):
            raise ValueError(f"{sorted(w_kw)[0]}: a {type(work).__name__} workload takes no overrides")
        workload = work.with_(**w_kw)
    else:
        workload = work
    return profile, workload


def evaluate(point: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics of one grid point (module level so executors can pickle it)."""
    from labkit.sim.analytic import forecast

    profile, workload = build(point)
    method = point.get("method", "analytic")
    row: dict[str, Any] = dict(point)
    row.update(profile=profile.name, workload=workload.name)
    if method == "analytic":
        row.update(forecast(profile, workload, point.get("seed")).to_row())
    elif method == "des":
        row.update(_des_row(profile, workload, point))
    else:
        raise ValueError(f"method: must be 'analytic' or 'des', got {method!r}")
    # The first version's sweeps named the client-side time ``tool_s``; kept for their readers.
    row["tool_s"] = row["client_s"]
    return row


def _des_row(profile: Profile, workload: Any, point: Mapping[str, Any]) -> dict[str, Any]:
    # Imported here: the DES pulls in SimPy, which a closed-form sweep does not need.
    from labkit.sim.des import Faults, simulate

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
    return {
        "scenario": profile.name,
        "e2e_s": float(r["e2e_s"].mean()),
        "e2e_p50_s": float(r["e2e_s"].quantile(0.5)),
        "e2e_p95_s": float(r["e2e_s"].quantile(0.95)),
        "ttft_mean_s": float(t["ttft_s"].mean()),
        "ttft_p95_s": float(t["ttft_s"].quantile(0.95)),
        "overhead_share": float(r["overhead_share"].mean()),
        "api_s": float(r["api_s"].mean()),
        "network_s": float(r["network_s"].mean()),
        "inference_s": float(r["inference_s"].mean()),
        "client_s": float(r["client_s"].mean()),
        "fallbacks": float(r["fallbacks"].mean()),
    }


def sweep(
    grid: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]],
    executor: Executor | None = None,
    chunksize: int = 1,
) -> pd.DataFrame:
    """Evaluate every grid point, in-process or on ``executor``; one row per point, in grid order."""
    points = expand_grid(grid)
    n = len(points)
    if executor is None:
        rows = [evaluate(p) for p in progress(points, desc="sweep points", unit="point")]
    else:
        try:
            rows = list(progress(executor.map(evaluate, points, chunksize=chunksize), desc="sweep points", total=n))
        except TypeError:  # executors whose map() takes no chunksize (e.g. dask's ClientExecutor)
            rows = list(progress(executor.map(evaluate, points), desc="sweep points", total=n))
    return pd.DataFrame(rows)


def forecast_sweep(
    profiles: Sequence[str | Profile],
    workload: Any,
    baseline: str = BASELINE,
    executor: Executor | None = None,
    **grid: Sequence[Any],
) -> pd.DataFrame:
    """Closed-form metrics over the product of ``grid`` values, per profile, with ``speedup`` vs ``baseline``.

    Grid keys are Profile or Workload parameters (``decode_tps`` or ``tps``, ``turns``, ``hop_latency_s``,
    ...). ``speedup`` is the baseline's end to end over the profile's at the same grid point (when the baseline
    is among ``profiles``). Runs on :func:`sweep`, so ``executor`` spreads it like any other sweep.
    """
    if not profiles:
        raise ValueError("profiles: empty")
    keys = list(grid)
    for key in keys:
        real = ALIASES.get(key, key)
        if real not in _PROFILE_FIELDS and real not in _WORKLOAD_FIELDS:
            raise ValueError(f"{key}: not a Profile or Workload parameter")
        if isinstance(grid[key], str) or not len(grid[key]):
            raise ValueError(f"{key}: needs a non-empty sequence of values")
    bases = [load_profile(p) for p in profiles]
    points = [
        {**dict(zip(keys, values, strict=True)), "profile": prof, "workload": workload}
        for values in itertools.product(*(grid[k] for k in keys))
        for prof in bases
    ]
    df = sweep(points, executor)
    if baseline in set(df["scenario"]):
        df = add_speedup(df, keys, baseline)
    return df


def add_speedup(df: pd.DataFrame, on: Sequence[str], baseline: str = BASELINE, metric: str = "e2e_s") -> pd.DataFrame:
    """A copy with ``speedup``: the baseline's ``metric`` over each row's, matched on the ``on`` columns."""
    if "scenario" not in df.columns and "profile" in df.columns:
        df = df.assign(scenario=df["profile"])
    base = df[df["scenario"] == baseline]
    if base.empty:
        raise ValueError(f"baseline: no rows for {baseline!r}")
    on = list(on)
    if on:
        ref = base.groupby(on)[metric].mean().rename("_ref").reset_index()
        merged = df.merge(ref, on=on, how="left")
        return df.assign(speedup=(merged["_ref"] / merged[metric]).to_numpy())
    return df.assign(speedup=float(base[metric].mean()) / df[metric])
