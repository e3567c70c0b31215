"""Interactive what-if dashboards: ipywidgets 8 controls over plotly ``FigureWidget``s.

Every control change recomputes the closed form (:func:`labkit.sim.analytic.forecast`, about a millisecond
per profile) and updates the existing figures in place with ``batch_update``: no figure is ever rebuilt,
because a new FigureWidget ships its ~5 MB front end over the comm again.

Callbacks are synchronous and call only the fast path, so they need no event loop.
"""

from __future__ import annotations

import copy
import html
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from labkit.model import STAGES, Profile, Workload, load_profile, load_workload, preset_names
from labkit.sim.analytic import RolloutForecast, forecast
from labkit.viz.export import FORMATS, NO_BROWSER_MESSAGE, export_many, find_browser
from labkit.viz.template import TEMPLATE, axis_title, color, label

BASELINE = "http_baseline"
TPS_MIN, TPS_MAX = 20.0, 4000.0
#: Decode speeds of the speedup curve (log spaced over the slider's range).
CURVE_TPS = np.geomspace(TPS_MIN, TPS_MAX, 48)
# Two bar charts side by side plus margins fit a default JupyterLab notebook column (~960 px).
_FIG_W, _FIG_H = 450, 420


@dataclass(frozen=True)
class WhatIf:
    """The dashboard's inputs, in model units (the sliders show ms and tokens where that reads better)."""

    tps: float
    hop_latency_s: float
    hops: int
    tool_s: float
    turns: int
    context_tokens: int
    strategy: str
    replicas: int
    routing: str


def scenario_profiles(base: Mapping[str, Profile], v: WhatIf) -> dict[str, Profile]:
    """Every preset under the dashboard's inputs.

    ``hops`` is the baseline's hop count; a preset that removed hops keeps its smaller count (never more
    than the slider). Replicas and routing apply to HTTP profiles only: a WebSocket stays on one replica.
    """
    ref_hops = base[BASELINE].hops if BASELINE in base else max(p.hops for p in base.values())
    out = {}
    for name, p in base.items():
        hops = v.hops if p.hops >= ref_hops else min(p.hops, v.hops)
        kw: dict[str, Any] = {"decode_tps": v.tps, "hop_latency_s": v.hop_latency_s, "hops": hops}
        if p.transport == "http":
            kw.update(replicas=v.replicas, routing=v.routing)
        out[name] = p.with_(**kw)
    return out


def speedup_curve(fc: RolloutForecast, base: RolloutForecast, tps: float, grid: np.ndarray) -> np.ndarray:
    """End-to-end speedup of ``fc`` over ``base`` at every decode speed of ``grid``.

    In the latency model only the ``decode`` stage depends on the decode speed, as (tokens - 1) / TPS, so
    a forecast at one speed gives the whole curve exactly: decode time scales with tps / TPS. (A test
    checks this against full forecasts, so a model change that breaks it is caught.)
    """
    scale = tps / grid
    e2e = fc.e2e_s - fc.stage_s["decode"] + fc.stage_s["decode"] * scale
    e2e_base = base.e2e_s - base.stage_s["decode"] + base.stage_s["decode"] * scale
    return e2e_base / e2e


def _slider_style() -> dict[str, str]:
    return {"description_width": "120px"}


class Dashboard:
    """The what-if dashboard: display ``.widget`` (or the object itself), move sliders, export figures.

    ``set(tps=..., ...)`` changes several controls with one redraw and returns when the figures are
    updated (for scripts and benchmarks). ``figures`` maps names to the live ``FigureWidget``s.
    """

    def __init__(
        self,
        workload: str | Workload = "codex_bugfix",
        strategy: str = "websocket",
        tps: float = 1000.0,
        export_dir: str | Path = "figures/what_if",
        export_formats: Sequence[str] = FORMATS,
    ) -> None:
        self.workload = load_workload(workload) if isinstance(workload, str) else workload
        self.base_profiles = {name: load_profile(name) for name in preset_names()}
        if BASELINE not in self.base_profiles:
            raise ValueError(f"profile: the presets must include {BASELINE!r}")
        if strategy not in self.base_profiles:
            raise ValueError(f"strategy: unknown preset {strategy!r}; known: {', '.join(self.base_profiles)}")
        if not TPS_MIN <= tps <= TPS_MAX:
            raise ValueError(f"tps: must be within [{TPS_MIN:g}, {TPS_MAX:g}], got {tps!r}")
        self.export_dir = Path(export_dir)
        self.export_formats = tuple(export_formats)
        self.redraws = 0
        self.last_redraw_s = math.nan
        self.forecasts: dict[str, RolloutForecast] = {}
        self._hold = False
        base = self.base_profiles[BASELINE]
        w = self.workload

        self.controls: dict[str, W.ValueWidget] = {
            # The TPS slider comes first in the DOM: the browser test finds it as the first slider.
            "tps": W.FloatLogSlider(
                value=tps,
                base=10,
                min=math.log10(TPS_MIN),
                max=math.log10(TPS_MAX),
                step=0.01,
                description="decode TPS",
                readout_format=".0f",
                tooltip="decode speed of the model, tokens per second (log scale)",
                style=_slider_style(),
            ),
            "hop_latency_ms": W.FloatSlider(
                value=base.hop_latency_s * 1e3,
                min=0.0,
                max=50.0,
                step=0.5,
                description="hop latency (ms)",
                readout_format=".1f",
                tooltip="latency of one internal service hop on the critical path",
                style=_slider_style(),
            ),
            "hops": W.IntSlider(
                value=base.hops,
                min=0,
                max=12,
                description="internal hops",
                tooltip="hops of the baseline; optimized presets keep their fewer hops (never more than this)",
                style=_slider_style(),
            ),
            "tool_s": W.FloatSlider(
                value=w.tool_time_median_s,
                min=0.0,
                max=5.0,
                step=0.05,
                description="tool time (s)",
                readout_format=".2f",
                tooltip="median client-side tool time per call",
                style=_slider_style(),
            ),
            "turns": W.IntSlider(
                value=w.turns,
                min=1,
                max=100,
                description="turns",
                tooltip="model calls per rollout (tool calls = turns - 1)",
                style=_slider_style(),
            ),
            "context_tokens": W.IntSlider(
                value=w.initial_context_tokens,
                min=0,
                max=100_000,
                step=1000,
                description="context (tokens)",
                tooltip="tokens of the first request: instructions, tool definitions and the task",
                style=_slider_style(),
            ),
            "strategy": W.Dropdown(
                options=[(label(n), n) for n in self.base_profiles],
                value=strategy,
                description="strategy",
                tooltip="transport and cache strategy compared with the HTTP baseline",
                style=_slider_style(),
            ),
            "replicas": W.IntSlider(
                value=base.replicas,
                min=1,
                max=16,
                description="replicas",
                tooltip="API replicas behind the load balancer (HTTP only)",
                style=_slider_style(),
            ),
            "routing": W.ToggleButtons(
                options=[("sticky", "sticky"), ("random", "random")],
                value=base.routing,
                description="routing",
                tooltip="how HTTP requests of one conversation reach replicas",
                style={**_slider_style(), "button_width": "80px"},
            ),
        }
        # Draw the first state into plain figures, then wrap them: a FigureWidget built from a complete
        # figure carries its data in its initial state. Traces added to an empty FigureWidget travel as
        # transient messages instead, and a front end that is not yet listening (JupyterLab still loading
        # the widget's JavaScript) showed those traces without their x values.
        self.figures: dict[str, Any] = {
            "speedup": self._speedup_figure(),
            "breakdown": self._breakdown_figure(),
            "e2e": self._e2e_figure(),
        }
        self._draw()
        self.figures = {name: go.FigureWidget(fig) for name, fig in self.figures.items()}
        self.export_button = W.Button(
            description="export figures",
            icon="download",
            tooltip="write the current figures as HTML, PNG, SVG and PDF",
        )
        self.export_output = W.HTML(value="")
        self.export_button.on_click(lambda _button: self.export())
        for control in self.controls.values():
            control.observe(self._on_change, names="value")

        c = self.controls
        box = W.Layout(width="420px")
        controls = W.HBox(
            [
                W.VBox([c["tps"], c["hop_latency_ms"], c["hops"]], layout=box),
                W.VBox([c["tool_s"], c["turns"], c["context_tokens"]], layout=box),
                W.VBox([c["strategy"], c["replicas"], c["routing"]], layout=box),
            ]
        )
        header = W.HTML(
            value=(
                f"<b>What if?</b> Closed-form model of one <code>{html.escape(self.workload.name)}</code> "
                "rollout per strategy; every change redraws the figures below."
            )
        )
        self.widget = W.VBox(
            [
                header,
                controls,
                self.figures["speedup"],
                W.HBox([self.figures["breakdown"], self.figures["e2e"]]),
                W.HBox([self.export_button, self.export_output]),
            ]
        )

    # -- display ----------------------------------------------------------------------------------------

    def _sync_views(self) -> None:
        """Put each figure's current data into its widget state, as ``FigureWidget`` does when shown alone.

        Displayed inside a box, a FigureWidget's own display hook never runs, so a view created later (a
        second display, a page reload) would start from stale state.
        """
        for fig in self.figures.values():
            fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
            fig._widget_data = copy.deepcopy(fig._data)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._sync_views()
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._sync_views()
        display(self.widget)

    # -- inputs -------------------------------------------------------------------------------------------

    @property
    def values(self) -> WhatIf:
        c = self.controls
        return WhatIf(
            tps=float(c["tps"].value),
            hop_latency_s=float(c["hop_latency_ms"].value) / 1e3,
            hops=int(c["hops"].value),
            tool_s=float(c["tool_s"].value),
            turns=int(c["turns"].value),
            context_tokens=int(c["context_tokens"].value),
            strategy=str(c["strategy"].value),
            replicas=int(c["replicas"].value),
            routing=str(c["routing"].value),
        )

    def set(self, **values: Any) -> float:
        """Set controls by name (``tps``, ``hop_latency_ms``, ``hops``, ``tool_s``, ``turns``,
        ``context_tokens``, ``strategy``, ``replicas``, ``routing``) with a single redraw.

        Returns when the figures hold the new data, with the redraw's duration in seconds. Values outside a
        slider's range raise ``ValueError`` (a slider would silently clamp them).
        """
        for name, v in values.items():
            if name not in self.controls:
                raise ValueError(f"{name}: unknown control; known: {', '.join(self.controls)}")
            control = self.controls[name]
            if name == "tps":
                lo, hi = TPS_MIN, TPS_MAX
            elif hasattr(control, "min"):
                lo, hi = control.min, control.max
            else:
                options = [o[1] if isinstance(o, tuple) else o for o in control.options]
                if v not in options:
                    raise ValueError(f"{name}: must be one of {', '.join(map(str, options))}, got {v!r}")
                continue
            if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
                raise ValueError(f"{name}: must be a number within [{lo:g}, {hi:g}], got {v!r}")
        self._hold = True
        try:
            for name, v in values.items():
                self.controls[name].value = v
        finally:
            self._hold = False
        return self.redraw()

    def _on_change(self, _change: Mapping[str, Any]) -> None:
        if not self._hold:
            self.redraw()

    # -- model ------------------------------------------------------------------------------------------------

    def compute(self, v: WhatIf | None = None) -> dict[str, RolloutForecast]:
        """Closed-form forecasts of every preset under the inputs ``v`` (default: the controls')."""
        v = v or self.values
        w = self.workload.with_(turns=v.turns, initial_context_tokens=v.context_tokens, tool_time_median_s=v.tool_s)
        return {name: forecast(p, w) for name, p in scenario_profiles(self.base_profiles, v).items()}

    # -- figures ------------------------------------------------------------------------------------------------

    def _figure(self, title: str, x_title: str | None, y_title: str, width: int = _FIG_W) -> go.Figure:
        fig = go.Figure()
        fig.update_layout(
            template=TEMPLATE,
            title={"text": title},
            width=width,
            height=_FIG_H,
            margin={"l": 70, "r": 20, "t": 60, "b": 50},
        )
        if x_title:
            fig.update_xaxes(title_text=x_title)
        fig.update_yaxes(title_text=y_title)
        return fig

    def _speedup_figure(self) -> go.Figure:
        fig = self._figure(
            "", axis_title("decode speed", "tokens/s"), axis_title("speedup vs HTTP baseline", "×"), 2 * _FIG_W
        )
        for name in self.base_profiles:
            fig.add_scatter(
                x=CURVE_TPS.tolist(),
                y=[1.0] * len(CURVE_TPS),
                mode="lines",
                name=label(name),
                line={"color": color(name), "width": 2.5, "dash": "dot" if name == BASELINE else "solid"},
                hovertemplate=f"{label(name)}: %{{y:.2f}}× at %{{x:.0f}} tokens/s<extra></extra>",
            )
        # The current decode speed as a line trace (not a layout shape) so it redraws like the data does.
        fig.add_scatter(
            x=[1000.0, 1000.0],
            y=[0.0, 1.0],
            mode="lines",
            name="current TPS",
            line={"color": "#888888", "width": 1, "dash": "dash"},
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=[],
            y=[],
            mode="markers+text",
            name="at current TPS",
            marker={"size": 9, "color": []},
            textposition="middle right",
            showlegend=False,
            hovertemplate="%{text}<extra></extra>",
        )
        fig.update_xaxes(type="log", range=[math.log10(TPS_MIN), math.log10(TPS_MAX)])
        ticks = [20, 50, 100, 200, 500, 1000, 2000, 4000]
        fig.update_xaxes(tickvals=ticks, ticktext=[f"{t:,}" for t in ticks])
        fig.update_yaxes(rangemode="tozero")
        return fig

    def _breakdown_figure(self) -> go.Figure:
        fig = self._figure("Time per rollout by stage", None, axis_title("time per rollout", "s"))
        for stage in STAGES:
            fig.add_bar(
                x=[],
                y=[],
                name=label(stage),
                marker_color=color(stage),
                hovertemplate=f"{label(stage)}: %{{y:.2f}} s<extra>%{{x}}</extra>",
            )
        fig.update_layout(barmode="stack", legend={"traceorder": "reversed", "font": {"size": 11}})
        return fig

    def _e2e_figure(self) -> go.Figure:
        fig = self._figure("End to end per transport", None, axis_title("end to end per rollout", "s"))
        fig.update_layout(uniformtext={"mode": "show", "minsize": 12})
        fig.add_bar(
            # Two-line labels stay level under narrow bars instead of tilting.
            x=[label(n).replace(" ", "<br>", 1) for n in self.base_profiles],
            y=[0.0] * len(self.base_profiles),
            marker={"color": [color(n) for n in self.base_profiles]},
            textposition="outside",
            cliponaxis=False,
            showlegend=False,
            hovertemplate="%{x}: %{y:.2f} s<extra></extra>",
        )
        fig.update_yaxes(rangemode="tozero")
        return fig

    def redraw(self) -> float:
        """Recompute and update every figure in place; returns the seconds it took."""
        t0 = time.perf_counter()
        self._draw()
        self.redraws += 1
        self.last_redraw_s = time.perf_counter() - t0
        return self.last_redraw_s

    def _draw(self) -> None:
        v = self.values
        fcs = self.compute(v)
        self.forecasts = fcs
        base = fcs[BASELINE]
        names = list(fcs)
        sel = v.strategy

        fig = self.figures["speedup"]
        curves = {n: speedup_curve(fcs[n], base, v.tps, CURVE_TPS) for n in names}
        now = {n: base.e2e_s / fcs[n].e2e_s for n in names}
        top = max(float(np.max(c)) for c in curves.values()) * 1.08
        with fig.batch_update():
            for i, n in enumerate(names):
                fig.data[i].y = curves[n].tolist()
                fig.data[i].line.width = 4 if n == sel else 2
            fig.data[len(names)].x = [v.tps, v.tps]
            fig.data[len(names)].y = [0.0, top]
            fig.data[len(names) + 1].x = [v.tps] * len(names)
            fig.data[len(names) + 1].y = [now[n] for n in names]
            fig.data[len(names) + 1].marker.color = [color(n) for n in names]
            fig.data[len(names) + 1].text = [f"{now[n]:.2f}×" if n == sel else "" for n in names]
            fig.layout.yaxis.range = [0, top]
            fig.layout.title.text = (
                f"{label(sel)}: {now[sel]:.2f}× faster end to end than {label(BASELINE)} "
                f"at {v.tps:,.0f} tokens/s ({(1 - 1 / now[sel]) * 100:.0f}% less time)"
            )

        fig = self.figures["breakdown"]
        shown = [BASELINE] if sel == BASELINE else [BASELINE, sel]
        xs = [label(n) for n in shown]
        with fig.batch_update():
            for i, stage in enumerate(STAGES):
                ys = [fcs[n].stage_s[stage] for n in shown]
                trace = fig.data[i]
                trace.x = xs
                trace.y = ys
                # Stages that cost nothing in either bar stay out of the legend.
                trace.showlegend = any(y > 1e-12 for y in ys)

        fig = self.figures["e2e"]
        e2e = [fcs[n].e2e_s for n in names]
        with fig.batch_update():
            bar = fig.data[0]
            bar.y = e2e
            bar.text = [
                f"{e:.1f} s" if n == BASELINE else f"{e:.1f} s<br>{(e / base.e2e_s - 1) * 100:+.0f}%"
                for n, e in zip(names, e2e, strict=True)
            ]
            bar.marker.line = {"color": "#222222", "width": [3 if n == sel else 0 for n in names]}
            fig.layout.yaxis.range = [0, max(e2e) * 1.15]

    # -- export ---------------------------------------------------------------------------------------------------

    def export(
        self, out_dir: str | Path | None = None, formats: Sequence[str] | None = None
    ) -> dict[str, dict[str, Path]]:
        """Write the current figures through :func:`labkit.viz.export_many` and show where in the dashboard."""
        out = Path(out_dir) if out_dir is not None else self.export_dir
        fmts = tuple(formats) if formats is not None else self.export_formats
        self.export_output.value = "<i>exporting…</i>"
        figs = [(go.Figure(fig), f"what_if_{name}") for name, fig in self.figures.items()]
        try:
            written = export_many(figs, fmts, out)
        except (OSError, ValueError) as exc:
            self.export_output.value = f"<b>export failed:</b> {html.escape(str(exc))}"
            raise
        files = [p for paths in written.values() for p in paths.values()]
        missing = [f for f in fmts if f != "html" and any(f not in paths for paths in written.values())]
        note = ""
        if missing:
            why = NO_BROWSER_MESSAGE if find_browser() is None else f"not written: {', '.join(missing)} (see the log)"
            note = f"<br><small>{html.escape(why)}</small>"
        items = "".join(f"<li><code>{html.escape(str(p))}</code></li>" for p in files)
        self.export_output.value = (
            f"Wrote {len(files)} file(s) to <code>{html.escape(str(out.resolve()))}</code>:<ul>{items}</ul>{note}"
        )
        return written


def what_if(
    workload: str | Workload = "codex_bugfix",
    strategy: str = "websocket",
    tps: float = 1000.0,
    export_dir: str | Path = "figures/what_if",
    export_formats: Sequence[str] = FORMATS,
) -> Dashboard:
    """The what-if dashboard; a bare ``what_if()`` as the last line of a cell displays it."""
    return Dashboard(workload, strategy, tps, export_dir, export_formats)


__all__ = ["Dashboard", "WhatIf", "scenario_profiles", "speedup_curve", "what_if"]
