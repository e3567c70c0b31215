"""Figures fit a 1,280 px window: no builder fixes a width wider than that; wide figures fill their container on
screen and ask for their width only in static exports."""

from __future__ import annotations

from labkit.model import load_workload
from labkit.sim.sweep import forecast_sweep
from labkit.viz import figures as viz
from labkit.viz.export import EXPORT_WIDTH, _size

SCREEN = 1280


def test_four_panel_heatmap_fills_its_container_and_exports_wide() -> None:
    presets = ["http_baseline", "http_optimized", "http_chained", "websocket", "websocket_prototype"]
    df = forecast_sweep(presets, load_workload("fast_test"), tps=[65, 1000], turns=[3, 6])
    fig = viz.speedup_heatmap(df)
    panels = df["scenario"].nunique() - 1  # the baseline against itself is left out
    assert panels >= 4
    assert fig.layout.width is None or fig.layout.width <= SCREEN
    assert fig.layout.meta[EXPORT_WIDTH] > SCREEN  # four panels need more than the screen in a static image
    assert _size(fig, None, None)[0] == fig.layout.meta[EXPORT_WIDTH]
    assert _size(fig, 900, 500) == (900, 500)
