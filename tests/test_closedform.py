"""The one closed form (``labkit.model.closedform``) against a reference written turn by turn with ``plan_turn``,
and every caller that used to carry its own copy (``sim.analytic``, ``traces.closedform``, the ensemble's fast
path) reading it, over every preset and workload, sticky and random routing. (Before the copies were deleted,
the second test compared each copy with the new module: ``forecast`` and the analytic spans equal exactly, the
traces' and the ensemble's totals to 1e-12, being summed in another order.)"""

from __future__ import annotations

import numpy as np
import pytest

from labkit.model import STAGES, CacheState, hit_probability, load_profile, load_workload, plan_turn
from labkit.model import closedform as cf
from labkit.model.presets import preset_names, workload_names

PROFILES = [
    *(load_profile(name) for name in preset_names()),
    load_profile("http_chained", replicas=4, routing="random"),
    load_profile("http_optimized", replicas=3, routing="random", decode_tps=4000),
    load_profile("websocket", keep_alive=False, chaining="store"),
]
WORKLOADS = [load_workload(name) for name in workload_names()]


def _reference_matrix(profile, specs) -> np.ndarray:
    """Expected seconds per (turn, stage), one ``plan_turn`` per turn and replica outcome."""
    p = hit_probability(profile)
    persistent = profile.transport == "websocket" or profile.keep_alive
    out = np.zeros((len(specs), len(STAGES)))
    for i, spec in enumerate(specs):
        later = spec.index > 0
        states = [
            CacheState(persistent and later, profile.chaining == "connection" and later, hit and later)
            for hit in (True, False)
        ]
        hit, miss = (plan_turn(profile, spec, s) for s in states)
        for j, (h, m) in enumerate(zip(hit, miss, strict=True)):
            out[i, j] = p * h.duration_s + (1 - p) * m.duration_s if p < 1.0 else h.duration_s
        out[i, -1] = spec.tool_s
    return out


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.name}-{p.routing}-{p.chaining}")
def test_closed_form_equals_the_turn_by_turn_reference(profile, workload):
    for seed in (None, 3):
        specs = workload.turn_specs(seed)
        m = cf.expected_stage_matrix(profile, specs)
        np.testing.assert_array_equal(m, _reference_matrix(profile, specs))
        f = cf.forecast(profile, workload, seed)
        assert f.e2e_s == float(m.sum(axis=0).sum()) == cf.expected_e2e_s(profile, workload, seed)
        assert f.ttft_s == tuple(float(x) for x in m[:, : STAGES.index("decode")].sum(axis=1))


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.name}-{p.routing}-{p.chaining}")
def test_every_caller_reads_the_one_closed_form(profile, workload):
    from labkit.analysis.ensemble import rollout
    from labkit.sim import analytic
    from labkit.traces import closedform as traces_cf

    assert analytic.forecast is cf.forecast and analytic.analytic_spans is cf.analytic_spans
    assert analytic.cache_state is cf.cache_state and analytic.RolloutForecast is cf.RolloutForecast
    assert traces_cf.expected_e2e_s is cf.expected_e2e_s
    specs = workload.turn_specs(3)
    assert traces_cf.cache_states(profile, specs, True) == [cf.cache_state(profile, s, True) for s in specs]
    fast = rollout(profile, workload)
    f0 = cf.forecast(profile, workload)
    assert fast.e2e_s == pytest.approx(f0.e2e_s, rel=1e-12)
    assert fast.ttft_mean_s == pytest.approx(f0.ttft_mean_s, rel=1e-12)
    assert fast.overhead_s == pytest.approx(f0.api_s + f0.network_s, rel=1e-12)
    assert fast.inference_s == pytest.approx(f0.inference_s, rel=1e-12)


def test_cache_states_are_cache_state_turn_by_turn():
    for profile in PROFILES:
        specs = load_workload("codex_bugfix").turn_specs()
        for hit in (False, True):
            array = cf.rollout_cache_states(profile, specs, hit)
            assert [tuple(row) for row in array.tolist()] == [tuple(cf.cache_state(profile, s, hit)) for s in specs]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.name}-{p.routing}-{p.chaining}")
def test_analytic_spans_lay_the_closed_form_out_turn_by_turn(profile):
    """Durations from the expected matrix, back to back; tokens, bytes and hits of the likelier replica outcome's
    ``plan_turn``; zero-length stages kept; a tool after every turn but the last."""
    workload = load_workload("quick_edit")
    specs = workload.turn_specs(3)
    rows = cf.analytic_spans(profile, workload, seed=3, rollout=2).frame()
    m = _reference_matrix(profile, specs)
    want, t = [], 0.0
    for i, spec in enumerate(specs):
        plan = plan_turn(profile, spec, cf.cache_state(profile, spec, hit_probability(profile) >= 0.5))
        for j, stage in enumerate(plan):
            want.append((i, stage.name, t, t + m[i, j], stage.tokens, stage.bytes, stage.cache_hit))
            t += m[i, j]
        if not spec.final:
            want.append((i, "tool", t, t + spec.tool_s, 0, 0, False))
            t += spec.tool_s
    cols = ["turn", "stage", "start_s", "end_s", "tokens", "bytes", "cache_hit"]
    assert [tuple(r) for r in rows[cols].itertuples(index=False)] == want
    assert (rows["source"] == "analytic").all() and (rows["rollout"] == 2).all()
