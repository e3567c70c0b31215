"""Figures of real sessions: what each model call read and wrote, tool times, replays and fits.

Builders take plain tables (from :mod:`labkit.traces`: ``calls_frame``, ``tools_frame``, ``replay_frame``, a fit's
parameter table) and return plotly figures in the labkit template; they compute nothing of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.viz.template import axis_title, color, label, styled

_CACHED = "#9ecae1"
_UNCACHED = "#08519c"
_OUTPUT = "#E69F00"
_REASONING = "#CC79A7"
_TOOL = "#59A14F"


def _need(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}")


def session_calls(calls: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Per model call: input tokens (cached and uncached, stacked), output and reasoning tokens, and the longest
    tool call after it with the number of parallel calls. ``calls`` is ``labkit.traces.calls_frame(session)``."""
    _need(calls, ["call", "cached_input_tokens", "uncached_input_tokens", "output_tokens", "reasoning_tokens"], "calls")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.45, 0.3, 0.25])
    x = calls["call"]
    fig.add_bar(x=x, y=calls["cached_input_tokens"], name="cached input", marker_color=_CACHED, row=1, col=1)
    fig.add_bar(x=x, y=calls["uncached_input_tokens"], name="uncached input", marker_color=_UNCACHED, row=1, col=1)
    visible = (calls["output_tokens"] - calls["reasoning_tokens"]).clip(lower=0)
    fig.add_bar(x=x, y=calls["reasoning_tokens"], name="reasoning", marker_color=_REASONING, row=2, col=1)
    fig.add_bar(x=x, y=visible, name="visible output", marker_color=_OUTPUT, row=2, col=1)
    if "tool_s" in calls:
        text = [str(int(n)) if n > 1 else "" for n in calls.get("tool_calls", pd.Series(0, index=calls.index))]
        fig.add_bar(
            x=x, y=calls["tool_s"], name="longest tool call", marker_color=_TOOL, text=text, textposition="outside",
            row=3, col=1,
        )  # fmt: skip
    fig.update_layout(barmode="stack", height=620, legend={"orientation": "h", "y": -0.12})
    fig.update_yaxes(title_text=axis_title("Input", "tokens"), row=1, col=1)
    fig.update_yaxes(title_text=axis_title("Output", "tokens"), row=2, col=1)
    fig.update_yaxes(title_text=axis_title("Tool", "s"), row=3, col=1)
    fig.update_xaxes(title_text="Model call", row=3, col=1)
    return styled(fig, title or "One session, call by call (number above a tool bar: calls run in parallel)")


def tool_time_ecdf(tools: pd.DataFrame, by: str = "session", title: str | None = None) -> go.Figure:
    """Empirical CDF of tool-call times (log x), one line per ``by`` value. ``tools`` is ``tools_frame``."""
    _need(tools, ["seconds", by], "tools")
    fig = go.Figure()
    for key, g in tools.dropna(subset=["seconds"]).groupby(by, sort=False):
        s = np.sort(g["seconds"].to_numpy(float).clip(min=1e-3))
        name = str(key)
        fig.add_scatter(
            x=s, y=np.arange(1, len(s) + 1) / len(s), mode="lines", line_shape="hv", name=name[:40],
            line={"color": color(name)},
        )  # fmt: skip
    fig.update_xaxes(type="log")
    return styled(fig, title or "Tool-call times", axis_title("Tool call", "s"), "Share of tool calls")


def replay_bars(replays: pd.DataFrame, tps: float, title: str | None = None) -> go.Figure:
    """Predicted end to end per session and profile at one decode speed, the measured time as a marker.
    ``replays`` is ``labkit.traces.replay_frame(...)``."""
    _need(replays, ["session", "profile", "tps", "predicted_e2e_s", "measured_s"], "replays")
    df = replays[np.isclose(replays["tps"], tps)]
    if df.empty:
        raise ValueError(f"tps: no replay at {tps:g} TPS; have {sorted(set(replays['tps']))}")
    fig = go.Figure()
    for prof, g in df.groupby("profile", sort=False):
        fig.add_bar(
            x=g["session"].str[:24], y=g["predicted_e2e_s"], name=label(str(prof)), marker_color=color(str(prof))
        )
    meas = df.drop_duplicates("session").dropna(subset=["measured_s"])
    if len(meas):
        fig.add_scatter(
            x=meas["session"].str[:24], y=meas["measured_s"], mode="markers", name="measured (as recorded)",
            marker={"symbol": "diamond", "size": 12, "color": "#222222"},
        )  # fmt: skip
    fig.update_layout(barmode="group")
    return styled(fig, title or f"Replayed sessions at {tps:g} TPS", "Session", axis_title("End to end", "s"))


def whatif_curve(replays: pd.DataFrame, session: str | None = None, title: str | None = None) -> go.Figure:
    """End to end against decode speed (log x), one line per profile, for one session."""
    _need(replays, ["session", "profile", "tps", "predicted_e2e_s"], "replays")
    sid = session if session is not None else str(replays["session"].iloc[0])
    df = replays[replays["session"] == sid].sort_values("tps")
    if df.empty:
        raise ValueError(f"session: no replay of {sid!r}")
    fig = go.Figure()
    for prof, g in df.groupby("profile", sort=False):
        fig.add_scatter(
            x=g["tps"], y=g["predicted_e2e_s"], mode="lines+markers", name=label(str(prof)),
            line={"color": color(str(prof))},
        )  # fmt: skip
    fig.update_xaxes(type="log")
    return styled(
        fig, title or f"What if the model decoded faster? ({sid[:32]})", axis_title("Decode speed", "tokens/s"),
        axis_title("End to end", "s"),
    )  # fmt: skip


def fit_parameters(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Fitted parameters against a reference (the truth, or the base preset): value / reference with the 95%
    interval, one row per parameter. ``table`` has ``parameter, value, lo, hi, reference``."""
    _need(table, ["parameter", "value", "lo", "hi", "reference"], "table")
    t = table[table["reference"] > 0]
    ratio = t["value"] / t["reference"]
    fig = go.Figure()
    fig.add_scatter(
        x=ratio, y=t["parameter"], mode="markers", name="fitted / reference",
        error_x={"type": "data", "symmetric": False, "array": t["hi"] / t["reference"] - ratio,
                 "arrayminus": ratio - t["lo"] / t["reference"]},
        marker={"size": 10, "color": "#222222"},
    )  # fmt: skip
    fig.add_vline(x=1.0, line_dash="dot", line_color="#888888")
    return styled(fig, title or "Fitted parameters with 95% intervals", "Fitted / reference", None)


__all__ = ["fit_parameters", "replay_bars", "session_calls", "tool_time_ecdf", "whatif_curve"]
