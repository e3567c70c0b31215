"""Figures with bands: a value per scenario over an axis, with its 5-95% band over the ensemble of parameter sets
that reproduce the fitted public numbers (:mod:`labkit.analysis.ensemble`).

Input: the frame of :func:`labkit.analysis.ensemble.bands` (``by, x, lo, median, hi, default``). Each scenario is
a shaded band, its median a dotted line and the calibrated defaults a solid line, so a reader sees at once whether
a conclusion drawn from the defaults survives the assumptions.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from labkit.viz.figures import column_axis
from labkit.viz.template import axis_title, colors_for, label, styled


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def band_figure(
    band: pd.DataFrame,
    *,
    title: str,
    y_title: str,
    percent: bool = True,
    x_log: bool = True,
    x_title: str | None = None,
    hline: float | None = None,
    hline_text: str = "",
) -> go.Figure:
    """One band per scenario of a :func:`~labkit.analysis.ensemble.bands` frame (values in % when ``percent``)."""
    x, by = band.attrs.get("x"), band.attrs.get("by", "scenario")
    if x is None or x not in band.columns or by not in band.columns:
        raise ValueError("band: needs the frame of labkit.analysis.ensemble.bands (attrs x and by)")
    if missing := {"lo", "median", "hi", "default"} - set(band.columns):
        raise ValueError(f"band: missing column(s) {', '.join(sorted(missing))}")
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    names = list(dict.fromkeys(band[by].astype(str)))
    palette = colors_for(names)
    fig = go.Figure()
    for name in names:
        g = band[band[by].astype(str) == name].sort_values(x)
        xs = g[x].to_list()
        c = palette[name]
        fig.add_scatter(
            x=xs + xs[::-1],
            y=[v * scale for v in g["hi"].to_list() + g["lo"].to_list()[::-1]],
            mode="lines",
            fill="toself",
            fillcolor=_rgba(c, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            name=f"{label(name)}: 5-95%",
            legendgroup=name,
            showlegend=False,
        )
        fig.add_scatter(
            x=xs,
            y=g["median"] * scale,
            mode="lines",
            line={"color": c, "width": 1.5, "dash": "dot"},
            name=f"{label(name)}: ensemble median",
            legendgroup=name,
            showlegend=False,
            hovertemplate=f"{label(name)} median: %{{y:.1f}}{unit} at %{{x:,.0f}}<extra></extra>",
        )
        fig.add_scatter(
            x=xs,
            y=g["default"] * scale,
            mode="lines+markers" if len(xs) <= 12 else "lines",
            line={"color": c, "width": 2.5},
            marker={"size": 5},
            name=label(name),
            legendgroup=name,
            customdata=list(zip(g["lo"] * scale, g["hi"] * scale, strict=True)),
            hovertemplate=(
                f"{label(name)}: %{{y:.1f}}{unit} (5-95%: %{{customdata[0]:.1f}}-%{{customdata[1]:.1f}}) "
                "at %{x:,.0f}<extra></extra>"
            ),
        )
    if hline is not None and math.isfinite(hline):
        fig.add_hline(y=hline * scale, line={"color": "#888888", "dash": "dash", "width": 1})
        if hline_text:
            fig.add_annotation(
                x=1, xref="paper", y=hline * scale, text=hline_text, showarrow=False, xanchor="right", yanchor="bottom"
            )
    if x_log:
        values = sorted({float(v) for v in band[x]})
        lo, hi = values[0], values[-1]
        ticks: list[float] = [v for v in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if lo <= v <= hi] or [lo]
        if len(values) <= 12:  # a short grid: tick every point drawn
            ticks = values
        elif hi / ticks[-1] > 1.5:  # the top of the range when no round value is near it (e.g. 4,000 tokens/s)
            ticks.append(hi)
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{v:,g}" for v in ticks])
    members = band.attrs.get("members")
    note = f" ({members} parameter sets)" if members else ""
    fig.add_annotation(
        x=0,
        y=-0.2,
        xref="paper",
        yref="paper",
        showarrow=False,
        xanchor="left",
        text=f"solid: the calibrated defaults; band: 5-95% over the ensemble{note}; dotted: its median",
        font={"size": 11, "color": "#666666"},
    )
    fig.update_layout(margin={"b": 90})
    return styled(fig, title, x_title or column_axis(str(x))[0], y_title)


def overhead_share_band(band: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The API-overhead share over decode speed, per scenario, with its band; the dashed line at 50% is where
    overhead is half of a rollout."""
    return band_figure(
        band,
        title=title or "API-overhead share over decode speed, across the ensemble",
        y_title=axis_title("API-overhead share", "%"),
        hline=0.5,
        hline_text="half of the rollout",
    )


def gain_band(band: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The end-to-end reduction against the baseline over decode speed, per scenario, with its band."""
    return band_figure(
        band,
        title=title or "End-to-end gain over the baseline by decode speed, across the ensemble",
        y_title=axis_title("end-to-end reduction vs the baseline", "%"),
    )


def speedup_band(band: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The speed-up against the baseline (baseline end to end / scenario's) over ``x``, with its band."""
    return band_figure(
        band,
        title=title or "Speed-up over the baseline, across the ensemble",
        y_title=axis_title("speed-up vs the baseline", "×"),
        percent=False,
        hline=1.0,
    )


__all__ = ["band_figure", "gain_band", "overhead_share_band", "speedup_band"]
