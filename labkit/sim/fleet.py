"""A fleet of replicas, simulated shard by shard: each replica with its own agents, pools and cache memory.

A replica is one API server process with ``api_workers`` concurrent requests, its share of inference
(``inference_slots``) and ``cache`` memory for its connections' caches. Agents are placed on replicas
round-robin and stay there (WebSocket mode pins a connection to its replica; HTTP uses sticky routing), so
replicas share nothing and each is an independent DES run: a *shard*. Shard ``r`` gets its own seed derived
from the run's seed (``SeedSequence([seed, r])``), so the merged result is the same whichever executor ran
the shards, in whatever order (:func:`run_fleet` takes any ``concurrent.futures.Executor``: a process pool,
a Dask cluster's executor). Shards keep no spans (:mod:`labkit.sim.streaming`).
"""

from __future__ import annotations

import dataclasses
import math
import resource
import sys
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labkit.model import Profile, load_profile, load_workload
from labkit.model.cache import CachePolicy
from labkit.sim.des import Faults, Fleet, run
from labkit.sim.streaming import FleetMetrics, merge
from labkit.util.progress import map_done


@dataclass(frozen=True)
class FleetSpec:
    """What to simulate: ``agents`` concurrent agents on ``replicas`` replicas."""

    profile: Profile
    #: A Workload or any object with ``name`` and ``turn_specs(seed)``.
    workload: Any
    agents: int
    replicas: int = 1
    rollouts_per_agent: int = 1
    #: Per replica; ``None`` is unlimited.
    api_workers: int | None = None
    inference_slots: int | None = None
    cache: CachePolicy | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    jitter: float = 0.2
    #: Agents of a replica start spread evenly over this many seconds (0: all at once).
    ramp_s: float = 0.0
    #: Cache bytes are sampled this often (seconds of simulated time).
    sample_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("agents", "replicas", "rollouts_per_agent"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {v!r}")
        if self.replicas > self.agents:
            raise ValueError(f"replicas: more replicas ({self.replicas}) than agents ({self.agents})")
        if self.profile.routing == "random" and self.replicas > 1:
            raise ValueError("routing: a sharded fleet pins each agent to one replica; use sticky routing")
        if not (self.ramp_s >= 0 and math.isfinite(self.ramp_s)):
            raise ValueError(f"ramp_s: must be >= 0, got {self.ramp_s!r}")
        Fleet(self.api_workers, self.inference_slots)  # validates both

    def shard_seed(self, replica: int) -> int:
        return int(np.random.SeedSequence([self.seed, replica]).generate_state(1)[0])

    def shard_agents(self, replica: int) -> int:
        return len(range(replica, self.agents, self.replicas))

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "workload": getattr(self.workload, "name", type(self.workload).__name__),
            "agents": self.agents,
            "replicas": self.replicas,
            "rollouts_per_agent": self.rollouts_per_agent,
            "api_workers": self.api_workers,
            "inference_slots": self.inference_slots,
            "cache": self.cache.to_dict() if self.cache else None,
            "faults": dataclasses.asdict(self.faults),
            "seed": self.seed,
            "jitter": self.jitter,
            "ramp_s": self.ramp_s,
        }


@dataclass(frozen=True, eq=False)
class ShardResult:
    replica: int
    metrics: FleetMetrics
    seconds: float
    #: Peak resident memory of the process that ran the shard (MiB, over that process's life so far).
    peak_rss_mb: float


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_shard(spec: FleetSpec, replica: int) -> ShardResult:
    """One replica's DES run (module level, so executors pickle it to worker processes)."""
    agents = spec.shard_agents(replica)
    t0 = time.perf_counter()
    res = run(
        spec.profile.with_(replicas=1),
        spec.workload,
        rollouts=agents * spec.rollouts_per_agent,
        agents=agents,
        seed=spec.shard_seed(replica),
        jitter=spec.jitter,
        faults=spec.faults,
        fleet=Fleet(spec.api_workers, spec.inference_slots),
        cache=spec.cache,
        stagger_s=spec.ramp_s / agents,
        record="stream",
        sample_s=spec.sample_s,
    )
    assert res.metrics is not None
    return ShardResult(replica, res.metrics, time.perf_counter() - t0, peak_rss_mb())


def _run_shard_args(args: tuple[FleetSpec, int]) -> ShardResult:
    return run_shard(*args)


@dataclass(frozen=True, eq=False)
class FleetRun:
    """A fleet run: the merged metrics, wall time and peak memory (``to_dict`` is the ``labkit fleet`` JSON)."""

    spec: FleetSpec
    metrics: FleetMetrics
    wall_s: float
    peak_rss_mb: float
    executor: str
    shard_seconds: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        m = self.metrics.to_dict()
        out: dict[str, Any] = {
            # The contract of `labkit fleet --json`: these names stay.
            "agents": self.spec.agents,
            "rollouts": m["rollouts"],
            "e2e_p50_s": m["e2e_p50_s"],
            "e2e_p95_s": m["e2e_p95_s"],
            "wall_s": self.wall_s,
            "peak_rss_mb": self.peak_rss_mb,
            "profile": self.spec.profile.name,
            "replicas": self.spec.replicas,
            "executor": self.executor,
            "shards": len(self.shard_seconds),
            "shard_seconds_max": max(self.shard_seconds),
        }
        out.update({k: v for k, v in m.items() if k not in out})
        out["spec"] = self.spec.to_dict()
        return out


def run_fleet(spec: FleetSpec, executor: Executor | None = None, executor_name: str | None = None) -> FleetRun:
    """Every replica of ``spec`` as one shard, in-process or on ``executor``; merged in replica order."""
    t0 = time.perf_counter()
    jobs = [(spec, r) for r in range(spec.replicas)]
    shards = map_done(_run_shard_args, jobs, executor, desc=f"fleet shards ({spec.agents:,} agents)", unit="replica")
    shards.sort(key=lambda s: s.replica)
    metrics = merge([s.metrics for s in shards])
    return FleetRun(
        spec=spec,
        metrics=metrics,
        wall_s=time.perf_counter() - t0,
        peak_rss_mb=max([peak_rss_mb(), *(s.peak_rss_mb for s in shards)]),
        executor=executor_name or ("in-process" if executor is None else type(executor).__name__),
        shard_seconds=tuple(s.seconds for s in shards),
    )


def fleet_spec(
    profile: str | Profile,
    workload: Any = "codex_bugfix",
    *,
    decode_tps: float | None = None,
    **kwargs: Any,
) -> FleetSpec:
    """A :class:`FleetSpec` from preset names (``decode_tps`` overrides the profile's)."""
    prof = load_profile(profile) if isinstance(profile, str) else profile
    if decode_tps is not None:
        prof = prof.with_(decode_tps=float(decode_tps))
    work = load_workload(workload) if isinstance(workload, str) else workload
    return FleetSpec(profile=prof, workload=work, **kwargs)
