"""labkit.viz builders, template and frames, on small frames (no browser needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from labkit import viz
from labkit.analysis.crossover import crossover_tps
from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.model import STAGES, load_profile, load_workload, preset_names
from labkit.model.spans import concat_spans
from labkit.sim.analytic import analytic_spans, forecast
from labkit.sim.sweep import forecast_sweep
from labkit.viz import template
from labkit.viz.frames import add_speedup, normalize

PRESETS = ("http_baseline", "http_optimized", "http_chained", "websocket")


@pytest.fixture(scope="module")
def work():
    return load_workload("fast_test")


@pytest.fixture(scope="module")
def forecasts(work):
    return {n: forecast(load_profile(n), work) for n in PRESETS}


@pytest.fixture(scope="module")
def spans(work):
    return concat_spans(
        analytic_spans(load_profile(n), work, seed=r, rollout=r).frame() for n in PRESETS for r in range(3)
    )


def _axes(fig: go.Figure) -> list[dict]:
    layout = fig.to_plotly_json()["layout"]
    return [ax for key, ax in layout.items() if key.startswith(("xaxis", "yaxis"))]


def _assert_paper_ready(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure)
    assert fig.layout.template.layout.font.family == template.FONT_FAMILY
    assert fig.layout.title.text
    titled = [ax.get("title", {}).get("text") for ax in _axes(fig)]
    titled = [t for t in titled if t]
    assert titled, "no axis title at all"
    for t in titled:
        if t != "turn":  # a categorical axis of Gantt rows
            assert t.endswith(")") and " (" in t, f"axis title without unit: {t!r}"


# -- template -------------------------------------------------------------------------------------------


def test_every_preset_and_stage_has_a_fixed_distinct_colour():
    colours = [template.color(n) for n in preset_names()]
    assert len(set(colours)) == len(colours)
    assert all(s in template.STAGE_COLORS for s in STAGES)
    # Within a category every stage has its own shade (a stacked bar would merge two stages otherwise).
    from labkit.model import stage_category

    for cat in {stage_category(s) for s in STAGES}:
        shades = [template.STAGE_COLORS[s] for s in STAGES if stage_category(s) == cat]
        assert len(set(shades)) == len(shades), cat
    assert template.color("websocket") == template.color("websocket")
    # Unknown names still get a stable colour from the palette.
    assert template.color("something_else") == template.color("something_else")


def test_axis_title_requires_a_unit():
    assert template.axis_title("time", "s") == "time (s)"
    with pytest.raises(ValueError, match="^unit:"):
        template.axis_title("time", "")


def test_column_axis_unknown_column_is_a_clear_error():
    with pytest.raises(ValueError, match="^mystery:"):
        viz.column_axis("mystery")
    assert viz.column_axis("ttft_s") == ("time to first token (ms)", 1e3)


# -- stage breakdown --------------------------------------------------------------------------------------


def test_stage_breakdown_from_forecasts_stacks_to_end_to_end(forecasts):
    fig = viz.stage_breakdown(forecasts)
    _assert_paper_ready(fig)
    x = list(fig.data[0].x)
    assert x == [template.label(n) for n in PRESETS]
    totals = np.sum([np.asarray(t.y, dtype=float) for t in fig.data], axis=0)
    assert totals == pytest.approx([forecasts[n].e2e_s for n in PRESETS])
    for t in fig.data:
        stage = next(s for s in STAGES if template.label(s) == t.name)
        assert t.marker.color == template.color(stage)


def test_stage_breakdown_from_spans_by_category_and_share(spans):
    before = spans.copy()
    fig = viz.stage_breakdown(spans, by="category")
    pd.testing.assert_frame_equal(spans, before)  # input untouched
    _assert_paper_ready(fig)
    names = {t.name for t in fig.data}
    assert names <= {template.label(c) for c in ("network", "api", "inference", "client", "other")}
    totals = np.sum([np.asarray(t.y, dtype=float) for t in fig.data], axis=0)
    expected = rollout_metrics(spans).groupby("scenario")["e2e_s"].mean()
    assert totals == pytest.approx([expected[n] for n in PRESETS])
    share = viz.stage_breakdown(spans, share=True)
    assert np.sum([np.asarray(t.y, dtype=float) for t in share.data], axis=0) == pytest.approx([100.0] * 4)
    with pytest.raises(ValueError, match="^by:"):
        viz.stage_breakdown(spans, by="colour")


# -- overhead vs TPS ---------------------------------------------------------------------------------------


def test_overhead_vs_tps_from_closed_form_sweep(work):
    df = forecast_sweep(PRESETS, work, tps=list(np.geomspace(20, 4000, 9)))
    cross = crossover_tps("http_baseline", work)
    fig = viz.overhead_vs_tps(df, crossover=cross)
    _assert_paper_ready(fig)
    assert fig.layout.xaxis.type == "log"
    shares = [t for t in fig.data if t.legendgroup == "scenarios"]
    assert {t.name for t in shares} == {template.label(n) for n in PRESETS}
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert 20 < cross < 4000 and f"{cross:,.0f} tokens/s" in texts
    # Overhead share as a percentage of the frame's own column.
    base = df[df["scenario"] == "http_baseline"].sort_values("tps")
    line = next(t for t in shares if t.name == template.label("http_baseline"))
    assert np.asarray(line.y) == pytest.approx(base["overhead_share"].to_numpy() * 100)


def test_overhead_vs_tps_takes_the_sweep_module_frame():
    from labkit.sim.sweep import sweep

    df = sweep({"profile": ["http_baseline", "websocket"], "decode_tps": [50, 500, 2000], "workload": "fast_test"})
    fig = viz.overhead_vs_tps(df)
    assert len([t for t in fig.data if t.legendgroup == "categories"]) == 4  # network, api, inference, client
    with pytest.raises(ValueError, match="^scenario:"):
        viz.overhead_vs_tps(df, scenario="nope")


# -- TTFT waterfall ------------------------------------------------------------------------------------------


def test_ttft_waterfall_groups_savings_by_optimisation(forecasts):
    base, opt = forecasts["http_baseline"], forecasts["http_optimized"]
    fig = viz.ttft_waterfall(base, opt)
    _assert_paper_ready(fig)
    w = fig.data[0]
    assert w.y[0] == pytest.approx(base.ttft_mean_s * 1e3)
    assert sum(w.y[1:-1]) == pytest.approx((opt.ttft_mean_s - base.ttft_mean_s) * 1e3)
    assert list(w.measure) == ["absolute", *["relative"] * (len(w.y) - 2), "total"]
    assert w.text[-1] == f"{opt.ttft_mean_s * 1e3:.0f}"
    changed = {
        s for s in viz.figures._PRE_DECODE if abs(opt.stage_s[s] - base.stage_s[s]) > 1e-12
    }  # computed, not assumed
    expected = {viz.figures.OPTIMISATIONS.get(s, template.label(s)) for s in changed}
    assert set(w.x[1:-1]) == expected
    change = (opt.ttft_mean_s / base.ttft_mean_s - 1) * 100
    assert f"{change:+.0f}%" in fig.layout.title.text


def test_ttft_waterfall_steps_and_spans(forecasts, spans):
    base = forecasts["http_baseline"]
    steps = [("optimized", forecasts["http_optimized"]), ("websocket", forecasts["websocket"])]
    fig = viz.ttft_waterfall(base, steps=steps)
    w = fig.data[0]
    assert list(w.x) == ["HTTP baseline", "optimized", "websocket", "all optimisations"]
    assert w.y[2] == pytest.approx((forecasts["websocket"].ttft_mean_s - forecasts["http_optimized"].ttft_mean_s) * 1e3)
    one = spans[(spans["scenario"] == "http_baseline") & (spans["rollout"] == 0)]
    fig2 = viz.ttft_waterfall(one, spans[(spans["scenario"] == "websocket") & (spans["rollout"] == 0)])
    assert fig2.data[0].y[0] == pytest.approx(turn_metrics(one)["ttft_s"].mean() * 1e3)
    with pytest.raises(ValueError, match="^optimized:"):
        viz.ttft_waterfall(base)


# -- Gantt ----------------------------------------------------------------------------------------------------


def test_gantt_lays_spans_from_rollout_start(spans):
    fig = viz.gantt(spans, rollout=1, scenario=["http_baseline", "websocket"])
    _assert_paper_ready(fig)
    sub = spans[(spans["rollout"] == 1) & spans["scenario"].isin(["http_baseline", "websocket"])]
    nonzero = sub[(sub["end_s"] - sub["start_s"]) > 1e-9]
    assert sum(len(t.x) for t in fig.data) == len(nonzero)
    decode = next(t for t in fig.data if t.name == "decode")
    ws = sub[(sub["scenario"] == "websocket") & (sub["stage"] == "decode")].sort_values("turn")
    rows = [r for r in decode.y if r.startswith(template.label("websocket"))]
    bases = [b for b, r in zip(decode.base, decode.y, strict=True) if r in rows]
    t0 = sub[sub["scenario"] == "websocket"]["start_s"].min()
    assert bases == pytest.approx((ws["start_s"] - t0).tolist())
    with pytest.raises(ValueError, match="^rollout:"):
        viz.gantt(spans, rollout=99)


# -- distributions, prediction vs measurement -------------------------------------------------------------


def test_distribution_ecdf_and_box(spans):
    tm = turn_metrics(spans)
    fig = viz.distribution(tm, "ttft_s")
    _assert_paper_ready(fig)
    for t in fig.data:
        assert list(t.x) == sorted(t.x)
        assert t.y[0] == 0.0 and t.y[-1] == pytest.approx(100.0)
        assert len(t.x) == len(tm[tm["scenario"] == next(n for n in PRESETS if template.label(n) == t.name)]) + 1
    ws = next(t for t in fig.data if t.name == template.label("websocket"))
    assert max(ws.x) == pytest.approx(tm[tm["scenario"] == "websocket"]["ttft_s"].max() * 1e3)
    box = viz.distribution(spans, "latency_s", kind="box")
    assert len(box.data) == len(PRESETS)
    with pytest.raises(ValueError, match="^kind:"):
        viz.distribution(tm, kind="violin")
    with pytest.raises(ValueError, match="^column:"):
        viz.distribution(tm, "nope_s")


def test_prediction_vs_measurement_shows_the_error(spans):
    pred = turn_metrics(spans[spans["rollout"] == 0])
    meas = pred.assign(source="live", ttft_s=pred["ttft_s"] + 0.005)
    fig = viz.prediction_vs_measurement(pred, meas)
    _assert_paper_ready(fig)
    errors = [t for t in fig.data if t.yaxis == "y2"]
    assert len(errors) == len(PRESETS)
    for t in errors:
        assert np.asarray(t.y) == pytest.approx(5.0)
    err = viz.prediction_error(pred, meas)
    assert err["error"].to_numpy() == pytest.approx(0.005)
    with pytest.raises(ValueError, match="^meas:"):
        viz.prediction_error(pred, meas.assign(scenario="other"))


# -- sweeps: heatmap, routing, failures, fleet, end to end ------------------------------------------------------


def test_forecast_sweep_speedup_and_heatmap(work):
    df = forecast_sweep(PRESETS, work, tps=[65, 1000], turns=[3, 6])
    base = df[df["scenario"] == "http_baseline"]
    assert base["speedup"].to_numpy() == pytest.approx(1.0)
    row = df[(df["scenario"] == "websocket") & (df["tps"] == 1000) & (df["turns"] == 6)].iloc[0]
    w6 = work.with_(turns=6)
    direct = (
        forecast(load_profile("http_baseline", decode_tps=1000), w6).e2e_s
        / forecast(load_profile("websocket", decode_tps=1000), w6).e2e_s
    )
    assert row["speedup"] == pytest.approx(direct)
    fig = viz.speedup_heatmap(df)
    _assert_paper_ready(fig)
    assert len(fig.data) == 3  # the baseline against itself is left out
    ws = fig.data[-1]
    assert np.nanmax(ws.z) == pytest.approx(df[df["scenario"] == "websocket"]["speedup"].max())
    with pytest.raises(ValueError, match="^nope:"):
        forecast_sweep(PRESETS, work, nope=[1])


def test_add_speedup_on_sweep_frames():
    df = pd.DataFrame(
        {"profile": ["http_baseline", "websocket"] * 2, "turns": [5, 5, 10, 10], "e2e_s": [10, 8, 20, 10]}
    )
    out = add_speedup(df, on=["turns"])
    assert out["speedup"].tolist() == pytest.approx([1.0, 1.25, 1.0, 2.0])
    assert "scenario" in normalize(df).columns and "scenario" not in df.columns


def test_routing_effect_and_break_even():
    rows = []
    for routing in ("sticky", "random"):
        for n in (1, 2, 4):
            for sc in ("http_optimized", "http_chained"):
                e = forecast(load_profile(sc, replicas=n, routing=routing), load_workload("fast_test")).e2e_s
                rows.append({"scenario": sc, "routing": routing, "replicas": n, "e2e_s": e})
    df = pd.DataFrame(rows)
    fig = viz.routing_effect(df)
    _assert_paper_ready(fig)
    assert len(fig.data) == 4
    dashes = {t.name: t.line.dash for t in fig.data}
    assert dashes["HTTP chained, random"] == "dash" and dashes["HTTP chained, sticky"] == "solid"
    one = viz.routing_effect(df[df["scenario"] == "http_chained"])
    assert [t.line.color for t in one.data] == [template.color("sticky"), template.color("random")]


def test_fallback_cost_marks_break_even():
    x = np.array([0.0, 0.02, 0.04, 0.06, 0.08, 0.1])
    df = pd.concat(
        [
            pd.DataFrame({"scenario": "websocket", "drop_rate": x, "e2e_s": 10 + 100 * x, "fallbacks": 25 * x}),
            pd.DataFrame({"scenario": "http_chained", "drop_rate": x, "e2e_s": 15.0, "fallbacks": 0.0}),
        ]
    )
    assert viz.break_even(df, "websocket", "http_chained", "drop_rate") == pytest.approx(0.05)
    fig = viz.fallback_cost(df, reference="http_chained")
    _assert_paper_ready(fig)
    assert any("at 5 %" in a.text for a in fig.layout.annotations)
    assert fig.layout.shapes[0].x0 == pytest.approx(5.0)  # percent of turns
    assert len(fig.data) == 4  # e2e and fallbacks per scenario


def test_fleet_queueing_overlays_erlang_c():
    from labkit.sim.analytic import mmc_mean_wait

    rows = []
    for c in (1, 3):
        for u in (0.5, 0.8):
            th = mmc_mean_wait(u * c * 2.0, 2.0, c)
            rows.append(
                {"servers": c, "utilisation": u, "erlang_wait_s": th, "wait_s": th * 1.1, "wait_s_ci": th * 0.1}
            )
    df = pd.DataFrame(rows)
    fig = viz.fleet_queueing(df, by="servers")
    _assert_paper_ready(fig)
    theory = [t for t in fig.data if t.name.startswith("Erlang C")]
    assert len(theory) == 2
    assert np.asarray(theory[0].y) == pytest.approx(df[df["servers"] == 1]["erlang_wait_s"].to_numpy() * 1e3)
    sims = [t for t in fig.data if t.name.startswith("simulated")]
    assert np.asarray(sims[1].error_y.array) == pytest.approx(df[df["servers"] == 3]["wait_s_ci"].to_numpy() * 1e3)
    with pytest.raises(ValueError, match="^wait_s:"):
        viz.fleet_queueing(df.drop(columns="wait_s"))


def test_e2e_by_transport_labels_change_vs_baseline(forecasts, spans):
    fig = viz.e2e_by_transport(forecasts)
    _assert_paper_ready(fig)
    bar = fig.data[0]
    assert bar.y == pytest.approx(tuple(forecasts[n].e2e_s for n in PRESETS))
    change = (forecasts["websocket"].e2e_s / forecasts["http_baseline"].e2e_s - 1) * 100
    assert f"({change:+.0f}%)" in bar.text[-1]
    rm = viz.e2e_by_transport(spans)
    assert rm.data[0].error_y.visible  # three rollouts: a confidence interval is drawn
    with pytest.raises(ValueError, match="^metric:"):
        viz.e2e_by_transport(forecasts, metric="nope_s")


def test_e2e_by_transport_compares_like_with_like(work):
    by = {
        f"{n} @ {v:,} tok/s": forecast(load_profile(n, decode_tps=v), work)
        for v in (65, 1000)
        for n in ("http_baseline", "websocket")
    }
    fig = viz.e2e_by_transport(by)
    assert fig.data[0].x[0] == "HTTP baseline<br>@ 65 tok/s"  # known scenario names get their labels
    fast = by["websocket @ 1,000 tok/s"].e2e_s / by["http_baseline @ 1,000 tok/s"].e2e_s - 1
    text = dict(zip(fig.data[0].x, fig.data[0].text, strict=True))
    assert text["WebSocket mode<br>@ 1,000 tok/s"].endswith(f"({fast * 100:+.0f}%)")
    assert fig.data[0].marker.color[-1] == template.color("websocket")


def test_unknown_groups_never_share_a_colour():
    names = [f"variant_{i}" for i in range(6)]
    df = pd.DataFrame({"scenario": np.repeat(names, 2), "turns": [1, 2] * 6, "e2e_s": np.arange(12.0)})
    fig = viz.line_chart(df, "turns", "e2e_s")
    colours = [t.line.color for t in fig.data]
    assert len(set(colours)) == len(names)
    mixed = template.colors_for(["websocket", "mystery", "http_baseline"])
    assert mixed["websocket"] == template.color("websocket")
    assert mixed["mystery"] not in {template.color("websocket"), template.color("http_baseline")}


def test_stage_breakdown_keeps_empty_stages_by_uid(forecasts):
    fig = viz.stage_breakdown(forecasts, keep_empty=True)
    assert [t.uid for t in fig.data] == list(STAGES)
    empty = {t.uid for t in fig.data if not t.showlegend}
    assert empty == {"reasoning"}  # fast_test has no reasoning tokens: kept as a trace, out of the legend
    assert {t.uid for t in viz.stage_breakdown(forecasts).data} == set(STAGES) - {
        t.uid for t in fig.data if not any(v > 1e-12 for v in t.y)
    }


def test_e2e_by_transport_horizontal_keeps_labels_room(forecasts):
    fig = viz.e2e_by_transport(forecasts, horizontal=True)
    bar = fig.data[0]
    assert bar.orientation == "h" and bar.uid == "e2e_s"
    assert fig.layout.xaxis.range[1] >= max(bar.x) * 1.25  # room for the outside labels
    assert fig.layout.yaxis.autorange == "reversed"


def test_speedup_over_tps_lines_current_speed_and_marks(work):
    df = forecast_sweep([*PRESETS, "ideal"], work, baseline="http_baseline", tps=[20, 100, 1000, 4000])
    fig = viz.speedup_over_tps(df, current_tps=1000, highlight="websocket")
    uids = [t.uid for t in fig.data]
    assert uids[:5] == [*PRESETS, "ideal"] and uids[-2:] == ["current_tps", "at_current_tps"]
    marks = fig.data[-1]
    ws = df[(df.scenario == "websocket") & (df.tps == 1000)]["speedup"].iloc[0]
    assert marks.y[uids.index("websocket")] == pytest.approx(ws)
    assert [t for t in marks.text if t] == [f"{ws:.2f}×"]
    assert fig.layout.xaxis.type == "log" and "(×)" in fig.layout.yaxis.title.text


def test_gain_by_mechanism_stacks_to_the_reduction():
    from labkit.analysis.attribution import attribution_over_tps

    df = attribution_over_tps("websocket", [65, 1000])
    fig = viz.gain_by_mechanism(df)
    at_1000 = sum(t.y[list(t.x).index(1000)] for t in fig.data)
    c = forecast(load_profile("websocket", decode_tps=1000), load_workload("codex_bugfix"))
    b = forecast(load_profile("http_baseline", decode_tps=1000), load_workload("codex_bugfix"))
    assert at_1000 == pytest.approx((1 - c.e2e_s / b.e2e_s) * 100)
    assert {t.uid for t in fig.data} == set(df["mechanism"])


def test_gap_closed_and_claims_region():
    from labkit.analysis.attribution import gap_to_ideal
    from labkit.analysis.claims import claims_region, realistic_sessions

    fig = viz.gap_closed(gap_to_ideal(["http_baseline", "websocket", "ideal"]))
    assert next(iter(fig.data[0].y)) == 0 and list(fig.data[0].y)[-1] == pytest.approx(100)
    region = claims_region([0.5, 1.0], [1.0, 20.0], sessions=realistic_sessions()[:2])
    fig = viz.claims_region(region)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 1 and np.nanmax(np.asarray(heat[0].z, dtype=float)) <= 4
    marks = next(t for t in fig.data if t.type == "scatter")
    assert len(marks.x) == int(region["all_hold"].sum()) >= 1
