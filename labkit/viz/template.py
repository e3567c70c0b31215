"""The one writeup template: fonts, sizes, a fixed colour per transport/profile and per stage, axis units.

Colours are fixed by name, not by trace order, so ``websocket`` is the same green in every figure of every
notebook and export. Unknown names get a colour from a stable hash, so they are consistent across runs too.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import plotly.graph_objects as go
import plotly.io as pio

from labkit.model import STAGES, stage_category

TEMPLATE_NAME = "labkit"

#: Export size in layout pixels (kaleido's batch path ignores layout width/height, so export passes these).
WIDTH = 900
HEIGHT = 520
#: Raster exports are written at this scale (crisp in a paper or on a high-DPI screen).
SCALE = 2

# Liberation Sans ships with Debian's fonts and has Arial's metrics; DejaVu Sans is the last resort.
FONT_FAMILY = "Inter, 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
FONT_SIZE = 14
TITLE_SIZE = 18
INK = "#222222"
GRID = "#e3e3e3"

#: One colour per profile preset and per transport (a colour-blind-safe set after Okabe and Ito).
SCENARIO_COLORS: dict[str, str] = {
    "http_baseline": "#D55E00",  # vermillion: the "before"
    "http_optimized": "#E69F00",  # orange: the critical-path sprint
    "http_chained": "#0072B2",  # blue: previous_response_id with store=true
    "websocket": "#009E73",  # green: WebSocket mode
    "websocket_prototype": "#56B4E9",  # sky blue: the prototype's live sampling loop
    "ideal": "#000000",  # black: the lower bound (no API work)
    "custom": "#882255",  # wine: a strategy switched mechanism by mechanism in the dashboard
    "http": "#D55E00",
    "http_stateless": "#D55E00",
    "sticky": "#0072B2",
    "random": "#CC79A7",
}
#: Data sources of a spans table.
SOURCE_COLORS: dict[str, str] = {
    "analytic": "#555555",
    "sim": "#56B4E9",
    "live": "#000000",
    "api": "#8C564B",
}
#: Stage categories: the three-way split of OpenAI's engineering post with the network carved out of API services.
CATEGORY_COLORS: dict[str, str] = {
    "network": "#8DA0CB",
    "api": "#E15759",
    "inference": "#4E79A7",
    "client": "#59A14F",
    "other": "#BAB0AC",
}
# Stages take a shade of their category's hue so a stacked bar reads by category at a glance.
_STAGE_SHADES: dict[str, tuple[str, ...]] = {
    "network": ("#c6d0ea", "#8DA0CB", "#5b6fa8"),
    "api": (
        "#f6c3c4",
        "#f09a9c",
        "#E15759",
        "#c23b3d",
        "#9d2a2c",
        "#ffae8a",
        "#f4845f",
        "#d65a31",
        "#a8431f",
    ),
    "inference": ("#c6dbef", "#4E79A7", "#2c4f78", "#6baed6"),
    "client": ("#59A14F",),
}
STAGE_COLORS: dict[str, str] = {}
for _cat, _shades in _STAGE_SHADES.items():
    _members = [s for s in STAGES if stage_category(s) == _cat]
    for _i, _stage in enumerate(_members):
        STAGE_COLORS[_stage] = _shades[_i % len(_shades)]
# The live client's coarse stages (labkit.model.spans.LIVE_STAGES).
STAGE_COLORS.update({"request": "#b07aa1", "complete": "#c9a1c0"})

_FALLBACK = ("#332288", "#117733", "#44AA99", "#88CCEE", "#DDCC77", "#CC6677", "#AA4499", "#882255")

#: Human labels for legends and axes.
LABELS: dict[str, str] = {
    "http_baseline": "HTTP baseline",
    "http_optimized": "HTTP optimized",
    "http_chained": "HTTP chained",
    "websocket": "WebSocket mode",
    "websocket_prototype": "WebSocket prototype",
    "ideal": "ideal (no API work)",
    "custom": "custom strategy",
    "network": "network",
    "api": "API services",
    "inference": "inference",
    "client": "client tools",
    "other": "other",
    "safety_in": "safety (input)",
    "safety_out": "safety (output)",
    "load_state": "load state",
}


def color(name: str) -> str:
    """The fixed colour of a scenario, transport, source, category or stage name."""
    for table in (SCENARIO_COLORS, STAGE_COLORS, CATEGORY_COLORS, SOURCE_COLORS):
        if name in table:
            return table[name]
    return _FALLBACK[zlib.crc32(name.encode()) % len(_FALLBACK)]


def known(name: str) -> bool:
    return any(name in t for t in (SCENARIO_COLORS, STAGE_COLORS, CATEGORY_COLORS, SOURCE_COLORS))


def colors_for(names: Iterable[str]) -> dict[str, str]:
    """Colours for the groups of one figure: known names keep their fixed colour; the others take palette
    colours in order, skipping those already used, so no two groups of a figure share a colour by chance."""
    names = list(dict.fromkeys(names))
    out = {n: color(n) for n in names if known(n)}
    free = [c for c in _FALLBACK if c not in out.values()] or list(_FALLBACK)
    for i, n in enumerate(n for n in names if n not in out):
        out[n] = free[i % len(free)]
    return out


def label(name: str) -> str:
    """A legend label: the known human name, else the name with underscores as spaces."""
    return LABELS.get(name, name.replace("_", " "))


def axis_title(quantity: str, unit: str) -> str:
    """``"time per rollout (s)"``: every axis names its unit (use ``"%"``, ``"×"`` or ``"count"``)."""
    if not unit:
        raise ValueError("unit: every axis needs a unit")
    return f"{quantity} ({unit})"


def _build_template() -> go.layout.Template:
    axis = {
        "showline": True,
        "linecolor": INK,
        "linewidth": 1,
        "ticks": "outside",
        "tickcolor": INK,
        "gridcolor": GRID,
        "zeroline": False,
        "title": {"standoff": 8},
        "automargin": True,
    }
    layout = go.Layout(
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": INK},
        title={"font": {"size": TITLE_SIZE}, "x": 0.0, "xanchor": "left", "xref": "paper"},
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(_FALLBACK),
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
        legend={"bgcolor": "rgba(255,255,255,0.8)", "borderwidth": 0, "font": {"size": FONT_SIZE - 1}},
        xaxis=axis,
        yaxis=axis,
        hoverlabel={"font": {"family": FONT_FAMILY}},
        bargap=0.25,
    )
    return go.layout.Template(layout=layout)


TEMPLATE = _build_template()
pio.templates[TEMPLATE_NAME] = TEMPLATE


def styled(fig: go.Figure, title: str, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """Apply the template, a title and the axis titles (which must carry units, see :func:`axis_title`)."""
    fig.update_layout(template=TEMPLATE, title={"text": title})
    if x_title is not None:
        fig.update_xaxes(title_text=x_title)
    if y_title is not None:
        fig.update_yaxes(title_text=y_title)
    return fig


__all__ = [
    "CATEGORY_COLORS",
    "FONT_FAMILY",
    "HEIGHT",
    "LABELS",
    "SCALE",
    "SCENARIO_COLORS",
    "SOURCE_COLORS",
    "STAGE_COLORS",
    "TEMPLATE",
    "TEMPLATE_NAME",
    "WIDTH",
    "axis_title",
    "color",
    "colors_for",
    "label",
    "styled",
]
