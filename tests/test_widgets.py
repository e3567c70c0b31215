"""labkit.viz.dashboard in Python: sliders redraw the same FigureWidgets in place, from the closed form."""

from __future__ import annotations

import json

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import pytest

from labkit.model import load_profile, load_workload
from labkit.model.profile import MECHANISMS
from labkit.sim.analytic import forecast
from labkit.viz import find_browser
from labkit.viz.dashboard import (
    CONTROLS,
    TPS_MAX,
    TPS_MIN,
    Dashboard,
    cache_hit_share,
    mechanisms_of,
    scenario_profiles,
    speedup_curve,
    strategy_profile,
    what_if,
)


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


def _trace(d: Dashboard, fig: str, uid: str):
    return d._uids[fig][uid]


def test_tps_slider_redraws_in_place(dash):
    figs = dict(dash.figures)
    before = _snapshot(dash)
    decode_before = _trace(dash, "breakdown", "decode").y
    dash.controls["tps"].value = 100.0
    assert {n: id(f) for n, f in dash.figures.items()} == {n: id(f) for n, f in figs.items()}
    after = _snapshot(dash)
    assert after["speedup"] != before["speedup"]
    assert after["breakdown"] != before["breakdown"]
    assert after["e2e"] != before["e2e"]
    decode_after = _trace(dash, "breakdown", "decode").y
    # Ten times slower decoding: ten times the decode time per rollout.
    assert np.asarray(decode_after) == pytest.approx(np.asarray(decode_before) * 10, rel=1e-4)
    assert list(_trace(dash, "speedup", "current_tps").x) == [100.0, 100.0]
    assert "100" in dash.finding.value


def test_controls_are_one_table():
    names = [c.name for c in CONTROLS]
    assert len(names) == len(set(names))
    assert {m.name for m in MECHANISMS} <= set(names)
    assert all(c.target for c in CONTROLS)
    d = what_if(workload="fast_test")
    assert set(names) | {"strategy", "workload"} == set(d.controls)
    for c in CONTROLS:
        assert c.target in d.controls[c.name].tooltip


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("hop_latency_ms", 30.0),
        ("hops", 9),
        ("tool_s", 2.0),
        ("turns", 12),
        ("context_k", 40),
        ("strategy", "http_chained"),
        ("api_scale", 2.0),
        ("engine_pinning", True),
        ("config_cache", False),
        ("workload", "codex_realistic"),
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
    dash.set(tps=250.0, hop_latency_ms=20.0, hops=3, turns=4, context_k=5, tool_s=0.5)
    w = load_workload("fast_test", turns=4, initial_context_tokens=5000, tool_time_median_s=0.5)
    ws = load_profile("websocket")
    expected_ws = forecast(ws.with_(decode_tps=250.0, hop_latency_s=0.02, hops=min(ws.hops, 3)), w)
    expected_base = forecast(load_profile("http_baseline", decode_tps=250.0, hop_latency_s=0.02, hops=3), w)
    bar = _trace(dash, "e2e", "e2e_s")
    names = list(dash.base_profiles)
    assert bar.x[names.index("websocket")] == pytest.approx(expected_ws.e2e_s, rel=1e-4)
    assert bar.x[names.index("http_baseline")] == pytest.approx(expected_base.e2e_s, rel=1e-4)
    marks = _trace(dash, "speedup", "at_current_tps")
    assert marks.y[names.index("websocket")] == pytest.approx(expected_base.e2e_s / expected_ws.e2e_s, rel=1e-4)


def test_presets_are_sets_of_mechanisms():
    d = what_if(workload="fast_test")
    for name, p in d.base_profiles.items():
        assert strategy_profile(name, mechanisms_of(p, d.base_profiles), d.base_profiles) is p
    ws = d.base_profiles["websocket"]
    proto = strategy_profile("websocket", mechanisms_of(ws, d.base_profiles) | {"sampling_loop"}, d.base_profiles)
    assert proto.with_(name="websocket_prototype") == d.base_profiles["websocket_prototype"]


def test_checkboxes_follow_the_strategy_and_make_a_custom_one(dash):
    dash.set(strategy="http_optimized")
    assert not dash.controls["connection_cache"].value and dash.controls["config_cache"].value
    assert "custom" not in dash.forecasts
    dash.set(connection_cache=True, incremental_input=True, post_off_critical_path=True)
    # http_optimized with WebSocket mode's mechanisms switched on is WebSocket mode.
    assert dash.forecasts["custom"].e2e_s == pytest.approx(dash.forecasts["websocket"].e2e_s)
    assert _trace(dash, "speedup", "custom").visible is True
    assert "custom strategy" in dash.finding.value
    dash.set(strategy="websocket")
    assert "custom" not in dash.forecasts and _trace(dash, "speedup", "custom").visible is False


def test_memory_budget_evicts_connection_caches(dash):
    ws = dash.forecasts["websocket"].e2e_s
    chained = dash.forecasts["http_chained"].e2e_s
    dash.set(memory_gb=0.01, sockets=100_000.0)
    assert dash.forecasts["websocket"].e2e_s > ws
    assert dash.forecasts["http_chained"].e2e_s == pytest.approx(chained)  # HTTP holds no connection cache
    w = load_workload("fast_test")
    p = load_profile("websocket")
    assert cache_hit_share(w, p, 1e12, 10) == 1.0
    assert 0 < cache_hit_share(w, p, 1e6, 100) < 1


def test_an_imported_session_is_a_workload(tmp_path):
    class Session:
        name = "imported"

        def turn_specs(self, seed=None):
            return load_workload("fast_test").turn_specs()

    d = what_if(workload=Session(), export_dir=tmp_path)
    assert d.values.workload == "imported" and d.controls["turns"].disabled
    assert d.forecasts["websocket"].workload == "imported"
    expect = forecast(load_profile("websocket"), load_workload("fast_test")).e2e_s
    assert d.forecasts["websocket"].e2e_s == pytest.approx(expect)
    d.set(workload="quick_edit")
    assert not d.controls["turns"].disabled and d.values.turns == 6


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
    w = load_workload("codex_realistic")  # reasoning tokens too depend on the decode speed
    base = {n: load_profile(n) for n in ("http_baseline", "websocket")}
    v = what_if(workload="fast_test").values
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
    index = list(dash._uids["speedup"]).index("current_tps")
    state = dash.figures["speedup"]._widget_data[index]
    assert list(state["x"]) == [40.0, 40.0]


def test_plotly_module_travels_once_for_every_figure(tmp_path):
    from plotly.basewidget import BaseFigureWidget

    from labkit.viz.dashboard import PlotlyModule, SharedFigureWidget

    one = what_if(workload="fast_test", export_dir=tmp_path)
    two = what_if(workload="fast_test", export_dir=tmp_path)
    # One module widget per kernel, shown in the dashboard's box so a front end creates it...
    assert isinstance(one.plotly_module, PlotlyModule) and one.plotly_module is two.plotly_module
    assert one.plotly_module in one.widget.children
    # ...holding plotly's own widget module; each figure's module is a few lines that wait for it.
    plotly_js = str(BaseFigureWidget._esm)
    assert one.plotly_module.bundle == plotly_js and len(plotly_js) > 1_000_000
    for fig in [*one.figures.values(), *two.figures.values()]:
        assert isinstance(fig, SharedFigureWidget)
        assert len(fig._esm) < 5_000 and "labkit.plotly-widget" in fig._esm
