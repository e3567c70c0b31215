"""``labkit fleet``: N concurrent agents on R replicas (the DES without spans), in-process or on Dask.

Examples::

    labkit fleet --agents 100000 --profile websocket --replicas 16 --json
    labkit fleet --agents 20000 --profile websocket --replicas 8 --cache-budget 2GiB --cache-policy lru
    labkit fleet --agents 100000 --profile websocket --replicas 16 --executor dask --workers 2
    labkit fleet --agents 100000 --profile websocket --replicas 16 --executor dask --scheduler tcp://HOST:8786
"""

from __future__ import annotations

import argparse
import json
import math
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack
from typing import Any

from labkit.model.cache import CacheModel, CachePolicy, parse_bytes
from labkit.sim.des import Faults
from labkit.sim.fleet import FleetRun, fleet_spec, run_fleet

NAME = "fleet"
HELP = "simulate N concurrent agents on R replicas (metrics without spans); shards replicas across Dask"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agents", type=int, required=True, help="concurrent agents")
    parser.add_argument("--profile", default="websocket", help="preset name or profile TOML (default: websocket)")
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset (default: codex_bugfix)")
    parser.add_argument("--replicas", type=int, default=1, help="API replicas; each is one shard (default: 1)")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s (default: the profile's)")
    parser.add_argument("--rollouts-per-agent", type=int, default=1, help="rollouts each agent runs (default: 1)")
    parser.add_argument("--api-workers", type=int, default=None, help="concurrent requests per replica")
    parser.add_argument("--inference-slots", type=int, default=None, help="inference slots per replica")
    parser.add_argument(
        "--cache-budget", default=None, help="connection-cache memory per replica, e.g. 512MiB or 4GB (default: none)"
    )
    parser.add_argument("--cache-policy", choices=["lru", "ttl"], default="lru", help="eviction policy (default lru)")
    parser.add_argument("--ttl", type=float, default=60.0, help="ttl policy: idle seconds before an entry goes")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="per-turn connection drop probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jitter", type=float, default=0.2, help="lognormal sigma of stage times (default 0.2)")
    parser.add_argument("--ramp", type=float, default=0.0, help="agents of a replica start over this many seconds")
    parser.add_argument(
        "--executor",
        choices=["none", "process", "dask"],
        default="none",
        help="where shards run: in this process, a local process pool, or Dask (default: none)",
    )
    parser.add_argument("--workers", type=int, default=2, help="process pool or LocalCluster workers (default 2)")
    parser.add_argument("--scheduler", default=None, help="Dask scheduler address (default: a LocalCluster)")
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, help="seconds to reach --scheduler (default: 10)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _executor(args: argparse.Namespace, stack: ExitStack) -> tuple[Executor | None, str]:
    if args.scheduler and args.executor != "dask":
        raise ValueError("scheduler: only with --executor dask")
    if args.workers < 1:
        raise ValueError(f"workers: must be >= 1, got {args.workers}")
    if args.executor == "process":
        return stack.enter_context(ProcessPoolExecutor(max_workers=args.workers)), f"process pool ({args.workers})"
    if args.executor == "dask":
        import distributed

        if args.scheduler:
            client = stack.enter_context(distributed.Client(args.scheduler, timeout=args.connect_timeout))
            return client.get_executor(), f"dask ({args.scheduler})"
        # Worker processes import only the installed package, as on a remote cluster.
        cluster = stack.enter_context(
            distributed.LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
        )
        client = stack.enter_context(distributed.Client(cluster))
        return client.get_executor(), f"dask LocalCluster ({args.workers} workers)"
    return None, "in-process"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def summary_lines(result: FleetRun) -> list[str]:
    d = result.to_dict()
    lines = [
        f"{d['agents']:,} agents on {d['replicas']} replica(s), profile {d['profile']}: {d['rollouts']:,} rollouts, "
        f"{d['turns']:,} turns ({d['executor']}, {d['shards']} shard(s))",
        f"end to end p50 {d['e2e_p50_s']:.2f} s, p95 {d['e2e_p95_s']:.2f} s; TTFT p95 {d['ttft_p95_s']:.3f} s",
    ]
    if d.get("api_wait_mean_s") == d.get("api_wait_mean_s"):  # not NaN: there are pools
        lines.append(
            f"queueing per request: API {d['api_wait_mean_s']:.3f} s mean, inference {d['inference_wait_mean_s']:.3f} s"
        )
    if d["cache_hits"] + d["cache_misses"]:
        lines.append(
            f"cache: hit rate {d['cache_hit_rate']:.1%}, {d['fallbacks']:,} fallbacks, peak "
            f"{d['cache_peak_bytes_per_replica'] / 2**20:,.0f} MiB per replica"
        )
    lines.append(f"wall {d['wall_s']:.1f} s, peak RSS {d['peak_rss_mb']:.0f} MB")
    return lines


def run(args: argparse.Namespace) -> int:
    cache = None
    if args.cache_budget is not None:
        from labkit.model import load_profile

        budget = parse_bytes(args.cache_budget, "cache_budget")
        model = CacheModel.for_profile(load_profile(args.profile))
        cache = CachePolicy(budget_bytes=budget, policy=args.cache_policy, ttl_s=args.ttl, model=model)
    spec = fleet_spec(
        args.profile,
        args.workload,
        decode_tps=args.tps,
        agents=args.agents,
        replicas=args.replicas,
        rollouts_per_agent=args.rollouts_per_agent,
        api_workers=args.api_workers,
        inference_slots=args.inference_slots,
        cache=cache,
        faults=Faults(drop_rate=args.drop_rate),
        seed=args.seed,
        jitter=args.jitter,
        ramp_s=args.ramp,
    )
    with ExitStack() as stack:
        executor, name = _executor(args, stack)
        result = run_fleet(spec, executor, name)
    if args.json:
        print(json.dumps(_jsonable(result.to_dict())))
    else:
        print("\n".join(summary_lines(result)))
    return 0
