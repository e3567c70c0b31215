"""labkit.viz.dashboard in Python: sliders redraw the same FigureWidgets in place, from the closed form."""

from __future__ import annotations

import json

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import pytest

from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast
from labkit.viz import find_browser
from labkit.viz.dashboard import TPS_MAX, TPS_MIN, Dashboard, scenario_profiles, speedup_curve, what_if


def _data(fig: go.FigureWidget) -> str:
    return json.dumps(fig.to_plotly_json()["data"], sort_keys=True, default=str)


def _snapshot(d: Dashboard) -> dict[str, str]:
    return {name: _data(fig) for name, fig in d.figures.items()}


def _sliders(widget: W.Widget) -> list[W.Widget]:
    """Every slider in DOM order (depth first through boxes)."""
    out: list[W.Widget] = []
    if isinstance(widget, W.Box):
        for child in widget.children:
            out.extend(_sliders(child))
    elif "Slider" in type(widget).__name__:
        out.append(widget)
    return out


@pytest.fixture
def dash(tmp_path) -> Dashboard:
    return what_if(workload="fast_test", export_dir=tmp_path / "exports", export_formats=("html",))


def test_layout_tps_slider_first_and_one_plot_per_figure(dash):
    first = _sliders(dash.widget)[0]
    assert isinstance(first, W.FloatLogSlider)
    assert first.description == "decode TPS"
    assert 10**first.min == pytest.approx(TPS_MIN) and 10**first.max == pytest.approx(TPS_MAX)
    assert all(isinstance(f, go.FigureWidget) for f in dash.figures.values())
    for fig in dash.figures.values():
        axes = [k for k in fig.to_plotly_json()["layout"] if k.startswith(("xaxis", "yaxis"))]
        assert len([a for a in axes if a.startswith("xaxis")]) <= 1  # no subplots
    bundle = dash._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert callable(dash._ipython_display_)


def test_tps_slider_redraws_in_place(dash):
    figs = dict(dash.figures)
    before = _snapshot(dash)
    decode_before = next(t for t in dash.figures["breakdown"].data if t.name == "decode").y
    dash.controls["tps"].value = 100.0
    assert {n: id(f) for n, f in dash.figures.items()} == {n: id(f) for n, f in figs.items()}
    after = _snapshot(dash)
    assert after["speedup"] != before["speedup"]
    assert after["breakdown"] != before["breakdown"]
    assert after["e2e"] != before["e2e"]
    decode_after = next(t for t in dash.figures["breakdown"].data if t.name == "decode").y
    # Ten times slower decoding: ten times the decode time per rollout.
    assert np.asarray(decode_after) == pytest.approx(np.asarray(decode_before) * 10)
    line = dash.figures["speedup"].data[len(dash.base_profiles)]
    assert list(line.x) == [100.0, 100.0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hop_latency_ms", 30.0),
        ("hops", 9),
        ("tool_s", 2.0),
        ("turns", 12),
        ("context_tokens", 40_000),
        ("strategy", "http_chained"),
    ],
)
def test_every_control_changes_the_figures(dash, name, value):
    before = _snapshot(dash)
    n = dash.redraws
    dash.controls[name].value = value
    assert dash.redraws == n + 1
    assert _snapshot(dash) != before


def test_replicas_matter_with_random_routing_only(dash):
    before = _snapshot(dash)
    dash.set(replicas=8)
    assert _snapshot(dash)["e2e"] == before["e2e"]  # sticky routing always finds the cache
    dash.set(routing="random")
    random8 = _snapshot(dash)["e2e"]
    assert random8 != before["e2e"]
    dash.set(replicas=2)
    assert _snapshot(dash)["e2e"] != random8


def test_figures_hold_the_closed_form(dash):
    dash.set(tps=250.0, hop_latency_ms=20.0, hops=3, turns=4, context_tokens=5000, tool_s=0.5)
    w = load_workload("fast_test", turns=4, initial_context_tokens=5000, tool_time_median_s=0.5)
    ws = load_profile("websocket")
    expected_ws = forecast(ws.with_(decode_tps=250.0, hop_latency_s=0.02, hops=min(ws.hops, 3)), w)
    expected_base = forecast(load_profile("http_baseline", decode_tps=250.0, hop_latency_s=0.02, hops=3), w)
    bar = dash.figures["e2e"].data[0]
    names = list(dash.base_profiles)
    assert bar.y[names.index("websocket")] == pytest.approx(expected_ws.e2e_s)
    assert bar.y[names.index("http_baseline")] == pytest.approx(expected_base.e2e_s)
    marks = dash.figures["speedup"].data[len(names) + 1]
    assert marks.y[names.index("websocket")] == pytest.approx(expected_base.e2e_s / expected_ws.e2e_s)


def test_set_is_one_redraw_and_validates(dash):
    n = dash.redraws
    seconds = dash.set(tps=300.0, hops=2, strategy="http_optimized")
    assert dash.redraws == n + 1
    assert seconds > 0 and seconds == dash.last_redraw_s
    assert dash.values.tps == pytest.approx(300.0) and dash.values.strategy == "http_optimized"
    with pytest.raises(ValueError, match="^colour:"):
        dash.set(colour=1)
    with pytest.raises(ValueError, match="^tps:"):
        dash.set(tps=10_000.0)
    with pytest.raises(ValueError, match="^strategy:"):
        dash.set(strategy="carrier_pigeon")
    with pytest.raises(ValueError, match="^strategy:"):
        Dashboard(strategy="carrier_pigeon")


def test_speedup_curve_matches_full_forecasts():
    w = load_workload("fast_test")
    base = {n: load_profile(n) for n in ("http_baseline", "websocket")}
    v = what_if(workload=w).values
    profiles = scenario_profiles(base, v)
    f = {n: forecast(p, w) for n, p in profiles.items()}
    grid = np.array([20.0, 137.0, 4000.0])
    curve = speedup_curve(f["websocket"], f["http_baseline"], v.tps, grid)
    for tps, s in zip(grid, curve, strict=True):
        direct = (
            forecast(profiles["http_baseline"].with_(decode_tps=tps), w).e2e_s
            / forecast(profiles["websocket"].with_(decode_tps=tps), w).e2e_s
        )
        assert s == pytest.approx(direct, rel=1e-9)


def test_hops_keep_the_optimised_presets_fewer():
    base = {n: load_profile(n) for n in ("http_baseline", "http_optimized")}
    v = what_if(workload="fast_test").values
    fewer = base["http_optimized"].hops
    assert fewer < base["http_baseline"].hops  # the preset removed hops
    for hops in (0, fewer, base["http_baseline"].hops + 3):
        p = scenario_profiles(base, type(v)(**{**v.__dict__, "hops": hops}))
        assert p["http_baseline"].hops == hops
        assert p["http_optimized"].hops == min(fewer, hops)


def test_export_button_writes_the_current_figures(dash, tmp_path):
    out = tmp_path / "exports"
    dash.export_button.click()
    names = {p.name for p in out.iterdir()}
    assert names == {f"what_if_{n}.html" for n in dash.figures}
    assert str(out.resolve()) in dash.export_output.value
    assert "what_if_speedup.html" in dash.export_output.value


@pytest.mark.browser
@pytest.mark.skipif(find_browser() is None, reason="no Chrome/Chromium on this machine")
def test_export_static_formats(tmp_path):
    d = what_if(workload="fast_test", export_dir=tmp_path, export_formats=("html", "svg"))
    d.set(tps=2000.0)
    written = d.export()
    assert set(written) == {f"what_if_{n}" for n in d.figures}
    for paths in written.values():
        assert list(paths) == ["html", "svg"]
        assert b"<svg" in paths["svg"].read_bytes()[:512]
    assert "2,000 tokens/s" in (tmp_path / "what_if_speedup.svg").read_text()


def test_export_without_browser_says_how_to_get_one(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    d = what_if(workload="fast_test", export_dir=tmp_path / "out", export_formats=("html", "png"))
    d.export_button.click()
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".html"] * 3
    assert "apt-get install chromium" in d.export_output.value


def test_widget_state_carries_the_data_a_new_view_starts_from(dash):
    # A browser view is built from the widget state: it must hold whole traces from the start...
    for fig in dash.figures.values():
        assert len(fig._widget_data) == len(fig.data)
    curve = dash.figures["speedup"]._widget_data[0]
    assert len(curve["x"]) == len(curve["y"]) == len(dash.figures["speedup"].data[0].x) > 10
    # ...and be brought up to date when the dashboard is displayed after changes.
    dash.set(tps=40.0)
    dash._repr_mimebundle_()
    state = dash.figures["speedup"]._widget_data[len(dash.base_profiles)]
    assert list(state["x"]) == [40.0, 40.0]
