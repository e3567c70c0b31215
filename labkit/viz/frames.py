"""Small tables the figures are drawn from: forecast frames, break-even points, prediction errors.

Sweeps come from the one sweep engine, :mod:`labkit.sim.sweep`; the crossover from :mod:`labkit.analysis.crossover`.

Columns follow :func:`labkit.analysis.metrics.rollout_metrics` (``e2e_s``, ``ttft_mean_s``, ``network_s``,
``api_s``, ``inference_s``, ``client_s``, ``overhead_share``) so a figure takes a closed-form sweep, a DES
sweep or live metrics alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from labkit.analysis.metrics import turn_metrics
from labkit.model.spans import SPAN_COLUMNS
from labkit.sim.analytic import RolloutForecast
from labkit.sim.sweep import ALIASES, add_speedup


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


def forecasts_frame(
    forecasts: RolloutForecast | Iterable[RolloutForecast] | Mapping[str, RolloutForecast],
) -> pd.DataFrame:
    """One row per forecast (a mapping's keys become the ``scenario`` names)."""
    if isinstance(forecasts, RolloutForecast):
        return pd.DataFrame([forecasts.to_row()])
    if isinstance(forecasts, Mapping):
        return pd.DataFrame([{**fc.to_row(), "scenario": name} for name, fc in forecasts.items()])
    rows = [fc.to_row() for fc in forecasts]
    if not rows:
        raise ValueError("forecasts: empty")
    return pd.DataFrame(rows)


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
    "forecasts_frame",
    "is_spans",
    "normalize",
    "prediction_error",
]
