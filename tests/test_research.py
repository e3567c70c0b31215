"""labkit.analysis.research: the tables behind the notebooks, checked against the model they come from."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import critical_path, crossover, failures, fleet
from labkit.analysis.headline import headline
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast, mmc_mean_wait
from labkit.sim.des import Faults, simulate


@pytest.fixture(scope="module")
def workload():
    return load_workload("codex_bugfix")


def test_tps_grid_is_log_spaced_and_checks_input() -> None:
    g = crossover.tps_grid(20, 4000, 5)
    assert g[0] == pytest.approx(20) and g[-1] == pytest.approx(4000)
    assert np.allclose(np.diff(np.log(g)), np.log(200) / 4)
    with pytest.raises(ValueError, match="^lo:"):
        crossover.tps_grid(100, 10)
    with pytest.raises(ValueError, match="^points:"):
        crossover.tps_grid(10, 100, 1)


def test_optimisation_effects_alone_and_leave_one_out(workload) -> None:
    eff = critical_path.optimisation_effects(workload)
    base = forecast(load_profile("http_baseline"), workload).ttft_mean_s
    opt = forecast(load_profile("http_optimized"), workload).ttft_mean_s
    assert eff.attrs["total_reduction"] == pytest.approx(1 - opt / base)
    assert eff.attrs["total_reduction"] == pytest.approx(headline().ttft_reduction)
    assert list(eff.index) == list(critical_path.OPTIMISATIONS)
    # Every optimisation helps on its own and is missed when left out.
    assert (eff["alone_reduction"] > 0).all() and (eff["leave_one_out_reduction"] > 0).all()
    # Applying only the rendered-token cache equals that profile's own forecast.
    alone = load_profile("http_baseline", rendered_token_cache=True)
    assert eff.loc["rendered-token cache", "alone_ttft_s"] == pytest.approx(forecast(alone, workload).ttft_mean_s)


def test_sprint_steps_end_at_the_optimized_profile(workload) -> None:
    steps = critical_path.sprint_steps(workload)
    assert [name for name, _ in steps] == list(critical_path.OPTIMISATIONS)
    assert steps[-1][1].ttft_s == pytest.approx(forecast(load_profile("http_optimized"), workload).ttft_s)


def test_a_difference_outside_the_groups_is_refused(workload) -> None:
    other = load_profile("http_optimized", rtt_s=0.1)
    with pytest.raises(ValueError, match="^groups: fields rtt_s"):
        critical_path.optimisation_effects(workload, "http_baseline", other)


def test_crossover_table_puts_overhead_equal_to_inference(workload) -> None:
    table = crossover.crossover_table(["http_baseline", "websocket"], "codex_bugfix")
    for name, tps in table["crossover_tps"].items():
        f = forecast(load_profile(name, decode_tps=tps), workload)
        assert f.api_s + f.network_s == pytest.approx(f.inference_s, rel=1e-6)
    assert table.loc["websocket", "crossover_tps"] > table.loc["http_baseline", "crossover_tps"]


def test_headline_text_prints_the_model_numbers() -> None:
    h = headline()
    text = h.text()
    assert f"{h.ttft_reduction:.1%}" in text and f"{h.crossover_tps:7.0f}" in text


def test_fallback_turn_cost_is_the_miss_minus_the_hit(workload) -> None:
    cost = failures.fallback_turn_cost("websocket", workload)
    assert len(cost) == workload.turns - 1
    assert (cost["extra_s"] > 0).all()
    assert np.allclose(cost["fallback_s"] - cost["hit_s"], cost["extra_s"])
    # A bigger conversation costs more to re-send in full.
    assert np.corrcoef(cost["conversation_tokens"], cost["extra_s"])[0, 1] > 0.5


def test_reconnects_count_the_connection_limit(workload) -> None:
    p = load_profile("websocket")
    w = workload.with_(turns=6, tool_time_median_s=1.0, tool_time_sigma=0.0)
    e2e = forecast(p, w).e2e_s
    # A limit shorter than the rollout closes the socket at least once; a long one never.
    short = failures.reconnects(simulate(p, w, rollouts=2, faults=Faults(connection_limit_s=e2e / 3)))
    long = failures.reconnects(simulate(p, w, rollouts=2, faults=Faults(connection_limit_s=10 * e2e)))
    assert (short["reconnects"] >= 2).all()
    assert (long["reconnects"] == 0).all() and (long["retried_turns"] == 0).all()
    sweep = failures.limit_sweep(p, w, [e2e / 3, 10 * e2e], rollouts=2)
    assert list(sweep["reconnects"]) == [short["reconnects"].mean(), 0.0]
    assert sweep["e2e_s"].iloc[0] > sweep["e2e_s"].iloc[1]


def test_flat_reference_repeats_the_reference_at_every_x() -> None:
    df = pd.DataFrame(
        {"scenario": ["a", "a", "b", "b"], "drop_rate": [0.0, 0.5, 0.0, 0.5], "e2e_s": [10.0, 14.0, 12.0, 13.0]}
    )
    flat = failures.flat_reference(df, "b", "drop_rate")
    assert sorted(flat[flat.scenario == "b"]["e2e_s"]) == [12.0, 12.0]
    assert sorted(flat[flat.scenario == "a"]["e2e_s"]) == [10.0, 14.0]
    with pytest.raises(ValueError, match="^reference:"):
        failures.flat_reference(df, "c", "drop_rate")


def test_erlang_check_agrees_with_the_formula() -> None:
    df = fleet.erlang_check([0.5], [2], service_s=0.1, customers=10_000)
    row = df.iloc[0]
    assert row["erlang_wait_s"] == pytest.approx(mmc_mean_wait(10.0, 10.0, 2))
    assert abs(row["rel_error"]) < 0.15
    with pytest.raises(ValueError, match="^utilisations:"):
        fleet.erlang_check([1.0], [1])


def test_fleet_sweep_queues_grow_with_agents_and_capacity_reads_them(workload) -> None:
    w = workload.with_(turns=5)
    df = fleet.fleet_sweep(["websocket"], w, [1, 24], api_workers=2, inference_slots=4, rollouts_per_agent=1)
    one, many = df.iloc[0], df.iloc[1]
    assert one["api_queue_s"] == pytest.approx(0.0, abs=1e-9)
    assert many["api_queue_s"] + many["inference_queue_s"] > 0
    assert many["e2e_p95_s"] > one["e2e_p95_s"]
    cap = fleet.capacity(df, "e2e_p95_s", slack=0.0)
    assert cap.loc["websocket", "max_agents"] == 1
    long = fleet.queue_waits(df)
    assert set(long["queue"]) == {"API workers", "inference"} and len(long) == 2 * len(df)


def test_cache_memory_grows_with_the_conversation(workload) -> None:
    mem = fleet.cache_memory(workload, bytes_per_token=8, connections=(1, 10))
    one = mem[mem.connections == 1]
    assert (np.diff(one["cache_mib"]) > 0).all()
    last = workload.turn_specs()[-1]
    assert one["cache_mib"].iloc[-1] == pytest.approx((last.conversation_tokens + last.output_tokens) * 8 / 2**20)
    ten = mem[mem.connections == 10]["cache_mib"].to_numpy()
    assert np.allclose(ten, 10 * one["cache_mib"].to_numpy())
    with pytest.raises(ValueError, match="^bytes_per_token:"):
        fleet.cache_memory(workload, 0)
    assert math.isfinite(one["cache_mib"].max())
