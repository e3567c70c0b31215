"""Sweeps on a real cluster engine: a Dask ``LocalCluster``'s executor gives the in-process results."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.sim.sweep import sweep

pytestmark = pytest.mark.live

distributed = pytest.importorskip("distributed")

GRID = {
    "profile": ["http_baseline", "websocket"],
    "decode_tps": [65.0, 1000.0],
    "method": ["des"],
    "rollouts": [3],
    "seed": [0, 7],
    "jitter": [0.2],
    "drop_rate": [0.05],
}


def test_local_cluster_equals_in_process() -> None:
    expected = sweep(GRID)
    assert len(expected) == 8
    # Two worker processes: grid points travel pickled to other interpreters, as on a remote cluster.
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = sweep(GRID, executor=client.get_executor())
        # A list-of-dicts grid with the analytic method goes through the same executor.
        analytic = [{"profile": "websocket", "decode_tps": tps} for tps in (65.0, 1000.0, 4000.0)]
        got_analytic = sweep(analytic, executor=client.get_executor())
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(got_analytic, sweep(analytic))
    # The seeds matter: different seeds give different DES results, so equality above is not vacuous.
    by_seed = expected.groupby("seed")["e2e_s"].sum()
    assert by_seed.loc[0] != by_seed.loc[7]


def test_sharded_fleet_on_a_local_cluster_equals_in_process() -> None:
    from labkit.model import load_workload
    from labkit.model.cache import CachePolicy
    from labkit.sim.fleet import fleet_spec, run_fleet

    spec = fleet_spec(
        "websocket",
        load_workload("codex_bugfix", turns=6),
        agents=40,
        replicas=4,
        api_workers=3,
        inference_slots=5,
        cache=CachePolicy(1_500_000),
        seed=3,
    )
    local = run_fleet(spec)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = run_fleet(spec, client.get_executor(), "dask")
    a, b = local.to_dict(), remote.to_dict()
    for key in ("wall_s", "peak_rss_mb", "executor", "shard_seconds_max"):
        a.pop(key), b.pop(key)
    assert a == b
    assert (local.metrics.e2e_s == remote.metrics.e2e_s).all()
    assert local.metrics.cache_evictions > 0 and local.metrics.api_wait.total > 0  # the shards did share work
