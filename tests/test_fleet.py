"""The fleet DES: streaming metrics equal the span path, cache budgets (LRU, TTL), shards, trace-like workloads."""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.cli import main
from labkit.model import TurnSpec, load_profile, load_workload
from labkit.model.cache import CacheModel, CachePolicy, entry_bytes, parse_bytes
from labkit.sim.des import Faults, Fleet, ReplicaCache, run
from labkit.sim.fleet import FleetSpec, fleet_spec, run_fleet
from labkit.sim.streaming import LogHistogram, merge

SMALL = {"token_sigma": 0.3, "turns": 8}


def _both(profile, workload, **kw):
    spans = run(profile, workload, record="spans", **kw)
    stream = run(profile, workload, record="stream", **kw)
    assert spans.spans is not None and stream.metrics is not None
    return spans, stream.metrics


@pytest.mark.parametrize(
    "fleet",
    [Fleet(), Fleet(api_workers=3, inference_slots=4)],
    ids=["unlimited", "finite"],
)
def test_streaming_metrics_equal_the_span_path(fleet: Fleet) -> None:
    p = load_profile("websocket").with_(queue_s=0.0)  # every 'queue' span is then a wait for a slot
    w = load_workload("codex_bugfix", **SMALL)
    kw = dict(rollouts=40, agents=20, seed=4, jitter=0.2, fleet=fleet, faults=Faults(drop_rate=0.05, evict_rate=0.05))
    res, m = _both(p, w, **kw)
    spans = res.spans
    rm = rollout_metrics(spans).sort_values("rollout")
    np.testing.assert_allclose(m.e2e_s, rm["e2e_s"].to_numpy(), rtol=1e-12)
    tm = turn_metrics(spans)
    assert m.turns == len(tm)
    assert m.fallbacks == int(rm["fallbacks"].sum()) > 0
    assert m.ttft.mean == pytest.approx(tm["ttft_s"].mean(), rel=1e-9)
    for q in (0.5, 0.95, 0.99):
        # Histogram quantiles: within the bin resolution (0.1%) of numpy's on the exact values.
        assert m.ttft.quantile(q) == pytest.approx(tm["ttft_s"].quantile(q), rel=2e-3)
    assert m.e2e_quantile(0.95) == pytest.approx(rm["e2e_s"].quantile(0.95), rel=1e-12)
    dur = spans["end_s"] - spans["start_s"]
    if fleet.api_workers:
        assert m.api_wait.total == pytest.approx(float(dur[spans.stage == "api_queue"].sum()), rel=1e-9)
        assert m.inference_wait.total == pytest.approx(float(dur[spans.stage == "queue"].sum()), rel=1e-9)
        assert m.api_wait.total > 0 and m.inference_wait.total > 0
        assert res.inference_time_average == pytest.approx(m.inference_in_system[0], rel=1e-12)
        assert 0 < m.inference_busy[0] <= 1 and 0 < m.api_busy[0] <= 1
    else:
        assert m.api_wait.n == 0 and not (spans.stage == "api_queue").any()


def test_stream_memory_does_not_keep_spans() -> None:
    p = load_profile("websocket")
    w = load_workload("codex_bugfix", turns=5)
    m = run(p, w, rollouts=300, agents=300, record="stream").metrics
    assert m is not None and m.e2e_s.shape == (300,)
    # Histograms are fixed-size whatever the number of turns; only non-empty bins are kept when frozen.
    assert len(m.ttft.bins) <= m.turns


def test_histogram_quantiles_and_merge() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(0, 1, 5000), np.concatenate([np.zeros(500), rng.lognormal(-2, 0.5, 3000)])
    ha, hb = LogHistogram(), LogHistogram()
    for x in a:
        ha.add(float(x))
    for x in b:
        hb.add(float(x))
    both = ha.frozen().merged(hb.frozen())
    allv = np.concatenate([a, b])
    assert both.n == len(allv) and both.zeros == 500
    assert both.mean == pytest.approx(allv.mean(), rel=1e-12)
    for q in (0.01, 0.05, 0.5, 0.9, 0.99):
        assert both.quantile(q) == pytest.approx(np.quantile(allv, q), rel=2e-3, abs=1e-9)
    with pytest.raises(ValueError, match="^q"):
        both.quantile(1.5)


def test_replica_cache_lru_ttl_and_budget() -> None:
    lru = ReplicaCache(CachePolicy(budget_bytes=250, policy="lru"))
    lru.put(1, 100, 0.0)
    lru.put(2, 100, 1.0)
    assert lru.lookup(1, 2.0)  # 1 is now the most recently used
    lru.put(3, 100, 3.0)  # 300 > 250: the least recently used (2) goes
    assert lru.evictions == 1 and not lru.lookup(2, 4.0) and lru.lookup(1, 4.0) and lru.total == 200
    lru.put(1, 120, 5.0)  # replacing an entry returns its bytes first
    assert lru.total == 220 and lru.evictions == 1
    lru.put(9, 1000, 6.0)  # larger than the budget: nothing stays
    assert lru.total == 0 and not lru.entries
    lru.discard(9, 7.0)
    assert lru.series is None
    ttl = ReplicaCache(CachePolicy(budget_bytes=None, policy="ttl", ttl_s=10.0))
    ttl.put(1, 100, 0.0)
    ttl.put(2, 100, 5.0)
    assert ttl.lookup(1, 9.0)  # used at 9: lives until 19
    assert not ttl.lookup(2, 15.5)  # idle for 10.5 s: expired, a miss
    assert ttl.expirations == 1 and ttl.total == 100
    assert ttl.lookup(1, 19.0) and not ttl.lookup(1, 29.5)
    with pytest.raises(ValueError, match="^policy"):
        CachePolicy(policy="fifo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^budget_bytes"):
        CachePolicy(budget_bytes=-1)


def test_cache_bytes_model() -> None:
    m = CacheModel()
    assert entry_bytes(1000, m) == 1000 * 8 + m.tool_definition_bytes + m.sampling_bytes
    assert sum(m.components(1000).values()) == entry_bytes(1000, m)
    assert entry_bytes(1234, CacheModel.text_only(4.0)) == int(1234 * 4.0)
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("1.5GB") == 1_500_000_000 and parse_bytes(7) == 7
    with pytest.raises(ValueError, match="^budget"):
        parse_bytes("lots")
    with pytest.raises(ValueError, match="^sampling_bytes"):
        CacheModel(sampling_bytes=-1)


def test_budget_evicts_and_fallbacks_cost_end_to_end() -> None:
    p = load_profile("websocket")
    w = load_workload("codex_bugfix", **SMALL)
    model = CacheModel.for_profile(p)
    per_conn = entry_bytes(w.initial_context_tokens * 2, model)
    kw = dict(rollouts=60, agents=60, seed=2, jitter=0.2, record="stream")
    free = run(p, w, cache=CachePolicy(None, model=model), **kw).metrics
    tight = run(p, w, cache=CachePolicy(20 * per_conn, model=model), **kw).metrics
    assert free is not None and tight is not None
    assert free.hit_rate == 1.0 and free.fallbacks == 0 and free.cache_evictions == 0
    assert tight.cache_evictions > 0 and tight.hit_rate < 1.0
    assert tight.fallbacks == tight.cache_misses
    assert max(tight.cache_peak_bytes) <= 20 * per_conn < max(free.cache_peak_bytes)
    assert np.all(tight.e2e_s >= free.e2e_s - 1e-9) and tight.e2e_s.mean() > free.e2e_s.mean()
    # Spans show the same fallbacks: attempts beyond the first, each a full-context resend.
    spans = run(p, w, cache=CachePolicy(20 * per_conn, model=model), **{**kw, "record": "spans"})
    assert rollout_metrics(spans.spans)["fallbacks"].sum() == tight.fallbacks
    assert spans.cache is not None and spans.cache.misses == tight.cache_misses
    # A TTL shorter than the tools drops idle entries without any budget.
    ttl = run(p, w, cache=CachePolicy(None, policy="ttl", ttl_s=0.05, model=model), **kw).metrics
    assert ttl is not None and ttl.cache_expirations > 0 and ttl.hit_rate < 1.0


def test_http_profiles_ignore_the_connection_cache() -> None:
    w = load_workload("codex_bugfix", **SMALL)
    res = run(load_profile("http_chained"), w, rollouts=5, cache=CachePolicy(0), record="stream")
    assert res.metrics is not None and res.metrics.cache_hits + res.metrics.cache_misses == 0
    assert res.metrics.fallbacks == 0


class TraceLike:
    """Any object with ``name`` and ``turn_specs(seed)``: the DES reads nothing else of a workload."""

    name = "trace_like"

    def turn_specs(self, seed: int | None = None) -> tuple[TurnSpec, ...]:
        k = (seed or 0) % 3
        return (
            TurnSpec(0, 0, 5000 + k, 200, 1.5, False),
            TurnSpec(1, 5200 + k, 800, 150, 0.0, False, steered=True),
            TurnSpec(2, 6150 + k, 300, 400, 0.0, True),
        )


def test_any_workload_object_with_turn_specs() -> None:
    res = run(load_profile("websocket"), TraceLike(), rollouts=3, jitter=0.1)
    assert res.spans is not None
    assert sorted(res.spans.turn.unique()) == [0, 1, 2] and (res.spans.stage == "tool").sum() == 3
    with pytest.raises(ValueError, match="^workload"):
        run(load_profile("websocket"), object(), rollouts=1)


def test_shards_are_independent_of_the_executor() -> None:
    spec = fleet_spec(
        "websocket",
        load_workload("codex_bugfix", **SMALL),
        agents=60,
        replicas=3,
        api_workers=4,
        inference_slots=6,
        cache=CachePolicy(2_000_000),
        seed=9,
    )
    local = run_fleet(spec)
    with ThreadPoolExecutor(max_workers=3) as pool:
        threaded = run_fleet(spec, pool)
    a, b = local.to_dict(), threaded.to_dict()
    for key in ("wall_s", "peak_rss_mb", "executor", "shard_seconds_max"):
        a.pop(key), b.pop(key)
    assert a == b
    np.testing.assert_array_equal(local.metrics.e2e_s, threaded.metrics.e2e_s)
    # Shards differ by seed, and merging is shard by shard.
    assert local.metrics.rollouts == 60 and len(local.shard_seconds) == 3
    other = run_fleet(FleetSpec(**{**spec.__dict__, "seed": 10}))
    assert not np.array_equal(other.metrics.e2e_s, local.metrics.e2e_s)
    assert merge([local.metrics]).to_dict() == local.metrics.to_dict()


def test_fleet_spec_validation() -> None:
    with pytest.raises(ValueError, match="^agents"):
        fleet_spec("websocket", agents=0)
    with pytest.raises(ValueError, match="^replicas"):
        fleet_spec("websocket", agents=2, replicas=3)
    with pytest.raises(ValueError, match="^routing"):
        fleet_spec(load_profile("http_chained", replicas=4, routing="random"), agents=8, replicas=2)


def test_fleet_cli_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fleet", "--agents", "40", "--replicas", "2", "--workload", "codex_bugfix", "--json"]
    assert main([*argv, "--cache-budget", "1MiB", "--api-workers", "4"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("agents", "rollouts", "e2e_p50_s", "e2e_p95_s", "wall_s", "peak_rss_mb"):
        assert key in d and d[key] is not None, key
    assert d["agents"] == 40 and d["rollouts"] == 40 and d["e2e_p95_s"] >= d["e2e_p50_s"] > 0
    assert d["cache_hit_rate"] is not None and d["spec"]["cache"]["budget_bytes"] == 2**20
    assert main(["fleet", "--agents", "4"]) == 0
    assert "end to end p50" in capsys.readouterr().out
    assert main(["fleet", "--agents", "4", "--cache-budget", "much"]) == 2


def test_pool_hands_servers_over_in_arrival_order() -> None:
    import simpy

    from labkit.sim.des import Pool

    env = simpy.Environment()
    pool = Pool(env, 1)
    order: list[int] = []

    def customer(i: int, hold: float):
        ev = pool.enter()
        if ev is not None:
            yield ev
        order.append(i)
        yield env.timeout(hold)
        pool.leave()

    for i in range(4):
        env.process(customer(i, 1.0))
    env.run()
    assert order == [0, 1, 2, 3] and env.now == 4.0
    assert pool.time_average(4.0) == pytest.approx((4 + 3 + 2 + 1) / 4)
    assert math.isclose(pool.area, 10.0) and pool.busy == 0
    assert pool.utilisation(4.0) == 1.0 and pool.utilisation(8.0) == 0.5


def test_fleet_sweep_table_still_builds() -> None:
    from labkit.analysis.fleet import fleet_sweep

    df = fleet_sweep(["websocket"], load_workload("codex_bugfix", **SMALL), [1, 8], api_workers=2, inference_slots=2)
    assert isinstance(df, pd.DataFrame) and len(df) == 2
    assert df.loc[df.agents == 8, "api_queue_s"].iloc[0] > df.loc[df.agents == 1, "api_queue_s"].iloc[0]


def _record_runs(monkeypatch: pytest.MonkeyPatch, beside: bool) -> list[tuple[str, set[str], bool]]:
    """Run every notebook through a fake run_one that notes what ran at the same time, and at what priority."""
    import threading
    import time

    from labkit.report import notebooks as nbrunner

    active: set[str] = set()
    log: list[tuple[str, set[str], bool]] = []
    lock = threading.Lock()

    def fake_run_one(name: str, out_root, background: bool = False, **kw):
        with lock:
            active.add(name)
            log.append((name, set(active), background))
        time.sleep(0.05)
        with lock:
            active.discard(name)
        return nbrunner.NotebookRun(name, 0.05, {}, None)

    monkeypatch.setattr(nbrunner, "run_one", fake_run_one)
    monkeypatch.setattr(nbrunner, "write_tour", lambda *a, **k: {})
    monkeypatch.setattr(nbrunner, "can_run_beside_live", lambda: beside)
    return log


def test_figures_runner_runs_live_notebooks_alone_where_there_is_no_idle_priority(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from labkit.report import notebooks as nbrunner

    log = _record_runs(monkeypatch, beside=False)
    runs = nbrunner.run_all(out_root=tmp_path, docs_dir=None, jobs=2, log=lambda s: None)
    assert [r.name for r in runs] == list(nbrunner.NOTEBOOKS)
    live = [entry for entry in log if entry[0] in nbrunner.LIVE_NOTEBOOKS]
    assert live and all(seen == {name} for name, seen, _ in live)  # nothing else ran beside it
    assert log[-len(live) :] == live  # and it ran last
    assert max(len(seen) for _, seen, _ in log) == 2  # the others did run two at a time
    assert not any(background for *_, background in log)
    assert nbrunner.default_jobs() >= 1
    with pytest.raises(ValueError, match="^jobs"):
        nbrunner.run_all(out_root=tmp_path, docs_dir=None, jobs=0, log=lambda s: None)


def test_figures_runner_runs_the_others_at_idle_priority_beside_the_live_notebooks(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from labkit.report import notebooks as nbrunner

    log = _record_runs(monkeypatch, beside=True)
    runs = nbrunner.run_all(out_root=tmp_path, docs_dir=None, jobs=2, log=lambda s: None)
    assert [r.name for r in runs] == list(nbrunner.NOTEBOOKS)
    for name, seen, background in log:
        assert background == (name not in nbrunner.LIVE_NOTEBOOKS)  # only the live ones keep normal priority
        assert len(seen & nbrunner.LIVE_NOTEBOOKS) <= 1  # live notebooks one at a time
        assert len(seen - nbrunner.LIVE_NOTEBOOKS) <= 2  # the others two at a time
    # The live notebook started with the first others, not after them.
    assert any(nbrunner.LIVE_NOTEBOOKS & seen and len(seen) > 1 for _, seen, _ in log)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="idle priority is Linux's SCHED_IDLE")
def test_idle_priority_reaches_every_thread_and_what_the_process_starts_later() -> None:
    import subprocess
    import sys

    from labkit.report.notebooks import idle_priority

    code = (
        "import os, subprocess, sys, threading, time; sys.stdin.readline(); "
        "t = threading.Thread(target=time.sleep, args=(0.2,)); t.start(); "
        "child = subprocess.run([sys.executable, '-c', 'import os; print(os.sched_getscheduler(0))'], "
        "capture_output=True, text=True).stdout.strip(); "
        "print(os.sched_getscheduler(0), child, flush=True); t.join()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert idle_priority(proc.pid)
        out, _ = proc.communicate("go\n", timeout=30)
    finally:
        proc.kill()
    assert out.split() == [str(os.SCHED_IDLE)] * 2
