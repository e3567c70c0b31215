"""Figures for a writeup: builders (DataFrames in, ``plotly.graph_objects.Figure`` out), one template, export.

>>> from labkit.viz import stage_breakdown, export
>>> export(stage_breakdown(spans), "breakdown", out_dir="figures")  # doctest: +SKIP
"""

from labkit.viz.export import FORMATS, export, export_many, find_browser, persistent_browser, publish
from labkit.viz.figures import (
    claims_region,
    column_axis,
    distribution,
    e2e_by_transport,
    fallback_cost,
    fleet_queueing,
    gain_by_mechanism,
    gantt,
    gap_closed,
    line_chart,
    overhead_vs_tps,
    prediction_vs_measurement,
    routing_effect,
    speedup_heatmap,
    speedup_over_tps,
    stage_breakdown,
    ttft_waterfall,
)
from labkit.viz.frames import (
    break_even,
    forecasts_frame,
    prediction_error,
)
from labkit.viz.template import TEMPLATE, axis_title, color, label

__all__ = [
    "FORMATS",
    "TEMPLATE",
    "axis_title",
    "break_even",
    "claims_region",
    "color",
    "column_axis",
    "distribution",
    "e2e_by_transport",
    "export",
    "export_many",
    "fallback_cost",
    "find_browser",
    "fleet_queueing",
    "forecasts_frame",
    "gain_by_mechanism",
    "gantt",
    "gap_closed",
    "label",
    "line_chart",
    "overhead_vs_tps",
    "persistent_browser",
    "prediction_error",
    "prediction_vs_measurement",
    "publish",
    "routing_effect",
    "speedup_heatmap",
    "speedup_over_tps",
    "stage_breakdown",
    "ttft_waterfall",
]
