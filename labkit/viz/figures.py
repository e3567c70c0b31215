"""Figure builders: spans / metrics DataFrames (or closed-form forecasts) in, ``go.Figure`` out.

Every builder applies the writeup template, titles the figure, names the unit of every value axis, colours
scenarios and stages by name (:mod:`labkit.viz.template`), and computes nothing the data does not hold
beyond means, confidence intervals and crossings. They never mutate their input.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.analysis.metrics import CATEGORIES, rollout_metrics, stage_totals
from labkit.model import STAGES, stage_category
from labkit.sim.analytic import RolloutForecast
from labkit.sim.sweep import BASELINE
from labkit.viz.export import EXPORT_WIDTH
from labkit.viz.frames import (
    _x_column,
    as_turn_metrics,
    break_even,
    forecasts_frame,
    is_spans,
    normalize,
    prediction_error,
)
from labkit.viz.template import LABELS, SCENARIO_COLORS, TEMPLATE, axis_title, color, colors_for, label, styled

#: Known columns: (quantity, unit, scale from the column's own unit to the axis unit).
COLUMNS: dict[str, tuple[str, str, float]] = {
    "ttft_s": ("time to first token", "ms", 1e3),
    "ttft_mean_s": ("mean time to first token", "ms", 1e3),
    "latency_s": ("turn latency", "ms", 1e3),
    "turn_latency_mean_s": ("mean turn latency", "ms", 1e3),
    "e2e_s": ("end to end per rollout", "s", 1.0),
    "wait_s": ("mean queueing wait", "ms", 1e3),
    "sojourn_s": ("mean time in system", "ms", 1e3),
    "decode_tps": ("decode speed", "tokens/s", 1.0),
    "tps": ("decode speed", "tokens/s", 1.0),
    "turns": ("model calls per rollout", "count", 1.0),
    "replicas": ("API replicas", "count", 1.0),
    "agents": ("concurrent agents", "count", 1.0),
    "drop_rate": ("connection drop rate", "% of turns", 100.0),
    "utilisation": ("utilisation", "%", 100.0),
    "utilization": ("utilisation", "%", 100.0),
    "overhead_share": ("API-overhead share of end to end", "%", 100.0),
    "speedup": ("speedup vs HTTP baseline", "×", 1.0),
    "fallbacks": ("fallbacks per rollout", "count", 1.0),
    "hop_latency_s": ("hop latency", "ms", 1e3),
    "hops": ("internal hops", "count", 1.0),
    "initial_context_tokens": ("initial context", "tokens", 1.0),
    "tool_time_median_s": ("median tool time", "s", 1.0),
    "cache_bytes": ("cache memory per connection", "MB", 1e-6),
}
_SOURCE_DASH = {"live": "solid", "api": "solid", "sim": "dash", "analytic": "dot"}
_ROUTING_DASH = {"sticky": "solid", "random": "dash"}
#: Which optimisation of the critical-path sprint each pre-decode stage belongs to (DESIGN section 4).
OPTIMISATIONS: dict[str, str] = {
    "render": "rendered-token cache",
    "config": "config cache",
    "hops": "fewer hops",
    "safety_in": "faster safety",
}
_PRE_DECODE = STAGES[: STAGES.index("decode")]
# Longest first, so "http_baseline_x" would not be read as "http_baseline" followed by more text.
_KNOWN_SCENARIOS = sorted(set(SCENARIO_COLORS) & set(LABELS) | {"http_stateless"}, key=len, reverse=True)
_PUBLISHED_TPS = {65.0: "GPT-5 ~65 TPS", 1000.0: "Codex-Spark ~1,000 TPS"}


def column_axis(column: str, title: str | None = None) -> tuple[str, float]:
    """Axis title (with unit) and scale for a metrics column; ``title`` overrides (must carry a unit)."""
    if column in COLUMNS:
        q, unit, scale = COLUMNS[column]
        return (title or axis_title(q, unit)), scale
    if title:
        return title, 1.0
    if column.endswith("_s"):
        return axis_title(column[:-2].replace("_", " "), "s"), 1.0
    raise ValueError(f"{column}: no unit known for this column; pass its axis title with the unit")


def _qty(title: str) -> str:
    """The quantity of an axis title: ``"decode speed (tokens/s)"`` -> ``"decode speed"``."""
    return title.rsplit(" (", 1)[0]


def _upper(text: str) -> str:
    """Capitalise the first letter only (``str.capitalize`` would lower-case "HTTP")."""
    return text[:1].upper() + text[1:]


def _unit(title: str) -> str:
    return title.rsplit(" (", 1)[-1].rstrip(")")


def _scenario_of(name: str) -> str:
    """The scenario part of a group label such as ``"websocket (live)"`` or ``"websocket @ 65 tok/s"``."""
    for known in _KNOWN_SCENARIOS:
        if name == known or name.startswith(known + " "):
            return known
    return name.split(" (", 1)[0]


def _group_labels(df: pd.DataFrame) -> pd.Series:
    """``scenario``, or ``scenario (source)`` when the frame mixes sources."""
    scen = df["scenario"].astype(str)
    if "source" in df.columns and df["source"].nunique() > 1:
        return scen + " (" + df["source"].astype(str) + ")"
    return scen


def _order(names: Iterable[str]) -> list[str]:
    """Presets in their story order (baseline first), then the rest as they come."""
    story = ["http_baseline", "http_optimized", "http_chained", "websocket", "websocket_prototype", "ideal"]
    names = list(dict.fromkeys(names))
    first = [n for s in story for n in names if _scenario_of(n) == s]
    return list(dict.fromkeys([*first, *names]))


def _glabel(name: str) -> str:
    scen = _scenario_of(name)
    return label(scen) + name[len(scen) :]


def _tick(name: str) -> str:
    """A bar's category label: the qualifier after the scenario on its own line, so labels stay level."""
    scen = _scenario_of(name)
    rest = name[len(scen) :].strip()
    return f"{label(scen)}<br>{rest}" if rest else label(scen)


# -- stage breakdown -------------------------------------------------------------------------------------


def _stage_table(data: Any) -> pd.DataFrame:
    """Rows ``group, stage, category, seconds`` (mean per rollout) from spans, totals or forecasts."""
    if isinstance(data, RolloutForecast | Mapping) or (
        isinstance(data, Sequence) and data and all(isinstance(d, RolloutForecast) for d in data)
    ):
        items = data.items() if isinstance(data, Mapping) else [(fc.profile, fc) for fc in _as_list(data)]
        rows = [
            {"group": name, "stage": s, "category": stage_category(s), "seconds": v}
            for name, fc in items
            for s, v in fc.stage_s.items()
        ]
        return pd.DataFrame(rows)
    if is_spans(data):
        data = stage_totals(data)
    if isinstance(data, pd.DataFrame) and {"stage", "seconds", "scenario"} <= set(data.columns):
        df = data.copy()
        if "category" not in df.columns:
            df["category"] = df["stage"].map(stage_category)
        df["group"] = _group_labels(df)
        return df[["group", "stage", "category", "seconds"]]
    raise ValueError("data: need spans, stage totals (scenario, stage, seconds) or RolloutForecast(s)")


def _as_list(data: Any) -> list[RolloutForecast]:
    return [data] if isinstance(data, RolloutForecast) else list(data)


def stage_breakdown(
    data: Any, by: str = "stage", title: str | None = None, share: bool = False, keep_empty: bool = False
) -> go.Figure:
    """Stacked bars per scenario of the mean time per rollout in each stage (``by='stage'``) or category.

    ``data``: a spans table, :func:`labkit.analysis.metrics.stage_totals`, or RolloutForecast(s) (a mapping names
    them). ``share=True`` stacks percentages of end to end instead of seconds. Each trace's ``uid`` is its stage
    (or category); ``keep_empty=True`` keeps every stage as a trace (hidden from the legend when it costs nothing),
    so a dashboard can update them in place by ``uid``.
    """
    if by not in ("stage", "category"):
        raise ValueError(f"by: must be 'stage' or 'category', got {by!r}")
    df = _stage_table(data)
    table = df.groupby(["group", by], sort=False)["seconds"].sum().unstack().fillna(0.0)
    groups = _order(table.index)
    table = table.loc[groups]
    if share:
        table = table.div(table.sum(axis=1), axis=0) * 100
    every = list(STAGES if by == "stage" else CATEGORIES)
    keys = [s for s in every if s in table.columns or keep_empty]
    keys += [s for s in table.columns if s not in keys]
    fig = go.Figure()
    xs = [_tick(g) for g in groups]
    for key in keys:
        vals = table[key].to_numpy(dtype=float) if key in table.columns else np.zeros(len(groups))
        used = bool(np.any(vals > 1e-12))
        if not used and not keep_empty:
            continue  # a stage that costs nothing anywhere only clutters the legend
        fig.add_bar(
            x=xs,
            y=vals,
            name=label(key),
            uid=key,
            showlegend=used,
            marker_color=color(key),
            hovertemplate=f"{label(key)}: %{{y:.3f}} {'%' if share else 's'}<extra>%{{x}}</extra>",
        )
    # Legend top-down in the same order as the stack reads top-down.
    fig.update_layout(barmode="stack", legend={"traceorder": "reversed"})
    y = axis_title("share of end to end", "%") if share else axis_title("time per rollout", "s")
    return styled(fig, title or f"Where a rollout's time goes, by {by}", None, y)


# -- overhead vs decode speed ------------------------------------------------------------------------------


def overhead_vs_tps(
    df: pd.DataFrame,
    scenario: str | None = None,
    x: str = "decode_tps",
    title: str | None = None,
    published: Mapping[float, str] | None = None,
    crossover: float | None = None,
) -> go.Figure:
    """Time per rollout by category (stacked, for ``scenario``) and the API-overhead share per scenario,
    over decode speed on a log axis, with the crossover TPS (overhead = inference) marked when given
    (:func:`labkit.analysis.crossover.crossover_tps`).

    ``df``: one row per (scenario, TPS) with ``api_s, network_s, inference_s, client_s`` and
    ``overhead_share`` (a :func:`labkit.sim.sweep.forecast_sweep` over ``tps`` or a sweep of the DES).
    """
    df = normalize(df)
    x = _x_column(df, x)
    need = {"scenario", "api_s", "network_s", "inference_s", "overhead_share"}
    if missing := need - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    scenarios = _order(df["scenario"].astype(str).unique())
    scenario = scenario or (BASELINE if BASELINE in scenarios else scenarios[0])
    if scenario not in scenarios:
        raise ValueError(f"scenario: {scenario!r} not in the frame ({', '.join(scenarios)})")
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        row_heights=[0.58, 0.42],
        subplot_titles=(
            f"{label(scenario)}: time per rollout by category",
            "API-overhead share per scenario",
        ),
    )
    sub = df[df["scenario"] == scenario].groupby(x, sort=True).mean(numeric_only=True)
    tps = sub.index.to_numpy(dtype=float)
    for cat in ("network", "api", "inference", "client"):
        col = f"{cat}_s"
        if col not in sub.columns:
            continue
        fig.add_scatter(
            x=tps,
            y=sub[col],
            name=label(cat),
            mode="lines",
            stackgroup="time",
            line={"color": color(cat), "width": 0.5},
            fillcolor=color(cat),
            legendgroup="categories",
            legendgrouptitle_text="time by category",
            hovertemplate=f"{label(cat)}: %{{y:.2f}} s at %{{x:.0f}} tokens/s<extra></extra>",
            row=1,
            col=1,
        )
    palette = colors_for(scenarios)
    for name in scenarios:
        g = df[df["scenario"] == name].groupby(x, sort=True)["overhead_share"].mean()
        fig.add_scatter(
            x=g.index.to_numpy(dtype=float),
            y=g.to_numpy() * 100,
            name=label(name),
            mode="lines",
            line={"color": palette[name], "width": 2.5},
            legendgroup="scenarios",
            legendgrouptitle_text="overhead share",
            hovertemplate=f"{label(name)}: %{{y:.1f}}% at %{{x:.0f}} tokens/s<extra></extra>",
            row=2,
            col=1,
        )
    # Labels sit inside the upper panel along their line, clear of the subplot titles.
    for tps_mark, text in (published if published is not None else _PUBLISHED_TPS).items():
        if tps.min() <= tps_mark <= tps.max():
            fig.add_vline(x=tps_mark, line={"color": "#888888", "dash": "dot", "width": 1})
            fig.add_annotation(
                x=math.log10(tps_mark),
                y=0.97,
                xref="x",
                yref="y domain",
                text=text,
                textangle=-90,
                showarrow=False,
                xanchor="right",
                yanchor="top",
                font={"size": 11, "color": "#666666"},
            )
    cross = math.nan if crossover is None else float(crossover)
    if math.isfinite(cross):
        fig.add_vline(x=cross, line={"color": color("api"), "dash": "dash", "width": 1.5})
        fig.add_annotation(
            x=math.log10(cross),
            y=0.97,
            xref="x2",
            yref="y2 domain",
            text=f"{label(scenario)}: overhead = inference<br>at {cross:,.0f} tokens/s",
            showarrow=False,
            xanchor="right",
            yanchor="top",
            align="right",
            xshift=-4,
            font={"size": 12, "color": color("api")},
            bgcolor="rgba(255,255,255,0.85)",
        )
    ticks = [v for v in (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if tps.min() <= v <= tps.max()]
    fig.update_xaxes(tickvals=ticks, ticktext=[f"{v:,}" for v in ticks])
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text=column_axis(x)[0], row=2, col=1)
    fig.update_yaxes(title_text=axis_title("time per rollout", "s"), row=1, col=1)
    fig.update_yaxes(title_text=axis_title("overhead share", "%"), rangemode="tozero", row=2, col=1)
    fig.update_layout(height=640)
    return styled(fig, title or "API overhead becomes the bottleneck as decoding gets faster")


# -- TTFT waterfall ----------------------------------------------------------------------------------------


def _ttft_by_stage(obj: Any) -> dict[str, float]:
    """Mean seconds per turn of each stage before the first output token."""
    if isinstance(obj, RolloutForecast):
        n = len(obj.ttft_s)
        return {s: obj.stage_s.get(s, 0.0) / n for s in _PRE_DECODE}
    if is_spans(obj):
        d = obj.assign(duration_s=obj["end_s"] - obj["start_s"])
        turns = d.groupby(["source", "scenario", "rollout", "turn"]).ngroups
        pre = d[d["stage"].isin([*_PRE_DECODE, "request"])]
        return {str(k): float(v) / turns for k, v in pre.groupby("stage")["duration_s"].sum().items()}
    if isinstance(obj, Mapping):
        return {str(k): float(v) for k, v in obj.items()}
    raise ValueError("baseline: need a RolloutForecast, a spans table or a mapping stage -> seconds")


def ttft_waterfall(
    baseline: Any,
    optimized: Any = None,
    steps: Sequence[tuple[str, Any]] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Mean TTFT from ``baseline`` to ``optimized``, one bar per saving on the critical path.

    With ``optimized``, savings are grouped by optimisation (rendered-token cache, config cache, fewer hops,
    faster safety; other stages by name). With ``steps`` (``[(label, forecast), ...]`` applying one
    optimisation after another), each bar is one step's saving. Values are milliseconds per turn.
    """
    if (optimized is None) == (steps is None):
        raise ValueError("optimized: pass exactly one of optimized or steps")
    base = _ttft_by_stage(baseline)
    base_total = sum(base.values())
    names: list[str] = []
    deltas: list[float] = []
    if steps is not None:
        if not steps:
            raise ValueError("steps: empty")
        prev = base_total
        for name, obj in steps:
            cur = sum(_ttft_by_stage(obj).values())
            names.append(name)
            deltas.append(cur - prev)
            prev = cur
        end_total = prev
        end_name = steps[-1][0] if len(steps) == 1 else "all optimisations"
    else:
        opt = _ttft_by_stage(optimized)
        grouped: dict[str, float] = {}
        for s in dict.fromkeys([*base, *opt]):
            d = opt.get(s, 0.0) - base.get(s, 0.0)
            if abs(d) > 1e-12:
                key = OPTIMISATIONS.get(s, label(s))
                grouped[key] = grouped.get(key, 0.0) + d
        order = [*OPTIMISATIONS.values()]
        for key in sorted(grouped, key=lambda k: (order.index(k) if k in order else len(order), k)):
            names.append(key)
            deltas.append(grouped[key])
        end_total = sum(opt.values())
        end_name = label(optimized.profile) if isinstance(optimized, RolloutForecast) else "optimized"
    base_name = label(baseline.profile) if isinstance(baseline, RolloutForecast) else "baseline"
    change = (end_total / base_total - 1) * 100 if base_total > 0 else math.nan
    fig = go.Figure(
        go.Waterfall(
            x=[base_name, *names, end_name],
            y=[base_total * 1e3, *(d * 1e3 for d in deltas), 0.0],
            measure=["absolute", *["relative"] * len(deltas), "total"],
            text=[f"{base_total * 1e3:.0f}", *(f"{d * 1e3:+.0f}" for d in deltas), f"{end_total * 1e3:.0f}"],
            textposition="outside",
            decreasing={"marker": {"color": color("websocket")}},
            increasing={"marker": {"color": color("http_baseline")}},
            totals={"marker": {"color": "#555555"}},
            connector={"line": {"color": "#999999", "width": 1, "dash": "dot"}},
            hovertemplate="%{x}: %{y:.1f} ms<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_yaxes(rangemode="tozero")
    return styled(
        fig,
        title or f"Time to first token: {change:+.0f}% on the critical path",
        None,
        axis_title("mean time to first token per turn", "ms"),
    )


# -- Gantt ------------------------------------------------------------------------------------------------


def gantt(
    spans: pd.DataFrame,
    rollout: int = 0,
    scenario: str | Sequence[str] | None = None,
    source: str | None = None,
    turns: int | None = None,
    title: str | None = None,
) -> go.Figure:
    """Per-turn timelines of one rollout's spans (one row per turn, per scenario), coloured by stage.

    Times are seconds since each scenario's rollout start; fallback attempts (``attempt > 0``) are hatched.
    """
    if not is_spans(spans):
        raise ValueError("spans: need a spans table (labkit.model.spans.SPAN_COLUMNS)")
    df = spans[spans["rollout"] == rollout]
    if source is not None:
        df = df[df["source"] == source]
    if scenario is not None:
        wanted = [scenario] if isinstance(scenario, str) else list(scenario)
        df = df[df["scenario"].isin(wanted)]
    if turns is not None:
        df = df[df["turn"] < turns]
    if df.empty:
        raise ValueError(f"rollout: no spans for rollout={rollout}, scenario={scenario!r}, source={source!r}")
    df = df.assign(group=_group_labels(df))
    df = df.assign(t0=df.groupby("group")["start_s"].transform("min"))
    df = df.assign(start=df["start_s"] - df["t0"], dur=df["end_s"] - df["start_s"])
    df = df[df["dur"] > 1e-9]
    groups = _order(df["group"].unique())
    multi = len(groups) > 1
    df = df.assign(
        row=[f"{_glabel(g)} · turn {t}" if multi else f"turn {t}" for g, t in zip(df["group"], df["turn"], strict=True)]
    )
    rows = [
        f"{_glabel(g)} · turn {t}" if multi else f"turn {t}"
        for g in groups
        for t in sorted(df.loc[df["group"] == g, "turn"].unique())
    ]
    fig = go.Figure()
    present = list(df["stage"].unique())
    for stage in [s for s in STAGES if s in present] + [s for s in present if s not in STAGES]:
        s = df[df["stage"] == stage]
        fig.add_bar(
            y=s["row"],
            x=s["dur"],
            base=s["start"],
            orientation="h",
            name=label(stage),
            marker={
                "color": color(stage),
                "line": {"width": 0},
                "pattern": {"shape": ["/" if a > 0 else "" for a in s["attempt"]], "fgcolor": "#333333"},
            },
            customdata=np.stack([s["turn"], s["attempt"], s["tokens"]], axis=-1),
            hovertemplate=(
                f"{label(stage)}<br>%{{base:.3f}} s + %{{x:.3f}} s<br>"
                "turn %{customdata[0]}, attempt %{customdata[1]}, %{customdata[2]} tokens<extra></extra>"
            ),
        )
    fig.update_layout(barmode="overlay", bargap=0.2, height=max(440, 120 + 22 * len(rows)))
    fig.update_yaxes(categoryorder="array", categoryarray=rows, autorange="reversed", title_text="turn")
    return styled(
        fig,
        title or f"Timeline of rollout {rollout}, span by span",
        axis_title("time since rollout start", "s"),
    )


# -- distributions ---------------------------------------------------------------------------------------


def distribution(data: pd.DataFrame, column: str = "ttft_s", kind: str = "ecdf", title: str | None = None) -> go.Figure:
    """ECDF (or box plot) of a per-turn metric per scenario (and source, dashed for sim, dotted analytic).

    ``data``: spans or :func:`labkit.analysis.metrics.turn_metrics` / rollout metrics holding ``column``.
    """
    if kind not in ("ecdf", "box"):
        raise ValueError(f"kind: must be 'ecdf' or 'box', got {kind!r}")
    df = as_turn_metrics(data) if is_spans(data) else data
    if column not in df.columns:
        raise ValueError(f"column: {column!r} not in the frame")
    axis, scale = column_axis(column)
    df = df.assign(group=_group_labels(df))
    fig = go.Figure()
    palette = colors_for(_scenario_of(g) for g in _order(df["group"].unique()))
    for g in _order(df["group"].unique()):
        sub = df[df["group"] == g]
        vals = np.sort(sub[column].dropna().to_numpy(dtype=float)) * scale
        if not len(vals):
            continue
        src = str(sub["source"].iloc[0]) if "source" in sub.columns else "live"
        if kind == "ecdf":
            fig.add_scatter(
                # The step starts at 0% at the smallest value, as an ECDF does.
                x=np.concatenate([vals[:1], vals]),
                y=np.concatenate([[0.0], np.arange(1, len(vals) + 1) / len(vals) * 100]),
                mode="lines",
                line={
                    "color": palette[_scenario_of(g)],
                    "shape": "hv",
                    "width": 2,
                    "dash": _SOURCE_DASH.get(src, "solid"),
                },
                name=_glabel(g),
                hovertemplate=f"{_glabel(g)}: %{{y:.0f}}% ≤ %{{x:.1f}}<extra></extra>",
            )
        else:
            fig.add_box(y=vals, name=_glabel(g), marker_color=palette[_scenario_of(g)], boxpoints="outliers")
    if kind == "ecdf":
        fig.update_yaxes(range=[0, 102])
        return styled(
            fig,
            title or f"Distribution of {COLUMNS.get(column, (column,))[0]}",
            axis,
            axis_title("share of turns", "%"),
        )
    fig.update_layout(showlegend=False)
    return styled(fig, title or f"Distribution of {COLUMNS.get(column, (column,))[0]}", None, axis)


# -- prediction vs measurement ------------------------------------------------------------------------------


def prediction_vs_measurement(
    pred: pd.DataFrame, meas: pd.DataFrame, column: str = "ttft_s", title: str | None = None
) -> go.Figure:
    """Per turn: the model's prediction (dashed line) and the measured mean with its standard deviation
    (markers), and below the error measured − predicted, per scenario. Mean absolute errors in the legend."""
    err = prediction_error(pred, meas, column)
    axis, scale = column_axis(column)
    qty = COLUMNS.get(column, (column.removesuffix("_s"), "s", 1.0))
    unit = qty[1]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.65, 0.35])
    names = _order(err["scenario"].astype(str).unique())
    palette = colors_for(names)
    for name in names:
        e = err[err["scenario"] == name]
        c = palette[name]
        mae = float(e["error"].abs().mean()) * scale
        fig.add_scatter(
            x=e["turn"],
            y=e["predicted"] * scale,
            mode="lines",
            line={"color": c, "dash": "dash", "width": 2},
            name=f"{label(name)} predicted",
            legendgroup=name,
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=e["turn"],
            y=e["measured"] * scale,
            mode="markers",
            marker={"color": c, "size": 7},
            error_y={
                "type": "data",
                "array": (e["measured_std"].fillna(0) * scale).to_numpy(),
                "thickness": 1,
            },
            name=f"{label(name)} measured (MAE {mae:.1f} {unit})",
            legendgroup=name,
            row=1,
            col=1,
        )
        fig.add_scatter(
            x=e["turn"],
            y=e["error"] * scale,
            mode="lines+markers",
            line={"color": c, "width": 1.5},
            marker={"size": 5},
            name=f"{label(name)} error",
            legendgroup=name,
            showlegend=False,
            row=2,
            col=1,
        )
    fig.add_hline(y=0, line={"color": "#888888", "width": 1}, row=2, col=1)
    fig.update_yaxes(title_text=axis, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text=axis_title("measured − predicted", unit), row=2, col=1)
    fig.update_xaxes(title_text=axis_title("turn", "index"), row=2, col=1)
    fig.update_layout(height=600)
    return styled(fig, title or f"Prediction vs measurement: {qty[0]}")


# -- heatmap ----------------------------------------------------------------------------------------------


def speedup_heatmap(
    df: pd.DataFrame,
    x: str = "tps",
    y: str = "turns",
    z: str = "speedup",
    facet: str | None = "scenario",
    title: str | None = None,
) -> go.Figure:
    """Heatmap of ``z`` over (``x``, ``y``), one panel per ``facet`` value (e.g. per cache strategy)."""
    df = normalize(df)
    x = _x_column(df, x)
    y = _x_column(df, y)
    if z not in df.columns:
        raise ValueError(f"z: {z!r} not in the frame")
    zt, zscale = column_axis(z)
    xt, yt = column_axis(x)[0], column_axis(y)[0]
    facets: list[str | None] = list(_order(df[facet].astype(str).unique())) if facet else [None]
    if facet and z == "speedup" and len(facets) > 1:
        facets = [f for f in facets if f != BASELINE] or facets  # the baseline against itself is all ones
    fig = make_subplots(
        rows=1,
        cols=len(facets),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[label(f) if f else "" for f in facets],
    )
    zmin = float(df[z].min()) * zscale
    zmax = float(df[z].max()) * zscale
    for i, f in enumerate(facets, start=1):
        sub = df if f is None else df[df[facet].astype(str) == f]
        piv = sub.pivot_table(index=y, columns=x, values=z, aggfunc="mean").sort_index().sort_index(axis=1)
        xs = [f"{v:,.0f}" if float(v) >= 10 else f"{v:g}" for v in piv.columns]
        ys = [f"{v:,.0f}" if float(v) >= 10 else f"{v:g}" for v in piv.index]
        vals = piv.to_numpy(dtype=float) * zscale
        fig.add_heatmap(
            x=xs,
            y=ys,
            z=vals,
            coloraxis="coloraxis",
            text=[[f"{v:.2f}" for v in row] for row in vals],
            texttemplate="%{text}",
            textfont={"size": 10},
            hovertemplate=f"{xt}: %{{x}}<br>{yt}: %{{y}}<br>{zt}: %{{z:.3f}}<extra></extra>",
            row=1,
            col=i,
        )
        fig.update_xaxes(title_text=xt, type="category", row=1, col=i)
        # Every panel's y axis must be categorical too, or numeric-looking labels misalign across panels.
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=ys, row=1, col=i)
    fig.update_yaxes(title_text=yt, row=1, col=1)
    fig.update_layout(
        coloraxis={
            "colorscale": "YlGnBu",
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {"title": {"text": zt, "side": "right"}},
        },
        height=480,
        # No fixed width: in a notebook or on a page the figure fills its container (a fixed 1,480 px for four
        # panels was clipped behind a scroll bar); static exports take the width the panels need.
        meta={EXPORT_WIDTH: max(520, 330 * len(facets) + 160)},
    )
    return styled(
        fig,
        title or f"{_upper(_qty(zt))} over {_qty(xt)} and {_qty(yt)}",
    )


# -- lines with confidence bands -----------------------------------------------------------------------------


def _error_arrays(df: pd.DataFrame, y: str, scale: float) -> dict[str, Any] | None:
    """Error bars from ``{y}_lo``/``{y}_hi`` columns, or ``{y}_ci`` (half width), or ``{y}_std``."""
    if f"{y}_lo" in df.columns and f"{y}_hi" in df.columns:
        return {
            "type": "data",
            "symmetric": False,
            "array": ((df[f"{y}_hi"] - df[y]) * scale).to_numpy(),
            "arrayminus": ((df[y] - df[f"{y}_lo"]) * scale).to_numpy(),
            "thickness": 1.2,
            "width": 4,
        }
    for suffix in ("_ci", "_std"):
        if f"{y}{suffix}" in df.columns:
            return {
                "type": "data",
                "array": (df[f"{y}{suffix}"] * scale).to_numpy(),
                "thickness": 1.2,
                "width": 4,
            }
    return None


def line_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    by: str | None = "scenario",
    dash_by: str | None = None,
    title: str | None = None,
    x_title: str | None = None,
    y_title: str | None = None,
    log_x: bool = False,
    log_y: bool = False,
) -> go.Figure:
    """Lines of ``y`` over ``x`` per ``by`` (coloured by name) and ``dash_by``.

    Error bars come from ``{y}_lo``/``{y}_hi``, ``{y}_ci`` or ``{y}_std`` columns. Axis titles come from
    known columns or must be passed with their units."""
    df = normalize(df)
    xt, xs = column_axis(x, x_title)
    yt, ys = column_axis(y, y_title)
    keys = [k for k in (by, dash_by) if k]
    for k in [x, y, *keys]:
        if k not in df.columns:
            raise ValueError(f"{k}: not a column of the frame")
    fig = go.Figure()
    grouped = df.groupby(keys, sort=False) if keys else [((), df)]
    dash_values = list(dict.fromkeys(df[dash_by].astype(str))) if dash_by else []
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    groups = list(grouped)
    order = _order([str(k[0] if isinstance(k, tuple) else k) for k, _ in groups]) if by else None
    if order:
        groups.sort(key=lambda kv: order.index(str(kv[0][0] if isinstance(kv[0], tuple) else kv[0])))
    palette = colors_for(str(k[0] if isinstance(k, tuple) else k) for k, _ in groups)
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        sub = sub.sort_values(x)
        name_parts = [label(str(k)) for k in key]
        c = palette[str(key[0])] if by else color("analytic")
        dash = _ROUTING_DASH.get(str(key[-1])) if dash_by else None
        if dash_by and dash is None:
            dash = dashes[dash_values.index(str(key[-1])) % len(dashes)]
        fig.add_scatter(
            x=sub[x] * xs,
            y=sub[y] * ys,
            mode="lines+markers",
            name=", ".join(name_parts) or yt,
            line={"color": c, "dash": dash or "solid", "width": 2},
            marker={"size": 6},
            error_y=_error_arrays(sub, y, ys),
        )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return styled(fig, title or f"{_qty(yt)} over {_qty(xt)}", xt, yt)


def routing_effect(df: pd.DataFrame, x: str = "replicas", y: str = "e2e_s", title: str | None = None) -> go.Figure:
    """HTTP chaining across N replicas: ``y`` per routing (sticky solid, random dashed) and scenario.

    ``df``: rows with ``scenario``, ``routing``, ``x`` and ``y`` (plus optional ``{y}_lo/_hi`` CIs).
    """
    df = normalize(df)
    if "routing" not in df.columns:
        raise ValueError("df: needs a 'routing' column (sticky | random)")
    if "scenario" in df.columns and df["scenario"].nunique() > 1:
        fig = line_chart(df, x, y, by="scenario", dash_by="routing", title=title or "Sticky vs random routing")
    else:
        who = f"{label(str(df['scenario'].iloc[0]))}: " if "scenario" in df.columns and len(df) else ""
        fig = line_chart(df, x, y, by="routing", title=title or f"{who}sticky vs random routing")
    # Replica counts are few integers, usually doubling: tick exactly those, on a log axis if they span much.
    values = sorted(float(v) for v in df[x].unique())
    if values and values[0] > 0 and values[-1] / values[0] >= 4:
        fig.update_xaxes(type="log")
    fig.update_xaxes(tickvals=values, ticktext=[f"{v:g}" for v in values])
    return fig


def fallback_cost(
    df: pd.DataFrame,
    x: str = "drop_rate",
    y: str = "e2e_s",
    reference: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """``y`` per scenario over the failure rate; with ``reference``, where each scenario stops paying off
    against it (its curve reaches the reference's) is marked. A ``fallbacks`` column adds a lower panel."""
    df = normalize(df)
    xt, xs = column_axis(x)
    yt, ys = column_axis(y)
    scenarios = _order(df["scenario"].astype(str).unique())
    palette = colors_for(scenarios)
    panels = 2 if "fallbacks" in df.columns else 1
    fig = make_subplots(
        rows=panels,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.65, 0.35] if panels == 2 else [1.0],
    )
    for name in scenarios:
        sub = df[df["scenario"] == name]
        g = sub.groupby(x, sort=True)
        mean = g[y].mean()
        err = None
        if g.ngroups and g.size().max() > 1:
            sem: pd.Series = g[y].std() / np.sqrt(g.size())
            err = {
                "type": "data",
                "array": (1.96 * sem.fillna(0) * ys).to_numpy(),
                "thickness": 1.2,
                "width": 4,
            }
        else:
            agg = sub.sort_values(x).set_index(x)
            e = _error_arrays(agg.reset_index(), y, ys)
            err = e
        fig.add_scatter(
            x=mean.index.to_numpy(dtype=float) * xs,
            y=mean.to_numpy() * ys,
            mode="lines+markers",
            name=label(name),
            line={"color": palette[name], "width": 2},
            error_y=err,
            legendgroup=name,
            row=1,
            col=1,
        )
        if panels == 2:
            f = g["fallbacks"].mean()
            fig.add_scatter(
                x=f.index.to_numpy(dtype=float) * xs,
                y=f.to_numpy(),
                mode="lines+markers",
                name=label(name),
                line={"color": palette[name], "width": 1.5},
                legendgroup=name,
                showlegend=False,
                row=2,
                col=1,
            )
    if reference is not None:
        for name in scenarios:
            if name == reference:
                continue
            be = break_even(df, name, reference, x, y)
            if math.isfinite(be):
                fig.add_vline(x=be * xs, line={"color": palette[name], "dash": "dash", "width": 1.2})
                fig.add_annotation(
                    x=be * xs,
                    y=1.0,
                    yref="paper",
                    yanchor="bottom",
                    showarrow=False,
                    text=f"{label(name)} = {label(reference)}<br>at {be * xs:.2g} {_unit(xt)}",
                    font={"size": 11, "color": palette[name]},
                )
    fig.update_yaxes(title_text=yt, row=1, col=1)
    if panels == 2:
        # Two lines: on a short lower panel a one-line title runs up into the upper panel's title.
        fig.update_yaxes(title_text="fallbacks per<br>rollout (count)", row=2, col=1)
    fig.update_xaxes(title_text=xt, row=panels, col=1)
    fig.update_layout(height=560 if panels == 2 else 460)
    return styled(fig, title or "What failures cost: full-context fallbacks")


def fleet_queueing(
    df: pd.DataFrame,
    x: str = "utilisation",
    sim: str = "wait_s",
    theory: str = "erlang_wait_s",
    by: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Simulated mean queueing wait (markers with CIs from ``{sim}_lo/_hi``, ``_ci`` or ``_std``) against
    the Erlang C prediction (line), per ``by`` group (e.g. servers)."""
    for k in (x, sim, theory):
        if k not in df.columns:
            raise ValueError(f"{k}: not a column of the frame")
    xt, xs = column_axis(x)
    yt, ys = column_axis(sim)
    fig = go.Figure()
    groups = list(df.groupby(by, sort=True)) if by else [(None, df)]
    palette = colors_for(f"{by}={key!s}" for key, _ in groups) if by else {}
    for key, sub in groups:
        sub = sub.sort_values(x)
        c = palette[f"{by}={key!s}"] if by else color("sim")
        suffix = f" ({label(by)} {key!s})" if by else ""
        fig.add_scatter(
            x=sub[x] * xs,
            y=sub[theory] * ys,
            mode="lines",
            name=f"Erlang C{suffix}",
            line={"color": c, "width": 2, "dash": "dash"},
        )
        fig.add_scatter(
            x=sub[x] * xs,
            y=sub[sim] * ys,
            mode="markers",
            name=f"simulated{suffix}",
            marker={"color": c, "size": 8, "symbol": "circle-open", "line": {"width": 2}},
            error_y=_error_arrays(sub, sim, ys),
        )
    return styled(fig, title or "Queueing: simulation vs Erlang C", xt, yt)


# -- end to end per transport ------------------------------------------------------------------------


def _metrics_table(data: Any, metric: str) -> pd.DataFrame:
    """Rows ``group, mean, ci`` (95% CI half width of the mean over rollouts; 0 for one rollout)."""
    if isinstance(data, RolloutForecast | Mapping) or (
        isinstance(data, Sequence) and data and all(isinstance(d, RolloutForecast) for d in data)
    ):
        df = forecasts_frame(data)
    elif is_spans(data):
        df = rollout_metrics(data)
    elif isinstance(data, pd.DataFrame):
        df = normalize(data)
    else:
        raise ValueError("data: need spans, rollout metrics or RolloutForecast(s)")
    if metric not in df.columns:
        raise ValueError(f"metric: {metric!r} not in the frame")
    df = df.assign(group=_group_labels(df))
    g = df.groupby("group", sort=False)[metric]
    n = g.count()
    ci: pd.Series = (1.96 * g.std() / np.sqrt(n)).where(n > 1, 0.0).fillna(0.0)
    return pd.DataFrame({"mean": g.mean(), "ci": ci, "n": n}).loc[_order(g.mean().index)]


def e2e_by_transport(
    data: Any,
    metric: str = "e2e_s",
    baseline: str = BASELINE,
    title: str | None = None,
    horizontal: bool = False,
) -> go.Figure:
    """Bars of ``metric`` per scenario (95% CI over rollouts), each labelled with its change vs ``baseline``.

    ``data``: spans, :func:`labkit.analysis.metrics.rollout_metrics`, a sweep frame, or RolloutForecast(s).
    ``horizontal=True`` lays the bars along x, baseline on top: long scenario names stay on one line in a
    narrow figure.
    """
    t = _metrics_table(data, metric)
    axis, scale = column_axis(metric)
    means = t["mean"]
    palette = colors_for(_scenario_of(g) for g in t.index)
    texts = []
    for key, m in means.items():
        g = str(key)
        # Compare like with like: "websocket @ 1,000 tok/s" against "http_baseline @ 1,000 tok/s",
        # "websocket (live)" against "http_baseline (live)"; else against the plain baseline, if any.
        ref = means.get(baseline + g[len(_scenario_of(g)) :], means.get(baseline))
        if ref is None or _scenario_of(g) == baseline:
            texts.append(f"{m * scale:.3g}")
        else:
            texts.append(f"{m * scale:.3g} ({(m / ref - 1) * 100:+.0f}%)")
    cats = [_tick(g) for g in t.index]
    vals = t["mean"] * scale
    err = {"type": "data", "array": (t["ci"] * scale).to_numpy(), "visible": bool((t["n"] > 1).any())}
    bar: dict[str, Any] = (
        {"y": [c.replace("<br>", " ") for c in cats], "x": vals, "orientation": "h", "error_x": err}
        if horizontal
        else {"x": cats, "y": vals, "error_y": err}
    )
    fig = go.Figure(
        go.Bar(
            **bar,
            marker_color=[palette[_scenario_of(g)] for g in t.index],
            text=[x.replace(" (", "<br>(") if not horizontal else x for x in texts],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=("%{y}: %{x:.3f}" if horizontal else "%{x}: %{y:.3f}") + "<extra></extra>",
            showlegend=False,
            name=_qty(axis),
            uid=metric,
        )
    )
    # Room beyond the longest bar for its outside label (plotly's autorange does not count the text).
    top = float(((t["mean"] + t["ci"]) * scale).max())
    rng = [0, top * (1.3 if horizontal else 1.18)] if top > 0 else None
    if horizontal:
        fig.update_xaxes(range=rng, rangemode="tozero")
        fig.update_yaxes(autorange="reversed")
        return styled(fig, title or f"{_upper(_qty(axis))} by transport", axis, None)
    fig.update_yaxes(range=rng, rangemode="tozero")
    return styled(fig, title or f"{_upper(_qty(axis))} by transport", None, axis)


# -- speedup over decode speed ------------------------------------------------------------------------------

_TPS_TICKS = (10, 20, 50, 100, 200, 500, 1000, 2000, 4000, 10000)


def speedup_over_tps(
    df: pd.DataFrame,
    current_tps: float | None = None,
    highlight: str | None = None,
    baseline: str = BASELINE,
    title: str | None = None,
) -> go.Figure:
    """End-to-end speedup over ``baseline`` against decode speed (log axis), one line per scenario.

    ``df``: rows ``scenario, tps, speedup`` (a :func:`labkit.sim.sweep.forecast_sweep` over ``tps`` with a
    baseline). With ``current_tps`` a dashed vertical line (``uid='current_tps'``) and a marker per scenario at that
    speed (``uid='at_current_tps'``, the ``highlight`` one labelled) are drawn; every scenario's line has the
    scenario as its ``uid``, so a dashboard can update any of them in place.
    """
    df = normalize(df)
    need = {"scenario", "speedup"}
    x = _x_column(df, "tps")
    if missing := need - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    scenarios = _order(df["scenario"].astype(str).unique())
    palette = colors_for(scenarios)
    fig = go.Figure()
    for name in scenarios:
        g = df[df["scenario"] == name].groupby(x, sort=True)["speedup"].mean()
        fig.add_scatter(
            x=g.index.to_numpy(dtype=float),
            y=g.to_numpy(dtype=float),
            mode="lines",
            name=label(name),
            uid=name,
            line={
                "color": palette[name],
                "width": 4 if name == highlight else 2,
                "dash": "dot" if name == baseline else "solid",
            },
            hovertemplate=f"{label(name)}: %{{y:.2f}}× at %{{x:.0f}} tokens/s<extra></extra>",
        )
    tps = df[x].to_numpy(dtype=float)
    if current_tps is not None:
        now = {n: float(np.interp(math.log(current_tps), *_log_curve(df, n, x))) for n in scenarios}
        top = max(float(df["speedup"].max()), 1.0) * 1.08
        fig.add_scatter(
            x=[current_tps, current_tps],
            y=[0.0, top],
            mode="lines",
            name="current TPS",
            uid="current_tps",
            line={"color": "#888888", "width": 1, "dash": "dash"},
            hoverinfo="skip",
            showlegend=False,
        )
        fig.add_scatter(
            x=[current_tps] * len(scenarios),
            y=[now[n] for n in scenarios],
            mode="markers+text",
            name="at current TPS",
            uid="at_current_tps",
            marker={"size": 9, "color": [palette[n] for n in scenarios]},
            text=[f"{now[n]:.2f}×" if n == highlight else "" for n in scenarios],
            textposition="middle right",
            showlegend=False,
            hovertemplate="%{y:.2f}×<extra></extra>",
        )
    ticks = [v for v in _TPS_TICKS if tps.min() <= v <= tps.max()]
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{v:,}" for v in ticks])
    fig.update_yaxes(rangemode="tozero")
    return styled(
        fig,
        title or f"End-to-end speedup over {label(baseline)}",
        column_axis("decode_tps")[0],
        axis_title(f"speedup vs {label(baseline)}", "×"),
    )


def _log_curve(df: pd.DataFrame, name: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    g = df[df["scenario"] == name].groupby(x, sort=True)["speedup"].mean()
    return np.log(g.index.to_numpy(dtype=float)), g.to_numpy(dtype=float)


# -- attribution -------------------------------------------------------------------------------------------------


def gain_by_mechanism(df: pd.DataFrame, share: bool = True, title: str | None = None) -> go.Figure:
    """Each mechanism's share of a strategy's end-to-end gain, stacked, over decode speed.

    ``df``: :func:`labkit.analysis.attribution.attribution_over_tps` (rows ``tps, mechanism, label, share_s,
    share_of_baseline``). ``share=True`` stacks each share as a percentage of the baseline's end to end (so the
    stack's top is the reduction); else seconds saved per rollout.
    """
    need = {"tps", "mechanism", "label", "share_s", "share_of_baseline"}
    if missing := need - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    col, scale = ("share_of_baseline", 100.0) if share else ("share_s", 1.0)
    order = list(dict.fromkeys(df["mechanism"]))
    names = dict(zip(df["mechanism"], df["label"], strict=False))
    palette = colors_for(order)
    fig = go.Figure()
    for m in order:
        g = df[df["mechanism"] == m].sort_values("tps")
        fig.add_scatter(
            x=g["tps"],
            y=g[col] * scale,
            name=names[m],
            uid=m,
            mode="lines",
            stackgroup="gain",
            line={"color": palette[m], "width": 0.5},
            fillcolor=palette[m],
            hovertemplate=f"{names[m]}: %{{y:.1f}}{'%' if share else ' s'} at %{{x:.0f}} tokens/s<extra></extra>",
        )
    tps = df["tps"].to_numpy(dtype=float)
    ticks = [v for v in _TPS_TICKS if tps.min() <= v <= tps.max()]
    fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{v:,}" for v in ticks])
    fig.update_layout(legend={"traceorder": "reversed"})
    cand = str(df["candidate"].iloc[0]) if "candidate" in df.columns and len(df) else "the strategy"
    y = axis_title("end-to-end reduction", "% of baseline") if share else axis_title("time saved per rollout", "s")
    return styled(fig, title or f"Where {label(cand)}'s gain comes from", column_axis("tps")[0], y)


def gap_closed(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Bars: the share of the gap from the baseline to the lower bound (``ideal``) each preset closes.

    ``df``: :func:`labkit.analysis.attribution.gap_to_ideal` (rows ``scenario, gap_closed, gain_s, gap_s``).
    """
    if missing := {"scenario", "gap_closed", "gain_s"} - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    names = _order(df["scenario"].astype(str))
    d = df.set_index("scenario").loc[names]
    palette = colors_for(names)
    fig = go.Figure(
        go.Bar(
            x=[_tick(n) for n in names],
            y=d["gap_closed"] * 100,
            marker_color=[palette[n] for n in names],
            text=[f"{v:.0%}<br>{g:.1f} s" for v, g in zip(d["gap_closed"], d["gain_s"], strict=True)],
            textposition="outside",
            cliponaxis=False,
            uid="gap_closed",
            name="gap closed",
            showlegend=False,
            hovertemplate="%{x}: %{y:.1f}% of the gap<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 125], tickvals=[0, 25, 50, 75, 100])
    tps = f" at {float(df['tps'].iloc[0]):,.0f} tokens/s" if "tps" in df.columns else ""
    return styled(
        fig,
        title or f"How much of the gap to the lower bound each preset closes{tps}",
        None,
        axis_title("gap closed", "%"),
    )


# -- claims ------------------------------------------------------------------------------------------------------


def claims_region(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Where the assumed parameters keep the published claims: claims held over (per-token cost scale, fixed
    API-cost scale), one panel per tool-time scale, the cells where all hold outlined.

    ``df``: :func:`labkit.analysis.claims.claims_region`.
    """
    need = {"api_scale", "per_token_scale", "tool_scale", "claims_held", "all_hold"}
    if missing := need - set(df.columns):
        raise ValueError(f"df: missing column(s) {', '.join(sorted(missing))}")
    n_claims = len(df.attrs.get("claims", [])) or int(df["claims_held"].max())
    tools = sorted(df["tool_scale"].unique())
    xs = [f"{v:g}" for v in sorted(df["per_token_scale"].unique())]
    ys = [f"{v:g}" for v in sorted(df["api_scale"].unique())]
    fig = make_subplots(
        rows=1,
        cols=len(tools),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"tool time × {t:g}" for t in tools],
    )
    for i, t in enumerate(tools, start=1):
        sub = df[df["tool_scale"] == t]
        held = sub.pivot(index="api_scale", columns="per_token_scale", values="claims_held").sort_index()
        fig.add_heatmap(
            x=[f"{v:g}" for v in held.columns],
            y=[f"{v:g}" for v in held.index],
            z=held.to_numpy(),
            zmin=0,
            zmax=n_claims,
            colorscale=[[0, "#f7f7f7"], [0.75, "#9ecae9"], [1, color("websocket")]],
            showscale=i == 1,
            colorbar={"title": {"text": "claims held"}, "dtick": 1},
            uid=f"held_{i}",  # plotly uses a uid in CSS selectors: no dots
            name=f"tool × {t:g}",
            hovertemplate="per-token × %{x}, fixed × %{y}: %{z} claims hold<extra></extra>",
            row=1,
            col=i,
        )
        ok = sub[sub["all_hold"]]
        fig.add_scatter(
            x=[f"{v:g}" for v in ok["per_token_scale"]],
            y=[f"{v:g}" for v in ok["api_scale"]],
            mode="markers",
            marker={"symbol": "square-open", "size": 16, "color": INK_COLOR, "line": {"width": 2}},
            name="all claims hold",
            uid=f"all_{i}",
            showlegend=i == 1 and len(ok) > 0,
            hovertemplate="all claims hold<extra></extra>",
            row=1,
            col=i,
        )
        fig.update_xaxes(
            title_text=axis_title("per-token API cost", "× default"),
            type="category",
            categoryorder="array",
            categoryarray=xs,
            row=1,
            col=i,
        )
    # One category order for every panel: the marker traces would otherwise add their values in their own order.
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=ys)
    fig.update_yaxes(title_text=axis_title("fixed API cost", "× default"), row=1, col=1)
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 1, "xanchor": "right"})
    return styled(fig, title or "Where every published claim holds at once")


INK_COLOR = "#222222"


__all__ = [
    "COLUMNS",
    "OPTIMISATIONS",
    "TEMPLATE",
    "claims_region",
    "column_axis",
    "distribution",
    "e2e_by_transport",
    "fallback_cost",
    "fleet_queueing",
    "gain_by_mechanism",
    "gantt",
    "gap_closed",
    "line_chart",
    "overhead_vs_tps",
    "prediction_vs_measurement",
    "routing_effect",
    "speedup_heatmap",
    "speedup_over_tps",
    "stage_breakdown",
    "ttft_waterfall",
]
