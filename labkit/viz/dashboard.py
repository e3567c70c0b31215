"""The what-if dashboard: ipywidgets 8 controls over plotly ``FigureWidget``s drawn by the :mod:`labkit.viz` builders.

The controls are a table (:data:`CONTROLS`): one declaration per control names its widget kind, its range and
the model parameter it sets. A strategy is a preset plus mechanism checkboxes (one per mechanism of
:data:`labkit.model.profile.MECHANISMS`), so a user can switch single mechanisms on or off. Every change recomputes
the closed form (:func:`labkit.sim.analytic.forecast`, about a millisecond per profile) and updates the existing
figures in place, addressing traces by ``uid``; only traces whose values changed are touched, so a decode-speed
step re-sends the few traces that depend on it. No figure is ever rebuilt. The figures are
:class:`SharedFigureWidget` instances: plotly's ``FigureWidget`` with its ~5 MB page module sent once for all of them
(:class:`PlotlyModule`) and no plot state echoed back after an update. A change's edits of the three figures reach
the page as one message; a pure data step redraws traces only (value axes keep their range until
the data leave it), anything else the whole figure (see :func:`_edit_message`).

Callbacks are synchronous and call only the fast path, so they need no event loop. A control drag sends a value
per step; each redraw is a few milliseconds of Python, so the kernel keeps up and the last value wins.
"""

from __future__ import annotations

import copy
import html
import json
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import anywidget
import ipywidgets as W
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import traitlets

from labkit.analysis.cache_memory import cache_hit_share, forecast_under_budget, speedup_curve
from labkit.analysis.calibrate import scaled
from labkit.model import STAGES, Profile, TurnSpec, Workload, load_profile, load_workload, preset_names, workload_names
from labkit.model.profile import MECHANISMS, Mechanism
from labkit.sim.analytic import RolloutForecast, forecast
from labkit.viz.export import FORMATS, NO_BROWSER_MESSAGE, export_many, find_browser
from labkit.viz.figures import e2e_by_transport, speedup_over_tps, stage_breakdown
from labkit.viz.template import label

BASELINE = "http_baseline"
CUSTOM = "custom"
# The log slider's ends sit on its 0.01 grid, so 1,000 (10**3) is reachable exactly; the ends are about 20 and 4,074.
TPS_MIN, TPS_MAX = 10**1.3, 10**3.61
#: Decode speeds of the speedup curve (log spaced over the slider's range).
CURVE_TPS = np.geomspace(TPS_MIN, TPS_MAX, 48)


class WorkloadLike(Protocol):
    """What the dashboard needs of a workload: a name and its turns (presets, imported sessions)."""

    @property
    def name(self) -> str: ...

    def turn_specs(self, seed: int | None = None) -> tuple[TurnSpec, ...]: ...


# -- the controls, declared ---------------------------------------------------------------------------------------

Kind = Literal["log", "float", "int", "choice", "toggle", "check"]


@dataclass(frozen=True)
class Control:
    """One control: its widget kind, range, and the model parameter it sets (``target``, for the docs and tooltip).

    ``scale`` converts the widget's unit to the model's (``hop latency (ms)`` -> seconds: 1e-3).
    """

    name: str
    kind: Kind
    description: str
    target: str
    lo: float = 0.0
    hi: float = 1.0
    step: float = 1.0
    scale: float = 1.0
    fmt: str = ".0f"
    options: tuple[tuple[str, str], ...] = ()
    tooltip: str = ""
    group: str = "speed"

    def widget(self, value: Any, options: Sequence[tuple[str, str]] | None = None) -> W.ValueWidget:
        """The control's widget, starting at ``value``; ``options`` fills a choice whose options are known only at
        run time (the workloads, the presets)."""
        tip = f"{self.tooltip} (sets {self.target})" if self.tooltip else f"sets {self.target}"
        common: dict[str, Any] = {"description": self.description, "tooltip": tip}
        full = W.Layout(width="auto", min_width="0")
        style = {"description_width": "112px"}
        if self.kind == "log":
            return W.FloatLogSlider(
                value=value,
                base=10,
                min=math.log10(self.lo),
                max=math.log10(self.hi),
                step=self.step,
                readout_format=self.fmt,
                style=style,
                layout=full,
                **common,
            )
        if self.kind == "float":
            return W.FloatSlider(
                value=value,
                min=self.lo,
                max=self.hi,
                step=self.step,
                readout_format=self.fmt,
                style=style,
                layout=full,
                **common,
            )
        if self.kind == "int":
            return W.IntSlider(
                value=value, min=int(self.lo), max=int(self.hi), step=int(self.step), style=style, layout=full, **common
            )
        if self.kind == "choice":
            opts = list(options if options is not None else self.options)
            return W.Dropdown(options=opts, value=value, style=style, layout=full, **common)
        if self.kind == "toggle":
            return W.ToggleButtons(
                options=list(self.options),
                value=value,
                style={**style, "button_width": "72px"},
                layout=full,
                **common,
            )
        return W.Checkbox(value=bool(value), indent=False, layout=W.Layout(width="auto"), **common)

    def check(self, value: Any, options: Sequence[tuple[str, str]] | None = None) -> None:
        """``ValueError`` naming the control when ``value`` is outside its range (a slider would clamp it)."""
        if self.kind in ("choice", "toggle"):
            names = [v for _, v in (options if options is not None else self.options)]
            if value not in names:
                raise ValueError(f"{self.name}: must be one of {', '.join(names)}, got {value!r}")
        elif self.kind == "check":
            if not isinstance(value, bool):
                raise ValueError(f"{self.name}: must be True or False, got {value!r}")
        elif not isinstance(value, int | float) or isinstance(value, bool) or not self.lo <= value <= self.hi:
            raise ValueError(f"{self.name}: must be a number within [{self.lo:g}, {self.hi:g}], got {value!r}")


def _mechanism_control(m: Mechanism) -> Control:
    return Control(m.name, "check", m.label, "Profile." + ", ".join(m.fields), tooltip=m.doc, group="mechanisms")


#: Every control of the dashboard: name, kind, range, and the model parameter it sets.
CONTROLS: tuple[Control, ...] = (
    # The TPS slider comes first in the DOM: the browser test finds it as the first slider.
    Control(
        "tps", "log", "decode TPS", "Profile.decode_tps", TPS_MIN, TPS_MAX, 0.01, tooltip="decode speed, log scale"
    ),
    Control("api_scale", "float", "API cost ×", "Profile API-service times", 0.0, 3.0, 0.05, fmt=".2f"),
    Control("hop_latency_ms", "float", "hop latency (ms)", "Profile.hop_latency_s", 0.0, 150.0, 1.0, 1e-3),
    Control("hops", "int", "internal hops", "Profile.hops (the baseline's)", 0, 12),
    Control("tool_s", "float", "tool time (s)", "Workload.tool_time_median_s", 0.0, 5.0, 0.01, fmt=".2f", group="work"),
    Control("turns", "int", "model calls", "Workload.turns", 1, 300, group="work"),
    Control("context_k", "int", "context (k tok)", "Workload.initial_context_tokens", 0, 150, 1, 1000.0, group="work"),
    Control(
        "memory_gb",
        "log",
        "cache GB/replica",
        "connection-cache budget per API replica",
        0.01,
        256.0,
        0.05,
        fmt=".2f",
        tooltip="memory one API replica gives to connection caches",
        group="fleet",
    ),
    Control(
        "sockets",
        "log",
        "sockets/replica",
        "open WebSocket connections per API replica",
        10.0,
        100_000.0,
        0.05,
        fmt=".0f",
        group="fleet",
    ),
    Control("replicas", "int", "replicas", "Profile.replicas (HTTP)", 1, 16, group="fleet"),
    Control(
        "routing",
        "choice",
        "routing",
        "Profile.routing (HTTP)",
        options=(("sticky", "sticky"), ("random", "random")),
        group="fleet",
    ),
    Control(
        "workload",
        "choice",
        "workload",
        "the rollout's Workload",
        tooltip="a workload preset or an imported session (anything with a name and turn_specs)",
        group="fleet",
    ),
    Control(
        "strategy",
        "choice",
        "strategy",
        "the preset the mechanism checkboxes start from",
        tooltip="a preset is a named set of mechanisms; the checkboxes show and change them",
        group="fleet",
    ),
    *(_mechanism_control(m) for m in MECHANISMS),
)
#: Controls that others follow: a preset sets its mechanisms, a workload its size sliders.
LEADERS = ("workload", "strategy")
CONTROL_BY_NAME: dict[str, Control] = {c.name: c for c in CONTROLS}


@dataclass(frozen=True)
class WhatIf:
    """The dashboard's inputs, in model units."""

    tps: float
    api_scale: float
    hop_latency_s: float
    hops: int
    tool_s: float
    turns: int
    context_tokens: int
    memory_bytes: float
    sockets: float
    replicas: int
    routing: str
    strategy: str
    mechanisms: frozenset[str] = field(default_factory=frozenset)
    workload: str = ""


# -- strategies as sets of mechanisms ----------------------------------------------------------------------------


#: The preset each mechanism's "on" values come from (the story's first preset with it in the form the post shipped).
ON_SOURCE: dict[str, str] = {
    "rendered_token_cache": "http_optimized",
    "config_cache": "http_optimized",
    "fewer_hops": "http_optimized",
    "faster_safety": "http_optimized",
    "incremental_input": "websocket",
    "connection_cache": "websocket",
    "post_off_critical_path": "websocket",
    "sampling_loop": "websocket_prototype",
    "service_costs": "ideal",
}


def mechanism_values(m: Mechanism, presets: Mapping[str, Profile], on: bool) -> dict[str, Any]:
    """The field values that switch ``m`` on (from its :data:`ON_SOURCE` preset, or ``True`` for a switch no
    preset uses) or off (the baseline's; for a switch the baseline already has, its opposite)."""
    base = presets[BASELINE]
    if on:
        src = ON_SOURCE.get(m.name)
        if src is not None and src in presets:
            return {f: getattr(presets[src], f) for f in m.fields}
        return {f: True if isinstance(getattr(base, f), bool) else getattr(base, f) for f in m.fields}
    off = {f: getattr(base, f) for f in m.fields}
    if all(isinstance(v, bool) and v for v in off.values()):
        off = {f: False for f in off}
    return off


def mechanisms_of(profile: Profile, presets: Mapping[str, Profile]) -> frozenset[str]:
    """The mechanisms ``profile`` has in some form: a field differs from the off-values (the connection cache
    only with ``chaining='connection'``: store chaining is not it)."""
    out = set()
    for m in MECHANISMS:
        if m.name == "connection_cache":
            has = profile.chaining == "connection"
        else:
            has = any(getattr(profile, f) != v for f, v in mechanism_values(m, presets, False).items())
        if has:
            out.add(m.name)
    return frozenset(out)


def strategy_profile(preset: str, mechanisms: frozenset[str], presets: Mapping[str, Profile]) -> Profile:
    """The preset with the mechanisms whose checkbox differs from it switched on or off."""
    p = presets[preset]
    have = mechanisms_of(p, presets)
    changes: dict[str, Any] = {}
    for m in MECHANISMS:
        want = m.name in mechanisms
        if want != (m.name in have):
            changes.update(mechanism_values(m, presets, want))
    if not changes:
        return p
    # A connection cache without a WebSocket cannot exist: its group carries the transport.
    return p.with_(name=CUSTOM, **changes)


def scenario_profiles(base: Mapping[str, Profile], v: WhatIf) -> dict[str, Profile]:
    """Every profile under the dashboard's inputs.

    ``hops`` is the baseline's hop count; a preset that removed hops keeps its smaller count (never more than
    the slider). Replicas and routing apply to HTTP profiles only: a WebSocket stays on one replica.
    """
    ref_hops = base[BASELINE].hops if BASELINE in base else max(p.hops for p in base.values())
    out = {}
    for name, p in base.items():
        hops = v.hops if p.hops >= ref_hops else min(p.hops, v.hops)
        kw: dict[str, Any] = {"decode_tps": v.tps, "hop_latency_s": v.hop_latency_s, "hops": hops}
        if p.transport == "http":
            kw.update(replicas=v.replicas, routing=v.routing)
        q = p.with_(**kw)
        out[name] = scaled(q, v.api_scale) if v.api_scale != 1.0 else q
    return out


# -- the dashboard ---------------------------------------------------------------------------------------------------


#: Where the page keeps plotly's widget module once it is loaded (a registry shared by every figure of the page).
_PLOTLY_KEY = "labkit.plotly-widget"
#: The model attributes that carry plotly's Python-to-page messages (``plotly.basewidget``): set, then None.
_PY2JS = (
    "_py2js_addTraces",
    "_py2js_deleteTraces",
    "_py2js_moveTraces",
    "_py2js_restyle",
    "_py2js_relayout",
    "_py2js_update",
    "_py2js_animate",
    "_py2js_removeLayoutProps",
    "_py2js_removeTraceProps",
)


#: The page-wide registry of plotly's module, in JavaScript: one promise every figure of the page waits on.
_SLOT_JS = """
const KEY = Symbol.for('__KEY__');
function slot() {
  if (!globalThis[KEY]) {
    const s = {
      started: false, wanted: false, load: null, figures: new Map(), views: new Map(), queues: new Map(), lastInit: 0,
    };
    s.module = new Promise((resolve, reject) => { s.resolve = resolve; s.reject = reject; });
    globalThis[KEY] = s;
  }
  return globalThis[KEY];
}
// Every widget model of the dashboard marks its initialization; plotly's module is evaluated once none has
// initialized for QUIET_MS, since its evaluation holds the page for seconds under load and anywidget gives each
// model 2 s to initialize ("[anywidget] Failed to initialize model.").
const QUIET_MS = 400;
function initialized() { slot().lastInit = performance.now(); }
""".replace("__KEY__", _PLOTLY_KEY)


class FitWidth(anywidget.AnyWidget):
    """Tells the plots of its box to size themselves to the box whenever the box's width changes.

    A plot draws at its container's width when it first renders; in JupyterLab that happens before the output is
    attached, so plotly falls back to 700 px. The figures are ``responsive`` (they resize on a window ``resize``
    event); this widget watches its box with a ``ResizeObserver`` and fires that event when the width changes.
    Its initialization counts as one of the dashboard's for when plotly's module may be evaluated (``QUIET_MS``).
    """

    _esm = (
        _SLOT_JS
        + """
export default { initialize() { initialized(); }, render({ el }) {
  const box = () => el.closest('.lk-dashboard') || el.parentElement || el;
  let last = 0;
  const ro = new ResizeObserver(() => {
    const w = box().getBoundingClientRect().width;
    if (w > 0 && Math.abs(w - last) > 1) { last = w; window.dispatchEvent(new Event('resize')); }
  });
  requestAnimationFrame(() => ro.observe(box()));
  return () => ro.disconnect();
} }
"""
    )


class PlotlyModule(anywidget.AnyWidget):
    """plotly's ``FigureWidget`` front end (its ~5 MB module), sent to the page once for every
    :class:`SharedFigureWidget`.

    A plain ``FigureWidget`` carries the module as its ``_esm``: three figures send it three times, the page
    imports it three times, and anywidget rejects a model that takes over 2 s to initialize (``[anywidget]
    Failed to initialize model.``). Here the module is an ordinary synced string; this widget's own module is a
    few lines that import it once into a page-wide registry when a figure is first drawn, and return at once
    (nothing waits on the import). The import also drops the state echo (see :class:`SharedFigureWidget`).
    The same module carries the dashboard's figure edits: one custom message per change, applied in order per
    figure (see the page code's comments).
    """

    _esm = (
        _SLOT_JS
        + """
// A change's edits of every figure arrive as one message. Each edit is set on its figure's model as plotly's own
// Python-to-page message (then cleared), so plotly's handlers apply it to the model (for views made later) and to
// every view: a data edit as an animate without transition or redraw (traces only), anything else as an update
// (a full redraw, at once). An update does not wait for an animate plotly.js still holds (it runs one per
// animation frame), which would then overwrite it with older data: so a figure's edits wait while any of its
// views is animating, and data edits that wait are merged (the later values win).
const NO_TRANSITION = {mode: 'immediate', transition: {duration: 0}, frame: {duration: 0, redraw: false}};
function animating(key) {
  for (const gd of slot().views.get(key) || []) {
    const t = gd._transitionData;
    if (t && (t._animationRaf || (t._frameQueue && t._frameQueue.length))) return true;
  }
  return false;
}
function merged(a, b) {
  const byTrace = new Map();
  a.traces.forEach((t, i) => byTrace.set(t, {...a.styles[i]}));
  b.traces.forEach((t, i) => byTrace.set(t, {...(byTrace.get(t) || {}), ...b.styles[i]}));
  return {...b, traces: [...byTrace.keys()], styles: [...byTrace.values()]};
}
function send(fig, e) {
  let name, msg;
  if (e.redraw) {
    const style = {};
    for (const p of new Set(e.styles.flatMap(Object.keys))) style[p] = e.styles.map(st => st[p]);
    name = '_py2js_update';
    msg = {style_data: style, layout_data: e.layout, style_traces: e.traces};
  } else {
    name = '_py2js_animate';
    msg = {style_data: e.styles, layout_data: {}, style_traces: e.traces, animation_opts: NO_TRANSITION};
  }
  fig.set(name, msg);
  fig.set(name, null);
}
function drain(key) {
  const s = slot();
  const queue = s.queues.get(key);
  const fig = s.figures.get(key);
  while (queue.length) {
    if (animating(key)) { requestAnimationFrame(() => drain(key)); return; }
    let e = queue.shift();
    while (!e.redraw && queue.length && !queue[0].redraw) e = merged(e, queue.shift());
    if (fig) send(fig, e);
  }
}
function applyEdits(msg) {
  if (!msg || msg.kind !== 'labkit.plot-edits') return;
  const s = slot();
  for (const [key, edit] of msg.edits) {
    if (!s.queues.has(key)) s.queues.set(key, []);
    const queue = s.queues.get(key);
    queue.push(edit);
    if (queue.length === 1) drain(key);
  }
}
export default { initialize({ model }) {
  const s = slot();
  model.on('msg:custom', applyEdits);
  initialized();
  if (s.load) return;
  // Evaluating the 5 MB module holds the page for a while: it starts when a figure is first drawn and the
  // dashboard's widget models have initialized (see QUIET_MS).
  s.load = () => {
    if (s.started) return;
    const wait = s.lastInit + QUIET_MS - performance.now();
    if (wait > 0) { setTimeout(s.load, wait); return; }
    s.started = true;
    const url = URL.createObjectURL(new Blob([model.get('bundle')], {type: 'text/javascript'}));
    import(url).then(mod => {
      URL.revokeObjectURL(url);
      // After every update a view sends the whole plot state back (trace and layout deltas, ~68 KB a step
      // for the dashboard) for Python to learn plotly.js's defaults; the dashboard never reads them.
      mod.FigureView.prototype._sendTraceDeltas = function () {};
      mod.FigureView.prototype._sendLayoutDelta = function () {};
      s.resolve(mod);
    }, err => { URL.revokeObjectURL(url); s.reject(err); });
  };
  if (s.wanted) s.load();
} }
"""
    )
    bundle = traitlets.Unicode("").tag(sync=True)


_MODULE: PlotlyModule | None = None


def plotly_module() -> PlotlyModule:
    """The kernel's one :class:`PlotlyModule` (created on first use, with plotly's installed widget module)."""
    global _MODULE
    if _MODULE is None or _MODULE.comm is None:
        from plotly.basewidget import BaseFigureWidget

        _MODULE = PlotlyModule(bundle=str(BaseFigureWidget._esm))
    return _MODULE


class SharedFigureWidget(go.FigureWidget):
    """A plotly ``FigureWidget`` whose page side is plotly's own, loaded once by :class:`PlotlyModule`.

    Same Python API and messages as ``FigureWidget``; only the ``_esm`` differs: a small module that waits for
    the shared one. Its ``initialize`` returns at once (anywidget's 2 s budget). Python's messages that arrive
    before the first view exists are replayed to that view (plotly's model-side handlers change only copies of
    the state, and replaying into the model before a view existed broke its x data in our runs); a new full
    state, sent when the dashboard is displayed, supersedes them. Views send no plot state back after an update
    (the figures are driven from Python); user zooms and clicks still reach Python as with ``FigureWidget``.
    """

    _esm = (
        _SLOT_JS
        + """
const PY2JS = __PY2JS__;
export default () => {
  let ready;
  let early = [];
  let listeners = null;
  let source = null;
  return {
    initialize({ model }) {
      initialized();
      source = model;
      slot().figures.set(model.get('_lk_key'), model);
      model.on('change:_widget_data', () => { early = []; });
      listeners = PY2JS.map(name => {
        const f = () => { const v = model.get(name); if (v !== null && v !== undefined) early.push([name, v]); };
        model.on('change:' + name, f);
        return [name, f];
      });
      ready = slot().module.then(mod => {
        const widget = mod.default();
        widget.initialize({ model });
        return widget;
      });
    },
    async render({ model, el }) {
      const s = slot();
      if (s.load) s.load(); else s.wanted = true;
      const widget = await ready;
      const cleanup = widget.render({ model, el });
      // plotly draws into el: the page's edits look at it to know when the figure is animating.
      const key = model.get('_lk_key');
      if (!s.views.has(key)) s.views.set(key, new Set());
      s.views.get(key).add(el);
      if (listeners) {
        for (const [name, f] of listeners) source.off('change:' + name, f);
        listeners = null;
        const replay = early;
        early = [];
        for (const [name, v] of replay) { source.set(name, v); source.set(name, null); }
      }
      return () => { s.views.get(key).delete(el); if (cleanup) cleanup(); };
    },
  };
};
""".replace("__PY2JS__", json.dumps(list(_PY2JS)))
    )
    #: The figure's name in the page's registry, for edits that reach it through :class:`PlotlyModule`.
    _lk_key = traitlets.Unicode("").tag(sync=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lk_edits: list[dict[str, Any]] | None = None

    @traitlets.default("_lk_key")
    def _default_key(self) -> str:
        return uuid.uuid4().hex

    @contextmanager
    def collect_edit(self) -> Iterator[list[dict[str, Any]]]:
        """A ``batch_update`` whose message is collected, not sent: the list holds plotly's update (restyle,
        relayout, trace indexes) once the block ends, for the caller to send with other figures' edits."""
        edits: list[dict[str, Any]] = []
        self._lk_edits = edits
        try:
            with self.batch_update():
                yield edits
        finally:
            self._lk_edits = None

    def _send_update_msg(
        self,
        restyle_data: dict[str, Any],
        relayout_data: dict[str, Any],
        trace_indexes: Any = None,
        source_view_id: str | None = None,
    ) -> None:
        if self._lk_edits is None or source_view_id is not None:
            super()._send_update_msg(restyle_data, relayout_data, trace_indexes, source_view_id)
            return
        self._lk_edits.append(
            {
                "restyle": restyle_data,
                "relayout": relayout_data,
                "traces": self._normalize_trace_indexes(trace_indexes),
            }
        )


# Readouts wide enough for "4000" or "100000" so a number never runs into the next control.
_CSS = (
    "<style>.lk-dashboard .widget-readout { min-width: 56px; }"
    " .lk-dashboard .slider-container { flex: 1 1 60px; min-width: 60px; }</style>"
)


def _load_presets(strategy: str) -> dict[str, Profile]:
    """Every profile preset; ``ValueError`` when the baseline is missing or ``strategy`` is not a preset."""
    presets = {name: load_profile(name) for name in preset_names()}
    if BASELINE not in presets:
        raise ValueError(f"profile: the presets must include {BASELINE!r}")
    if strategy not in presets:
        raise ValueError(f"strategy: unknown preset {strategy!r}; known: {', '.join(presets)}")
    return presets


def _load_workloads(workload: str | WorkloadLike) -> tuple[dict[str, WorkloadLike], str]:
    """The workload presets plus ``workload`` when it is an object (an imported session), and its name."""
    workloads: dict[str, WorkloadLike] = {n: load_workload(n) for n in workload_names()}
    if isinstance(workload, str):
        if workload not in workloads:
            raise ValueError(f"workload: unknown {workload!r}; known: {', '.join(workloads)}")
        return workloads, workload
    if not (hasattr(workload, "name") and callable(getattr(workload, "turn_specs", None))):
        raise ValueError("workload: needs a name and turn_specs()")
    workloads[str(workload.name)] = workload
    return workloads, str(workload.name)


class Dashboard:
    """The what-if dashboard: display ``.widget`` (or the object itself), move controls, export figures.

    ``set(tps=..., ...)`` changes several controls with one redraw and returns its duration in seconds.
    ``figures`` maps names to the live ``FigureWidget``s; ``controls`` names to widgets (see :data:`CONTROLS`).
    """

    def __init__(
        self,
        workload: str | WorkloadLike = "codex_bugfix",
        strategy: str = "websocket",
        tps: float = 1000.0,
        export_dir: str | Path = "figures/what_if",
        export_formats: Sequence[str] = FORMATS,
    ) -> None:
        self.base_profiles = _load_presets(strategy)
        CONTROL_BY_NAME["tps"].check(tps)
        self.workloads, wname = _load_workloads(workload)
        self.export_dir = Path(export_dir)
        self.export_formats = tuple(export_formats)
        self.redraws = 0
        self.last_redraw_s = math.nan
        self.headline = ""
        self.forecasts: dict[str, RolloutForecast] = {}
        self._hold = False
        self._sent: dict[tuple[str, str, str], Any] = {}
        self._tops: dict[str, float] = {}
        self.options = {
            "workload": [(n, n) for n in self.workloads],
            "strategy": [(label(n), n) for n in self.base_profiles],
        }
        self.controls: dict[str, W.ValueWidget] = {
            c.name: c.widget(value, self.options.get(c.name))
            for c, value in zip(CONTROLS, self._initial_values(wname, strategy, tps).values(), strict=True)
        }
        self._sync_workload_controls()
        v = self.values
        fcs = self.compute(v)
        # plotly's page module travels once, before the figures that wait for it; it also carries their edits.
        self.plotly_module = plotly_module()
        self.figures: dict[str, Any] = self._build_figures(v, fcs)
        self.finding = W.HTML(value="")
        self.finding.add_class("lk-finding")
        self._draw(v, fcs)
        self.export_button = W.Button(
            description="export figures", icon="download", tooltip="write the current figures (HTML, PNG, SVG, PDF)"
        )
        self.export_output = W.HTML(value="")
        self.export_button.on_click(lambda _button: self.export())
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = self._layout()

    def _initial_values(self, wname: str, strategy: str, tps: float) -> dict[str, Any]:
        """Every control's starting value, in the order of :data:`CONTROLS`: the baseline's network, the
        workload's size, the strategy's mechanisms."""
        base = self.base_profiles[BASELINE]
        initial: dict[str, Any] = {
            "tps": tps,
            "api_scale": 1.0,
            "hop_latency_ms": base.hop_latency_s * 1e3,
            "hops": base.hops,
            "memory_gb": 10.0,
            "sockets": 1000.0,
            "replicas": base.replicas,
            "routing": base.routing,
            "workload": wname,
            "strategy": strategy,
            **self._workload_values(self.workloads[wname]),
        }
        have = mechanisms_of(self.base_profiles[strategy], self.base_profiles)
        initial.update({m.name: m.name in have for m in MECHANISMS})
        return {c.name: initial[c.name] for c in CONTROLS}

    def _build_figures(self, v: WhatIf, fcs: Mapping[str, RolloutForecast]) -> dict[str, SharedFigureWidget]:
        """The three live figures, each built once by its builder and wrapped; ``_uids`` addresses their traces.

        A FigureWidget built from a complete figure carries its data in its initial state (traces added later
        travel as messages a front end that is still loading may miss).
        """
        names = [n for n in self.base_profiles if n in fcs] + ([CUSTOM] if CUSTOM in fcs else [])
        every = [*self.base_profiles, CUSTOM]
        figs = {
            "speedup": speedup_over_tps(
                self._curve_frame(fcs, v, every), current_tps=v.tps, highlight=self._selected(names)
            ),
            "breakdown": stage_breakdown(self._breakdown_input(fcs, names), keep_empty=True),
            "e2e": e2e_by_transport({n: fcs[n] for n in names}, horizontal=True),
        }
        widgets = {}
        for name, fig in figs.items():
            self._fit(name, fig)
            widgets[name] = fw = SharedFigureWidget(fig)
            fw._config = {**fw._config, "responsive": True, "displaylogo": False}
        # A FigureWidget gives its traces fresh uids; keep the builders' (stage, scenario, metric) as the address.
        self._uids = {
            name: dict(zip((t.uid for t in figs[name].data), widgets[name].data, strict=True)) for name in figs
        }
        return widgets

    # -- layout -------------------------------------------------------------------------------------------------

    def _layout(self) -> W.Box:
        c = self.controls
        # Grids that wrap to the output area's width: nothing is cut off in a narrow notebook column.
        sliders = W.GridBox(
            [c[k.name] for k in CONTROLS if k.group != "mechanisms"],
            layout=W.Layout(
                width="100%", grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))", grid_gap="2px 18px"
            ),
        )
        checks = W.GridBox(
            [c[m.name] for m in MECHANISMS],
            layout=W.Layout(
                width="100%", grid_template_columns="repeat(auto-fill, minmax(250px, 1fr))", grid_gap="0 12px"
            ),
        )
        header = W.HTML(
            value=_CSS + "<b>What if?</b> Closed-form model of one rollout per strategy. A strategy is a preset or "
            "your own set of mechanisms (checkboxes); every change redraws the figures below."
        )
        box = W.VBox(
            [
                header,
                sliders,
                W.HTML(value="<b>mechanisms of the selected strategy</b>"),
                checks,
                self.finding,
                # One figure a row, each as wide as the output area: a plot autosizes to its container when
                # it is first drawn, and a full-width row always has a width by then (a grid cell may not).
                self.figures["speedup"],
                self.figures["e2e"],
                self.figures["breakdown"],
                W.HBox([self.export_button, self.export_output]),
                FitWidth(),
                # Draws nothing; in the box so that any front end showing the dashboard creates its model.
                self.plotly_module,
            ],
            layout=W.Layout(width="100%"),
        )
        box.add_class("lk-dashboard")
        return box

    @staticmethod
    def _fit(name: str, fig: go.Figure) -> None:
        """Let the figure take its output area's width; keep legends and labels inside it."""
        fig.update_layout(width=None, autosize=True, margin={"l": 64, "r": 16, "t": 48, "b": 40})
        if name == "speedup":
            fig.update_layout(
                height=330,
                legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0, "font": {"size": 12}},
                title=None,
                margin={"t": 56},
            )
        elif name == "breakdown":
            fig.update_layout(
                height=420,
                title={"text": "Time per rollout by stage", "font": {"size": 15}},
                legend={"font": {"size": 11}},
            )
        else:
            fig.update_layout(height=300, title={"text": "End to end per strategy", "font": {"size": 15}})
            fig.update_yaxes(tickfont={"size": 12})
            fig.update_traces(textfont={"size": 12})

    # -- display ------------------------------------------------------------------------------------------------

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

    # -- inputs -------------------------------------------------------------------------------------------------

    @property
    def workload(self) -> WorkloadLike:
        return self.workloads[str(self.controls["workload"].value)]

    @staticmethod
    def _workload_values(w: WorkloadLike) -> dict[str, Any]:
        if isinstance(w, Workload):
            return {
                "tool_s": min(5.0, w.tool_time_median_s),
                "turns": min(300, w.turns),
                "context_k": min(150, round(w.initial_context_tokens / 1000)),
            }
        specs = w.turn_specs()
        return {
            "tool_s": 0.0,
            "turns": min(300, len(specs)),
            "context_k": min(150, specs[0].conversation_tokens // 1000),
        }

    def _sync_workload_controls(self) -> None:
        # An imported session is taken as it is: its size sliders only show it.
        editable = isinstance(self.workload, Workload)
        for name in ("tool_s", "turns", "context_k"):
            self.controls[name].disabled = not editable

    @property
    def values(self) -> WhatIf:
        c = {k: w.value for k, w in self.controls.items()}
        return WhatIf(
            tps=float(c["tps"]),
            api_scale=float(c["api_scale"]),
            hop_latency_s=float(c["hop_latency_ms"]) * 1e-3,
            hops=int(c["hops"]),
            tool_s=float(c["tool_s"]),
            turns=int(c["turns"]),
            context_tokens=int(c["context_k"]) * 1000,
            memory_bytes=float(c["memory_gb"]) * 1e9,
            sockets=float(c["sockets"]),
            replicas=int(c["replicas"]),
            routing=str(c["routing"]),
            strategy=str(c["strategy"]),
            mechanisms=frozenset(m.name for m in MECHANISMS if c[m.name]),
            workload=str(c["workload"]),
        )

    def set(self, **values: Any) -> float:
        """Set controls by name (see :data:`CONTROLS`) with a single redraw.

        Returns when the figures hold the new data, with the redraw's duration in seconds. Values outside a
        control's range raise ``ValueError`` (a slider would silently clamp them). Setting ``strategy`` sets the
        mechanism checkboxes to the preset's, unless the same call sets them too.
        """
        for name, v in values.items():
            if name not in CONTROL_BY_NAME:
                raise ValueError(f"{name}: unknown control; known: {', '.join(self.controls)}")
            CONTROL_BY_NAME[name].check(v, self.options.get(name))
        self._hold = True
        try:
            # Leaders first, so a call that sets a preset and some of its checkboxes keeps the checkboxes it set.
            for name in sorted(values, key=lambda k: k not in LEADERS):
                self.controls[name].value = values[name]
                if name in LEADERS:
                    self._follow(name)
        finally:
            self._hold = False
        return self.redraw()

    def _follow(self, name: str) -> None:
        """Controls that follow another: a preset sets its mechanisms, a workload its size sliders."""
        if name == "strategy":
            have = mechanisms_of(self.base_profiles[str(self.controls["strategy"].value)], self.base_profiles)
            for m in MECHANISMS:
                self.controls[m.name].value = m.name in have
        elif name == "workload":
            self._sync_workload_controls()
            for k, v in self._workload_values(self.workload).items():
                self.controls[k].value = v

    def _on_change(self, change: Mapping[str, Any]) -> None:
        if self._hold:
            return
        owner = change.get("owner")
        name = next((k for k, w in self.controls.items() if w is owner), None)
        if name in LEADERS:
            self._hold = True
            try:
                self._follow(name)
            finally:
                self._hold = False
        self.redraw()

    # -- model ----------------------------------------------------------------------------------------------------

    def _work(self, v: WhatIf) -> WorkloadLike:
        w = self.workloads.get(v.workload) or self.workload
        if isinstance(w, Workload):
            return w.with_(turns=v.turns, initial_context_tokens=v.context_tokens, tool_time_median_s=v.tool_s)
        return w

    def profiles(self, v: WhatIf | None = None) -> dict[str, Profile]:
        """Every preset, and the selected strategy as switched by the checkboxes (``custom`` when it differs)."""
        v = v or self.values
        chosen = strategy_profile(v.strategy, v.mechanisms, self.base_profiles)
        base = dict(self.base_profiles)
        if chosen.name == CUSTOM:
            base[CUSTOM] = chosen
        return scenario_profiles(base, v)

    def compute(self, v: WhatIf | None = None) -> dict[str, RolloutForecast]:
        """Closed-form forecasts of every profile under the inputs ``v`` (default: the controls'); connection
        caches that do not fit the memory budget miss, and a miss resends the full context."""
        v = v or self.values
        w = self._work(v)
        out = {}
        for name, p in self.profiles(v).items():
            # The lower bound stays one: it pays no API cost, memory included.
            if name == "ideal":
                out[name] = forecast(p, w)  # type: ignore[arg-type]
            else:
                out[name] = forecast_under_budget(p, w, v.memory_bytes, v.sockets)
        return out

    # -- figures ----------------------------------------------------------------------------------------------------

    def _selected(self, names: Sequence[str]) -> str:
        return CUSTOM if CUSTOM in names else str(self.controls["strategy"].value)

    def _curve_frame(self, fcs: Mapping[str, RolloutForecast], v: WhatIf, names: Sequence[str]) -> pd.DataFrame:
        base = fcs[BASELINE]
        rows = []
        for n in names:
            fc = fcs.get(n, base)
            for t, s in zip(CURVE_TPS, speedup_curve(fc, base, v.tps, CURVE_TPS), strict=True):
                rows.append({"scenario": n, "tps": float(t), "speedup": float(s)})
        return pd.DataFrame(rows)

    def _breakdown_input(self, fcs: Mapping[str, RolloutForecast], names: Sequence[str]) -> dict[str, RolloutForecast]:
        sel = self._selected(names)
        shown = [BASELINE] if sel == BASELINE else [BASELINE, sel]
        return {n: fcs.get(n, fcs[BASELINE]) for n in shown}

    def redraw(self) -> float:
        """Recompute and update every figure in place; returns the seconds it took."""
        t0 = time.perf_counter()
        v = self.values
        self._draw(v, self.compute(v))
        self.redraws += 1
        self.last_redraw_s = time.perf_counter() - t0
        return self.last_redraw_s

    def _put(self, fig: str, uid: str, prop: str, value: Any) -> None:
        """Assign a trace property only when it changed: unchanged traces send nothing to the page."""
        key = (fig, uid, prop)
        old = self._sent.get(key)
        if old is not None and _same(old, value):
            return
        self._sent[key] = value
        trace = self._uids[fig][uid]
        if "." in prop:
            outer, inner = prop.split(".", 1)
            getattr(trace, outer)[inner] = value
        else:
            trace[prop] = value

    def _draw(self, v: WhatIf, fcs: dict[str, RolloutForecast]) -> None:
        """Put the forecasts into the figures and the finding; the figures' edits go to the page as one message."""
        self.forecasts = fcs
        sel = CUSTOM if CUSTOM in fcs else v.strategy
        shown = [n for n in [*self.base_profiles, CUSTOM] if n in fcs]
        now = {n: fcs[BASELINE].e2e_s / fcs[n].e2e_s for n in shown}
        edits = []
        for name, draw in (
            ("speedup", lambda: self._draw_speedup(v, fcs, sel, now)),
            ("breakdown", lambda: self._draw_breakdown(fcs, sel)),
            ("e2e", lambda: self._draw_e2e(fcs, sel, shown)),
        ):
            fig = self.figures[name]
            with fig.collect_edit() as collected:
                draw()
            edits += [[fig._lk_key, _edit_message(fig, e)] for e in collected]
        if edits:
            self.plotly_module.send({"kind": "labkit.plot-edits", "edits": edits})
        self._write_finding(v, fcs, sel, now[sel])

    def _axis_top(self, fig: str, need: float) -> float:
        """The value axis's upper end: kept while the data need at least 1/1.6 of it, else a round number
        above ``need``. A step that keeps every axis is a pure data change, which the page redraws cheaply."""
        old = self._tops.get(fig)
        if old is not None and need <= old <= need * AXIS_SLACK:
            return old
        top = _round_up(need)
        self._tops[fig] = top
        return top

    def _set_range(self, axis: Any, top: float) -> None:
        if axis.range is None or tuple(axis.range) != (0, top):
            axis.range = [0, top]

    def _draw_speedup(self, v: WhatIf, fcs: Mapping[str, RolloutForecast], sel: str, now: dict[str, float]) -> None:
        base = fcs[BASELINE]
        shown = list(now)
        need = max(now.values())
        for n in [*self.base_profiles, CUSTOM]:
            if n in fcs:
                curve = speedup_curve(fcs[n], base, v.tps, CURVE_TPS).round(5)
                need = max(need, float(curve.max()))
                self._put("speedup", n, "y", curve.tolist())
            self._put("speedup", n, "visible", n in fcs)
            self._put("speedup", n, "line.width", 4 if n == sel else 2)
        top = self._axis_top("speedup", need * 1.08)
        self._put("speedup", "current_tps", "x", [v.tps, v.tps])
        self._put("speedup", "current_tps", "y", [0.0, top])
        self._put("speedup", "at_current_tps", "x", [v.tps] * len(shown))
        self._put("speedup", "at_current_tps", "y", [round(now[n], 5) for n in shown])
        self._put("speedup", "at_current_tps", "marker.color", [_color(n) for n in shown])
        self._put("speedup", "at_current_tps", "text", [f"{now[n]:.2f}×" if n == sel else "" for n in shown])
        self._set_range(self.figures["speedup"].layout.yaxis, top)

    def _draw_breakdown(self, fcs: Mapping[str, RolloutForecast], sel: str) -> None:
        bars = [BASELINE] if sel == BASELINE else [BASELINE, sel]
        xs = [label(n) for n in bars]
        for stage in STAGES:
            ys = [round(fcs[n].stage_s[stage], 6) for n in bars]
            self._put("breakdown", stage, "x", xs)
            self._put("breakdown", stage, "y", ys)
            # Stages that cost nothing in either bar stay out of the legend.
            self._put("breakdown", stage, "showlegend", any(y > 1e-9 for y in ys))
        need = max(sum(fcs[n].stage_s[stage] for stage in STAGES) for n in bars) * 1.05
        self._set_range(self.figures["breakdown"].layout.yaxis, self._axis_top("breakdown", need))

    def _draw_e2e(self, fcs: Mapping[str, RolloutForecast], sel: str, shown: Sequence[str]) -> None:
        base = fcs[BASELINE]
        e2e = [fcs[n].e2e_s for n in shown]
        self._put("e2e", "e2e_s", "y", [label(n) for n in shown])
        self._put("e2e", "e2e_s", "x", [round(e, 5) for e in e2e])
        self._put(
            "e2e",
            "e2e_s",
            "text",
            [
                f"{e:.1f} s" if n == BASELINE else f"{e:.1f} s ({(e / base.e2e_s - 1) * 100:+.0f}%)"
                for n, e in zip(shown, e2e, strict=True)
            ],
        )
        self._put("e2e", "e2e_s", "marker.color", [_color(n) for n in shown])
        self._put("e2e", "e2e_s", "marker.line", {"color": "#222222", "width": [3 if n == sel else 0 for n in shown]})
        # Room for the labels right of the bars.
        self._set_range(self.figures["e2e"].layout.xaxis, self._axis_top("e2e", max(e2e) * 1.45))

    def _write_finding(self, v: WhatIf, fcs: Mapping[str, RolloutForecast], sel: str, s: float) -> None:
        base = fcs[BASELINE]
        ideal = fcs.get("ideal")
        closes = ""
        if ideal is not None and base.e2e_s > ideal.e2e_s and sel != "ideal":
            gap = (base.e2e_s - fcs[sel].e2e_s) / (base.e2e_s - ideal.e2e_s)
            closes = f"; it closes {gap:.0%} of the gap to the lower bound ({label('ideal')})"
        w = self._work(v)
        # The export's title: the same sentence without markup.
        self.headline = (
            f"{label(sel)}: {s:.2f}× as fast end to end as {label(BASELINE)} at {v.tps:,.0f} tokens/s "
            f"({(1 - 1 / s) * 100:.0f}% less time)"
        )
        self.finding.value = (
            f"<b>{html.escape(label(sel))}</b> is <b>{s:.2f}×</b> as fast end to end as {label(BASELINE)} on "
            f"<code>{html.escape(w.name)}</code> at <span class='lk-tps-now'>{v.tps:,.0f}</span> tokens/s "
            f"({(1 - 1 / s) * 100:.0f}% less time){closes}."
        )

    # -- export ---------------------------------------------------------------------------------------------------

    def export(
        self, out_dir: str | Path | None = None, formats: Sequence[str] | None = None
    ) -> dict[str, dict[str, Path]]:
        """Write the current figures through :func:`labkit.viz.export_many` and show where in the dashboard."""
        out = Path(out_dir) if out_dir is not None else self.export_dir
        fmts = tuple(formats) if formats is not None else self.export_formats
        self.export_output.value = "<i>exporting…</i>"
        figs = []
        for name, fig in self.figures.items():
            f = go.Figure(fig)
            f.update_layout(width=None, height=None)  # the export helper sizes writeup figures
            if name == "speedup":
                f.update_layout(
                    title={"text": self.headline}, legend={"orientation": "v", "y": 1.0, "yanchor": "top", "x": 1.02}
                )
            figs.append((f, f"what_if_{name}"))
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


#: A value axis keeps its range while the data need at least 1/AXIS_SLACK of it (see ``Dashboard._axis_top``).
AXIS_SLACK = 1.6
#: Trace properties a data step changes. An edit of only these (no layout) is drawn by ``Plotly.animate`` with
#: ``redraw: false``: plotly.js redraws the traces and leaves axes, legend and margins as they are (a full redraw
#: of the three plots is most of a slider step's time in the page; see the figures guide).
DATA_PROPS = frozenset({"x", "y", "text"})


def _round_up(need: float) -> float:
    """The next half step of ``need``'s decade above it (37 -> 40, 4.2 -> 4.5, 0.13 -> 0.15)."""
    if not math.isfinite(need) or need <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(need))
    return math.ceil(need / mag * 2) / 2 * mag


def _plain(v: Any) -> Any:
    """A trace or layout value as JSON for a comm message (plotly objects as their JSON, arrays as lists)."""
    if hasattr(v, "to_plotly_json"):
        return _plain(v.to_plotly_json())
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray | np.generic):
        return v.tolist()
    return v


def _prop(trace: Mapping[str, Any], path: str) -> Any:
    """A trace's property from plotly's own dict of it (``"marker.line"`` walks in); reading the dict is ten
    times cheaper than through the trace object, and a message reads every trace of a stacked chart."""
    value: Any = trace
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _has_text(v: Any) -> bool:
    if isinstance(v, str):
        return True
    return isinstance(v, list | tuple) and any(_has_text(x) for x in v)


def _edit_message(fig: go.FigureWidget, edit: Mapping[str, Any]) -> dict[str, Any]:
    """One collected ``batch_update`` of ``fig`` for the page: the traces, their changed properties (current
    values), the layout changes and whether the page must redraw the whole figure.

    A pure data edit (numbers and labels of the points, no new category) redraws only traces (plotly's animate
    message, ``redraw: false``); a stacked bar chart then gets every trace, since plotly.js draws and stacks just
    the traces it is given. Any other edit (layout, categories, visibility, style) is plotly's update message, a
    full redraw (layout through an animate is applied late and lost when another animate follows at once).
    """
    restyle, relayout, traces = edit["restyle"], edit["relayout"], list(edit["traces"])
    props = set(restyle)
    # New categories (bar labels) change an axis: that is a layout change too.
    fast = not relayout and props <= DATA_PROPS and not any(_has_text(restyle.get(p)) for p in ("x", "y"))
    if fast and fig.layout.barmode in ("stack", "relative"):
        traces = list(range(len(fig.data)))
        props |= {"x", "y"}
    return {
        "traces": traces,
        "styles": [{p: _plain(_prop(fig._data[i], p)) for p in sorted(props)} for i in traces],
        "layout": _plain(relayout),
        "redraw": not fast,
    }


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) if not isinstance(a, list | np.ndarray) else bool(np.array_equal(a, b))
    except (TypeError, ValueError):
        return False


def _color(name: str) -> str:
    from labkit.viz.template import color

    return color(name)


def what_if(
    workload: str | WorkloadLike = "codex_bugfix",
    strategy: str = "websocket",
    tps: float = 1000.0,
    export_dir: str | Path = "figures/what_if",
    export_formats: Sequence[str] = FORMATS,
) -> Dashboard:
    """The what-if dashboard; a bare ``what_if()`` as the last line of a cell displays it."""
    return Dashboard(workload, strategy, tps, export_dir, export_formats)


__all__ = [
    "CONTROLS",
    "Control",
    "Dashboard",
    "WhatIf",
    "cache_hit_share",
    "mechanism_values",
    "mechanisms_of",
    "scenario_profiles",
    "speedup_curve",
    "strategy_profile",
    "what_if",
]
