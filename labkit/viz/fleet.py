"""Figures of the fleet at scale: tail latency against load per replica, and cache memory economics."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.viz.template import color, label, styled

_POLICY_DASH = {"lru": "solid"}


def replica_load(df: pd.DataFrame, target_p95_s: float | None = None, y: str = "e2e_p95_s") -> go.Figure:
    """``y`` (seconds) against agents per replica, per scenario, with the target as a horizontal line.

    ``df``: :func:`labkit.analysis.fleet.scale_sweep` rows (``scenario``, ``agents_per_replica``, ``y``).
    """
    for col in ("scenario", "agents_per_replica", y):
        if col not in df.columns:
            raise ValueError(f"{col}: not a column of the frame")
    fig = go.Figure()
    for name, g in df.groupby("scenario", sort=False):
        g = g.sort_values("agents_per_replica")
        fig.add_scatter(
            x=g["agents_per_replica"],
            y=g[y],
            mode="lines+markers",
            name=label(str(name)),
            line={"color": color(str(name)), "width": 2},
        )
    if target_p95_s is not None:
        fig.add_hline(
            y=target_p95_s,
            line={"color": "#555555", "dash": "dot"},
            annotation_text=f"target {target_p95_s:g} s",
            annotation_position="top left",
        )
    quantity = "p95 end to end per rollout" if y == "e2e_p95_s" else y
    return styled(
        fig,
        "Tail latency as agents pile onto one replica",
        "agents per replica (count)",
        f"{quantity} (s)",
    )


def cache_budget(df: pd.DataFrame) -> go.Figure:
    """Mean end to end and cache hit rate against the per-replica memory budget, one line per policy.

    ``df``: :func:`labkit.analysis.fleet.cache_budget_sweep` rows (``policy``, ``budget_mib``, ``e2e_s``,
    ``hit_rate``).
    """
    for col in ("policy", "budget_mib", "e2e_s", "hit_rate"):
        if col not in df.columns:
            raise ValueError(f"{col}: not a column of the frame")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12)
    dashes = ["dash", "dot", "dashdot"]
    for i, (policy, g) in enumerate(df.groupby("policy", sort=False)):
        g = g.sort_values("budget_mib")
        dash = _POLICY_DASH.get(str(policy), dashes[i % len(dashes)])
        style = {"color": color("websocket"), "dash": dash, "width": 2}
        fig.add_scatter(
            x=g["budget_mib"], y=g["e2e_s"], mode="lines+markers", name=str(policy), line=style, row=1, col=1
        )
        fig.add_scatter(
            x=g["budget_mib"],
            y=g["hit_rate"] * 100,
            mode="lines+markers",
            name=str(policy),
            line=style,
            showlegend=False,
            row=1,
            col=2,
        )
    fig = styled(fig, "Connection-cache memory per replica: what a smaller budget costs")
    fig.update_xaxes(title_text="cache budget per replica (MiB)", row=1, col=1)
    fig.update_xaxes(title_text="cache budget per replica (MiB)", row=1, col=2)
    fig.update_yaxes(title_text="mean end to end per rollout (s)", row=1, col=1)
    fig.update_yaxes(title_text="cache hit rate (%)", range=[0, 102], row=1, col=2)
    return fig


def gain_under_load(df: pd.DataFrame) -> go.Figure:
    """WebSocket mode's gain (baseline / candidate of ``metric``) against agents per replica.

    ``df``: :func:`labkit.analysis.fleet.gain_under_load` rows (``agents_per_replica``, ``gain``, ``scenario``,
    ``baseline``, ``metric``).
    """
    for col in ("agents_per_replica", "gain", "scenario", "baseline"):
        if col not in df.columns:
            raise ValueError(f"{col}: not a column of the frame")
    fig = go.Figure()
    for (cand, base), g in df.groupby(["scenario", "baseline"], sort=False):
        g = g.sort_values("agents_per_replica")
        fig.add_scatter(
            x=g["agents_per_replica"],
            y=g["gain"],
            mode="lines+markers",
            name=f"{label(str(cand))} over {label(str(base))}",
            line={"color": color(str(cand)), "width": 2},
        )
    fig.add_hline(y=1.0, line={"color": "#999999", "dash": "dot"})
    return styled(
        fig,
        "What queueing does to WebSocket mode's gain",
        "agents per replica (count)",
        "speed-up of p95 end to end (ratio)",
    )


__all__ = ["cache_budget", "gain_under_load", "replica_load"]
