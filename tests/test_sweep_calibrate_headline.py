from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from labkit.analysis.calibrate import e2e_family, reductions, ttft_family
from labkit.analysis.headline import compare, crossover_tps, headline
from labkit.model import load_profile, load_workload, published_facts
from labkit.sim.analytic import forecast
from labkit.sim.sweep import expand_grid, sweep

GRID = {"profile": ["http_baseline", "websocket"], "decode_tps": [65, 1000], "turns": [5, 25]}


def test_grid_expansion_and_unknown_keys():
    assert len(expand_grid(GRID)) == 8
    assert expand_grid([{"profile": "websocket"}]) == [{"profile": "websocket"}]
    with pytest.raises(ValueError, match="^bogus"):
        expand_grid({"bogus": [1]})


def test_sweep_is_the_same_in_process_and_on_executors():
    local = sweep(GRID)
    assert len(local) == 8 and {"e2e_s", "ttft_mean_s", "overhead_share"} <= set(local.columns)
    with ProcessPoolExecutor(2) as ex:
        pooled = sweep(GRID, executor=ex)
    with ThreadPoolExecutor(2) as ex:
        threaded = sweep(GRID, executor=ex)
    assert local.equals(pooled) and local.equals(threaded)
    row = local[(local.profile == "websocket") & (local.decode_tps == 1000) & (local.turns == 25)].iloc[0]
    assert row.e2e_s == pytest.approx(forecast(load_profile("websocket"), load_workload("codex_bugfix")).e2e_s)


def test_des_sweep_points_are_seeded():
    grid = {"profile": ["websocket"], "method": ["des"], "rollouts": [3], "seed": [1], "drop_rate": [0.1]}
    a, b = sweep(grid), sweep(grid)
    assert a.equals(b) and a.loc[0, "fallbacks"] >= 0
    with pytest.raises(ValueError, match="^method"):
        sweep({"method": ["guess"]})


def test_headline_reproduces_the_seed():
    h = headline()
    facts = published_facts()
    assert h.ttft_reduction == pytest.approx(facts["ttft_reduction_critical_path"]["value"], abs=0.02)
    assert h.e2e_reduction_at_1000_tps == pytest.approx(facts["e2e_reduction_websocket"]["value"], abs=0.02)
    # At 65 TPS inference hides the overhead: a small gain, and the overhead share moves.
    assert 0 < h.e2e_reduction_at_65_tps < h.e2e_reduction_at_1000_tps / 2
    assert h.overhead_share_at_65_tps < 0.2 < 0.4 < h.overhead_share_at_1000_tps
    assert 65 < h.crossover_tps < 1000
    assert h.tool_calls >= 20 and h.workload == "codex_bugfix"


def test_crossover_is_where_overhead_meets_inference():
    tps = crossover_tps()
    f = forecast(load_profile("http_baseline", decode_tps=tps), load_workload("codex_bugfix"))
    assert f.api_s + f.network_s == pytest.approx(f.inference_s, rel=1e-4)


def test_compare_any_pair():
    r = compare("http_chained", "websocket", tps=4000, turns=30)
    assert r.turns == 30 and r.e2e_reduction > 0
    assert {
        "ttft_reduction",
        "e2e_reduction",
        "baseline_e2e_s",
        "candidate_e2e_s",
        "overhead_share_baseline",
        "overhead_share_candidate",
    } <= set(r.to_dict())
    same = compare("websocket", "websocket")
    assert same.e2e_reduction == 0


def test_calibration_family_meets_the_target_along_the_assumed_axis():
    fam = e2e_family(tool_medians_s=(0.05, 0.16, 0.5))
    assert fam["consistent"].all()
    assert fam["e2e_reduction_at_tps"].tolist() == pytest.approx([0.40] * 3, abs=1e-4)
    # Longer tools need a costlier API for the same 40%: the scale rises with tool time.
    assert fam["api_scale"].is_monotonic_increasing
    # The defaults are one member of the family: near the default tool time the forced scale is near 1.
    assert fam.loc[1, "api_scale"] == pytest.approx(1.0, abs=0.1)
    ttft = ttft_family(hop_latencies_s=(0.008, 0.012))
    for _, row in ttft.iterrows():
        r = reductions(
            load_workload("codex_bugfix"), 1000, safety_speedup=row.safety_speedup, hop_latency_s=row.hop_latency_s
        )
        assert r["ttft_reduction"] == pytest.approx(0.45, abs=1e-3)
