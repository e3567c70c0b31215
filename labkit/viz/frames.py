"""Small tables the figures are drawn from: closed-form sweeps, crossings, prediction errors.

Columns follow :func:`labkit.analysis.metrics.rollout_metrics` (``e2e_s``, ``ttft_mean_s``, ``network_s``,
``api_s``, ``inference_s``, ``client_s``, ``overhead_share``) so a figure takes a closed-form sweep, a DES
sweep or live metrics alike.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.metrics import turn_metrics
from labkit.model import (
    API_STAGES,
    CLIENT_STAGES,
    INFERENCE_STAGES,
    NETWORK_STAGES,
    Profile,
    Workload,
    load_profile,
)
from labkit.model.spans import SPAN_COLUMNS
from labkit.sim.analytic import RolloutForecast, forecast

BASELINE = "http_baseline"
_PROFILE_FIELDS = frozenset(f.name for f in dataclasses.fields(Profile))
_WORKLOAD_FIELDS = frozenset(f.name for f in dataclasses.fields(Workload))
#: Short names accepted in sweep grids.
ALIASES = {"tps": "decode_tps", "context_tokens": "initial_context_tokens", "tool_s": "tool_time_median_s"}


def is_spans(df: object) -> bool:
    return isinstance(df, pd.DataFrame) and all(c in df.columns for c in SPAN_COLUMNS)


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    """Accept :func:`labkit.sim.sweep.sweep` frames too: ``profile`` names the scenario when there is no
    ``scenario`` column, and ``tool_s`` stands for ``client_s``. Returns a new frame (input untouched)."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError("df: need a pandas DataFrame")
    out = df
    if "scenario" not in out.columns and "profile" in out.columns:
        out = out.assign(scenario=out["profile"])
    if "client_s" not in out.columns and "tool_s" in out.columns:
        out = out.assign(client_s=out["tool_s"])
    return out


def add_speedup(df: pd.DataFrame, on: Sequence[str], baseline: str = BASELINE, metric: str = "e2e_s") -> pd.DataFrame:
    """A copy with ``speedup``: the baseline's ``metric`` over each row's, matched on the ``on`` columns."""
    df = normalize(df)
    base = df[df["scenario"] == baseline]
    if base.empty:
        raise ValueError(f"baseline: no rows for {baseline!r}")
    on = list(on)
    if on:
        ref = base.groupby(on)[metric].mean().rename("_ref").reset_index()
        merged = df.merge(ref, on=on, how="left")
        return df.assign(speedup=(merged["_ref"] / merged[metric]).to_numpy())
    return df.assign(speedup=float(base[metric].mean()) / df[metric])


def forecast_row(fc: RolloutForecast) -> dict[str, Any]:
    """One metrics row of a closed-form forecast, in ``rollout_metrics`` column names."""
    client = sum(fc.stage_s.get(s, 0.0) for s in CLIENT_STAGES)
    return {
        "scenario": fc.profile,
        "workload": fc.workload,
        "e2e_s": fc.e2e_s,
        "ttft_mean_s": fc.ttft_mean_s,
        "turn_latency_mean_s": float(np.mean(fc.turn_latency_s)),
        "turns": len(fc.ttft_s),
        "network_s": fc.category_s(NETWORK_STAGES),
        "api_s": fc.category_s(API_STAGES),
        "inference_s": fc.category_s(INFERENCE_STAGES),
        "client_s": client,
        "overhead_share": fc.overhead_share,
    }


def forecasts_frame(
    forecasts: RolloutForecast | Iterable[RolloutForecast] | Mapping[str, RolloutForecast],
) -> pd.DataFrame:
    """One row per forecast (a mapping's keys become the ``scenario`` names)."""
    if isinstance(forecasts, RolloutForecast):
        return pd.DataFrame([forecast_row(forecasts)])
    if isinstance(forecasts, Mapping):
        return pd.DataFrame([{**forecast_row(fc), "scenario": name} for name, fc in forecasts.items()])
    rows = [forecast_row(fc) for fc in forecasts]
    if not rows:
        raise ValueError("forecasts: empty")
    return pd.DataFrame(rows)


def forecast_sweep(
    profiles: Sequence[str | Profile],
    workload: Workload,
    baseline: str = BASELINE,
    **grid: Sequence[Any],
) -> pd.DataFrame:
    """Closed-form metrics over the product of ``grid`` values, per profile, with ``speedup`` vs ``baseline``.

    Grid keys are Profile or Workload parameters (``decode_tps`` or ``tps``, ``turns``, ``hop_latency_s``,
    ...). ``speedup`` is the baseline's end to end over the profile's at the same grid point (needs the
    baseline among ``profiles``).
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
    bases = [load_profile(p) if isinstance(p, str) else p for p in profiles]
    rows: list[dict[str, Any]] = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        p_kw = {ALIASES.get(k, k): v for k, v in point.items() if ALIASES.get(k, k) in _PROFILE_FIELDS}
        w_kw = {ALIASES.get(k, k): v for k, v in point.items() if ALIASES.get(k, k) in _WORKLOAD_FIELDS}
        w = workload.with_(**w_kw) if w_kw else workload
        for prof in bases:
            fc = forecast(prof.with_(**p_kw) if p_kw else prof, w)
            rows.append({**point, **forecast_row(fc)})
    df = pd.DataFrame(rows)
    if baseline in set(df["scenario"]):
        df = add_speedup(df, keys, baseline)
    return df


def _crossing(x: np.ndarray, diff: np.ndarray, log_x: bool) -> float:
    """First x where ``diff`` changes sign, linearly interpolated (in log x if ``log_x``)."""
    order = np.argsort(x)
    x, diff = x[order], diff[order]
    xs = np.log(x) if log_x else x
    for i in range(len(x) - 1):
        a, b = diff[i], diff[i + 1]
        if a == 0:
            return float(x[i])
        if a * b < 0:
            t = a / (a - b)
            v = xs[i] + t * (xs[i + 1] - xs[i])
            return float(math.exp(v) if log_x else v)
    if len(diff) and diff[-1] == 0:
        return float(x[-1])
    return math.nan


def crossover_tps(df: pd.DataFrame, scenario: str | None = None, x: str = "decode_tps") -> float:
    """The decode speed at which API-service + network time equals inference time (NaN if not crossed)."""
    df = normalize(df)
    x = _x_column(df, x)
    sub = df if scenario is None else df[df["scenario"] == scenario]
    if sub.empty:
        raise ValueError(f"scenario: no rows for {scenario!r}")
    if scenario is None and "scenario" in sub and sub["scenario"].nunique() > 1:
        raise ValueError("scenario: the frame holds several scenarios, name one")
    g = sub.groupby(x, sort=True)[["api_s", "network_s", "inference_s"]].mean()
    diff = (g["api_s"] + g["network_s"] - g["inference_s"]).to_numpy(dtype=float)
    return _crossing(g.index.to_numpy(dtype=float), diff, log_x=True)


def break_even(df: pd.DataFrame, scenario: str, reference: str, x: str, y: str = "e2e_s") -> float:
    """The ``x`` at which ``scenario``'s ``y`` reaches ``reference``'s (e.g. the drop rate where WebSocket
    mode stops paying off); NaN if the curves do not cross in range."""
    df = normalize(df)
    a = df[df["scenario"] == scenario].groupby(x)[y].mean()
    b = df[df["scenario"] == reference].groupby(x)[y].mean()
    if a.empty or b.empty:
        raise ValueError(f"scenario: need rows for both {scenario!r} and {reference!r}")
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1).dropna()
    return _crossing(joined.index.to_numpy(dtype=float), (joined["a"] - joined["b"]).to_numpy(dtype=float), False)


def _x_column(df: pd.DataFrame, x: str) -> str:
    if x in df.columns:
        return x
    for alt in (ALIASES.get(x), *(k for k, v in ALIASES.items() if v == x)):
        if alt and alt in df.columns:
            return alt
    raise ValueError(f"{x}: no such column (have {', '.join(map(str, df.columns))})")


def as_turn_metrics(data: pd.DataFrame) -> pd.DataFrame:
    """Turn metrics from a spans table, or the table itself if it already holds turn metrics."""
    if is_spans(data):
        return turn_metrics(data)
    if not isinstance(data, pd.DataFrame) or "turn" not in data.columns:
        raise ValueError("data: need a spans table or turn metrics (a 'turn' column)")
    return data


def prediction_error(pred: pd.DataFrame, meas: pd.DataFrame, column: str = "ttft_s") -> pd.DataFrame:
    """Per scenario and turn: predicted and measured mean of ``column``, the error and relative error.

    ``pred`` and ``meas`` are spans or turn metrics; they are matched on ``scenario`` and ``turn``.
    """
    p, m = as_turn_metrics(pred), as_turn_metrics(meas)
    for name, df in (("pred", p), ("meas", m)):
        if column not in df.columns:
            raise ValueError(f"{name}: no column {column!r}")
    pg = p.groupby(["scenario", "turn"])[column].mean().rename("predicted")
    mg = m.groupby(["scenario", "turn"])[column]
    out = pd.concat([pg, mg.mean().rename("measured"), mg.std().rename("measured_std")], axis=1, join="inner")
    if out.empty:
        raise ValueError("meas: no (scenario, turn) in common with pred")
    out["error"] = out["measured"] - out["predicted"]
    out["rel_error"] = out["error"] / out["predicted"].where(out["predicted"] != 0)
    return out.reset_index()


__all__ = [
    "add_speedup",
    "as_turn_metrics",
    "break_even",
    "crossover_tps",
    "forecast_row",
    "forecast_sweep",
    "forecasts_frame",
    "is_spans",
    "normalize",
    "prediction_error",
]
