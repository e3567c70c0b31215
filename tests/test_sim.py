"""The DES against the closed form, common random numbers, faults, fleets, Erlang C and Little's law."""

import math

import numpy as np
import pytest

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.model import load_profile, load_workload
from labkit.model.spans import SPAN_COLUMNS
from labkit.sim.analytic import forecast, mmc_mean_wait
from labkit.sim.des import Faults, Fleet, run, simulate
from labkit.sim.queueing import simulate_mmc


@pytest.mark.parametrize("name", ["http_baseline", "http_optimized", "http_chained", "websocket"])
@pytest.mark.parametrize("tps", [65, 1000, 4000])
def test_deterministic_des_equals_closed_form(name, tps, codex):
    profile = load_profile(name, decode_tps=tps)
    spans = simulate(profile, codex)
    r = rollout_metrics(spans).iloc[0]
    t = turn_metrics(spans)
    f = forecast(profile, codex)
    assert r["e2e_s"] == pytest.approx(f.e2e_s, rel=0.01)
    assert t["ttft_s"].tolist() == pytest.approx(list(f.ttft_s), rel=0.01)
    assert r["overhead_share"] == pytest.approx(f.overhead_share, rel=0.01)


def test_random_routing_closed_form_is_the_des_mean():
    w = load_workload("codex_bugfix")
    p = load_profile("http_chained", replicas=4, routing="random")
    spans = simulate(p, w.with_(token_sigma=0.0, tool_time_sigma=0.0), rollouts=300, seed=3)
    des = rollout_metrics(spans)["e2e_s"]
    f = forecast(p, w.with_(token_sigma=0.0, tool_time_sigma=0.0))
    assert abs(des.mean() - f.e2e_s) < 3 * des.std(ddof=1) / math.sqrt(len(des)) + 1e-9
    sticky = forecast(p.with_(routing="sticky"), w.with_(token_sigma=0.0, tool_time_sigma=0.0))
    assert sticky.e2e_s < f.e2e_s


def test_spans_table_shape(codex):
    spans = simulate(load_profile("websocket"), codex, rollouts=2, jitter=0.2)
    assert list(spans.columns[: len(SPAN_COLUMNS)]) == list(SPAN_COLUMNS)
    assert (spans["end_s"] >= spans["start_s"]).all()
    assert set(spans["rollout"]) == {0, 1}
    assert (spans["source"] == "sim").all() and (spans["scenario"] == "websocket").all()


def test_common_random_numbers_across_transports(codex):
    a = simulate(load_profile("http_baseline"), codex, rollouts=3, seed=7, jitter=0.3)
    b = simulate(load_profile("websocket"), codex, rollouts=3, seed=7, jitter=0.3)
    tools_a = a[a.stage == "tool"].sort_values(["rollout", "turn"])
    tools_b = b[b.stage == "tool"].sort_values(["rollout", "turn"])
    dur_a = (tools_a.end_s - tools_a.start_s).to_numpy()
    dur_b = (tools_b.end_s - tools_b.start_s).to_numpy()
    np.testing.assert_allclose(dur_a, dur_b)
    # Same stage, same multiplier: the decode span of every turn lasts equally long on both.
    da = a[a.stage == "decode"].sort_values(["rollout", "turn"])
    db = b[b.stage == "decode"].sort_values(["rollout", "turn"])
    np.testing.assert_allclose((da.end_s - da.start_s).to_numpy(), (db.end_s - db.start_s).to_numpy())
    # And a different seed changes the draws.
    c = simulate(load_profile("websocket"), codex, rollouts=3, seed=8, jitter=0.3)
    assert not np.allclose(rollout_metrics(b)["e2e_s"], rollout_metrics(c)["e2e_s"])


def test_seeded_runs_repeat_exactly(codex):
    kw = dict(rollouts=4, seed=11, jitter=0.25, faults=Faults(drop_rate=0.1, evict_rate=0.1))
    a = simulate(load_profile("websocket"), codex, **kw)
    b = simulate(load_profile("websocket"), codex, **kw)
    assert a.equals(b)


def test_drops_reconnect_with_full_context_fallback(codex):
    p = load_profile("websocket")
    clean = simulate(p, codex, rollouts=20, seed=1)
    faulty = simulate(p, codex, rollouts=20, seed=1, faults=Faults(drop_rate=0.2))
    rm = rollout_metrics(faulty)
    assert rm["fallbacks"].sum() > 0
    assert (rm["e2e_s"].to_numpy() >= rollout_metrics(clean)["e2e_s"].to_numpy() - 1e-9).all()
    retry = faulty[faulty.attempt > 0]
    # Every retry reconnects and re-sends the whole conversation (cache lost with the socket).
    uploads = retry[retry.stage == "upload"]
    assert len(uploads) and not uploads["cache_hit"].any()
    assert (retry.stage == "connect").sum() == len(uploads)
    # Every turn still completes: one decode span per turn that finished.
    done = faulty[faulty.stage == "decode"].groupby(["rollout", "turn"])["attempt"].max()
    assert len(done) == 20 * codex.turns


def test_eviction_costs_a_full_resend_on_the_same_socket(codex):
    p = load_profile("websocket")
    spans = simulate(p, codex, rollouts=10, seed=2, faults=Faults(evict_rate=0.3))
    retry = spans[spans.attempt > 0]
    assert len(retry)
    assert (
        not (retry.stage == "connect").any()
        or (retry[retry.stage == "connect"].end_s == retry[retry.stage == "connect"].start_s).all()
    )
    assert not retry[retry.stage == "upload"]["cache_hit"].any()


def test_connection_limit_forces_reconnects(codex):
    p = load_profile("websocket")
    limited = simulate(p, codex, faults=Faults(connection_limit_s=5.0))
    full_uploads = limited[(limited.stage == "upload") & ~limited.cache_hit & (limited.turn > 0)]
    assert len(full_uploads) >= 2
    assert rollout_metrics(limited)["e2e_s"].iloc[0] > forecast(p, codex).e2e_s


def test_bad_sim_arguments_name_the_field(codex):
    p = load_profile("websocket")
    with pytest.raises(ValueError, match="^rollouts"):
        simulate(p, codex, rollouts=0)
    with pytest.raises(ValueError, match="^drop_rate"):
        Faults(drop_rate=1.5)
    with pytest.raises(ValueError, match="^inference_slots"):
        Fleet(inference_slots=0)
    with pytest.raises(ValueError, match="^jitter"):
        simulate(p, codex, jitter=-1)


def test_finite_fleet_queues_and_littles_law_holds(codex):
    p = load_profile("websocket")
    res = run(p, codex, rollouts=60, agents=60, seed=5, jitter=0.2, fleet=Fleet(api_workers=8, inference_slots=6))
    spans = res.spans
    inference = spans[spans.stage.isin(["queue", "prefill", "download", "decode"])]
    per_req = inference.groupby(["rollout", "turn", "attempt"]).agg(start=("start_s", "min"), end=("end_s", "max"))
    waits = spans[spans.stage == "queue"]
    assert (waits.end_s - waits.start_s).max() > p.queue_s  # somebody waited for a slot
    lam = len(per_req) / res.until
    w = (per_req.end - per_req.start).mean()
    # L from the pool's own occupancy integral, W from the spans: L = lambda * W.
    assert res.inference_time_average == pytest.approx(lam * w, rel=0.02)
    assert res.inference_arrivals == len(per_req)


T_975_9DF = 2.262  # Student t quantile for a two-sided 95% interval with 10 replications


@pytest.mark.parametrize(("lam", "mu", "c"), [(0.7, 1.0, 1), (3.0, 1.0, 4), (6.4, 1.0, 8), (1.4, 0.5, 4)])
def test_pool_queue_waits_match_erlang_c(lam, mu, c):
    runs = [simulate_mmc(lam, mu, c, customers=12_000, seed=s, warmup=1_000) for s in range(10)]
    waits = np.array([r.mean_wait_s for r in runs])
    half = T_975_9DF * waits.std(ddof=1) / math.sqrt(len(waits))
    assert abs(waits.mean() - mmc_mean_wait(lam, mu, c)) <= half
    for r in runs:  # Little's law on the pool: time-average number in system = lambda * W
        assert r.time_average_in_system == pytest.approx(r.arrival_rate * r.mean_sojourn_s, rel=0.01)


@pytest.mark.parametrize("transport,chaining", [("http", "none"), ("http", "store"), ("websocket", "connection")])
@pytest.mark.parametrize("keep_alive", [False, True])
def test_cache_state_is_the_state_the_des_built_by_hand(transport, chaining, keep_alive, codex):
    """The DES asks sim.analytic.cache_state for every request; before, it built the state inline with this
    formula (``fresh``: the request opens a connection; ``same_replica``: it lands where the last turn did)."""
    from labkit.model import CacheState
    from labkit.sim.analytic import cache_state

    profile = load_profile("http_baseline", transport=transport, chaining=chaining, keep_alive=keep_alive)
    persistent = transport == "websocket" or keep_alive
    chained = chaining == "connection"
    for spec in codex.turn_specs(0)[:3]:
        for fresh in (False, True):
            for same_replica in (False, True):
                first = spec.index == 0 or fresh
                by_hand = (persistent and not first, chained and not first, same_replica and spec.index > 0)
                state = cache_state(profile, spec, same_replica, fresh)
                assert isinstance(state, CacheState) and tuple(state) == by_hand
                assert state == CacheState(*by_hand) and all(type(v) is bool for v in state)


def test_cache_counters_cross_as_a_typed_object(codex):
    from labkit.model.cache import CachePolicy
    from labkit.sim.des import CacheCounters

    res = run(load_profile("websocket"), codex, rollouts=4, cache=CachePolicy(budget_bytes=10**6))
    assert isinstance(res.cache, CacheCounters)
    assert res.cache.to_dict() == {
        "hits": res.cache.hits,
        "misses": res.cache.misses,
        "evictions": res.cache.evictions,
        "expirations": res.cache.expirations,
        "peak_bytes": res.cache.peak_bytes,
    }
    assert res.cache.hits + res.cache.misses > 0 and res.cache.peak_bytes > 0
    assert run(load_profile("websocket"), codex, rollouts=2).cache is None


def test_a_handover_fires_then_after_the_server_is_handed_over():
    """A request that waits resumes at its next phase boundary (``then`` after the handover), with the handover
    time as the value; the pool's integrals count the wait from the request's arrival."""
    import simpy

    from labkit.sim.des import Pool

    env = simpy.Environment()
    pool = Pool(env, 1)
    seen: list[tuple[float, float]] = []

    def first():
        assert pool.enter_at(env.now, then=5.0) is None  # a free server: no event
        yield env.timeout(2.0)
        pool.leave_at(env.now)

    def second():
        yield env.timeout(0.5)
        ev = pool.enter_at(env.now, then=1.25)
        assert ev is not None
        handed = yield ev
        seen.append((handed, env.now))
        pool.leave_at(env.now)

    env.process(first())
    env.process(second())
    env.run()
    assert seen == [(2.0, 3.25)]
    # In system: the first over [0, 2], the second over [0.5, 3.25].
    assert pool.area == pytest.approx(2.0 + 2.75) and pool.in_system == 0 and pool.arrivals == 2
