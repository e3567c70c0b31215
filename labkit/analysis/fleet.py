"""The fleet: queueing on shared API workers and inference slots, capacity, and cache memory."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import Profile, Workload, load_profile
from labkit.util.progress import progress


def erlang_check(
    utilisations: Sequence[float],
    servers: Sequence[int],
    service_s: float = 0.1,
    customers: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """The DES's resource pool as an M/M/c queue against Erlang C: ``servers, utilisation, wait_s,
    erlang_wait_s, rel_error``, with ``wait_s_ci`` from batch means (10 batches)."""
    from labkit.sim.analytic import mmc_mean_wait
    from labkit.sim.queueing import simulate_mmc

    if service_s <= 0:
        raise ValueError(f"service_s: must be > 0, got {service_s!r}")
    mu = 1.0 / service_s
    rows = []
    for c in servers:
        for rho in progress(utilisations, desc=f"Erlang check, {c} servers", unit="point"):
            if not 0 < rho < 1:
                raise ValueError(f"utilisations: each must be within (0, 1), got {rho!r}")
            lam = rho * c * mu
            runs = [
                simulate_mmc(lam, mu, int(c), customers=customers // 5, seed=seed + k, warmup=customers // 50)
                for k in range(5)
            ]
            waits = np.array([r.mean_wait_s for r in runs])
            theory = mmc_mean_wait(lam, mu, int(c))
            rows.append(
                {
                    "servers": int(c),
                    "utilisation": float(rho),
                    "wait_s": float(waits.mean()),
                    "wait_s_ci": float(1.96 * waits.std(ddof=1) / math.sqrt(len(waits))),
                    "erlang_wait_s": theory,
                    "rel_error": float(waits.mean() / theory - 1) if theory > 0 else math.nan,
                }
            )
    return pd.DataFrame(rows)


def fleet_sweep(
    profiles: Iterable[str | Profile],
    workload: Workload,
    agents: Sequence[int],
    *,
    api_workers: int | None = None,
    inference_slots: int | None = None,
    rollouts_per_agent: int = 2,
    seed: int = 0,
    jitter: float = 0.2,
) -> pd.DataFrame:
    """Many agents on finite API workers (per replica) and inference slots, with the DES.

    One row per (profile, agents): ``e2e_s`` mean and p95, ``ttft_p95_s``, mean queueing per turn
    (``api_queue_s``, ``inference_queue_s``: waits beyond the unloaded ``queue_s``), completed rollouts
    per minute, and the inference pool's time-average occupancy.
    """
    from labkit.analysis.metrics import rollout_metrics, turn_metrics
    from labkit.sim.des import Fleet, run

    fleet = Fleet(api_workers=api_workers, inference_slots=inference_slots)
    rows = []
    for p in map(load_profile, profiles):
        for a in progress(agents, desc=f"fleet sweep {p.name}", unit="point"):
            res = run(
                p, workload, rollouts=int(a) * rollouts_per_agent, agents=int(a), seed=seed, jitter=jitter, fleet=fleet
            )
            spans = res.spans
            assert spans is not None
            rm, tm = rollout_metrics(spans), turn_metrics(spans)
            dur = spans["end_s"] - spans["start_s"]
            turns = len(tm)
            api_wait = float(dur[spans["stage"] == "api_queue"].sum()) / turns
            inf_wait = float(dur[(spans["stage"] == "queue")].sum()) / turns - p.queue_s
            rows.append(
                {
                    "scenario": p.name,
                    "agents": int(a),
                    "e2e_s": float(rm["e2e_s"].mean()),
                    "e2e_p95_s": float(rm["e2e_s"].quantile(0.95)),
                    "ttft_mean_s": float(tm["ttft_s"].mean()),
                    "ttft_p95_s": float(tm["ttft_s"].quantile(0.95)),
                    "api_queue_s": api_wait,
                    "inference_queue_s": max(0.0, inf_wait),
                    "rollouts_per_min": len(rm) / res.until * 60,
                    "inference_busy": res.inference_time_average,
                }
            )
    return pd.DataFrame(rows)


def queue_waits(fleet: pd.DataFrame) -> pd.DataFrame:
    """:func:`fleet_sweep` rows in long form: ``scenario, agents, queue`` (``API workers`` | ``inference``),
    ``queue_wait_s`` (mean seconds per turn)."""
    long = fleet.melt(
        id_vars=["scenario", "agents"],
        value_vars=["api_queue_s", "inference_queue_s"],
        var_name="queue",
        value_name="queue_wait_s",
    )
    return long.assign(queue=long["queue"].map({"api_queue_s": "API workers", "inference_queue_s": "inference"}))


def capacity(df: pd.DataFrame, column: str = "e2e_p95_s", slack: float = 0.2) -> pd.DataFrame:
    """Per scenario: the most agents whose ``column`` stays within ``1 + slack`` of the fewest agents'."""
    if slack < 0:
        raise ValueError(f"slack: must be >= 0, got {slack!r}")
    rows = []
    for name, g in df.sort_values("agents").groupby("scenario", sort=False):
        base = float(g[column].iloc[0])
        ok = g[g[column] <= base * (1 + slack)]
        rows.append({"scenario": name, "max_agents": int(ok["agents"].max()), f"unloaded_{column}": base})
    return pd.DataFrame(rows).set_index("scenario")


def cache_memory(workload: Workload, bytes_per_token: float, connections: Sequence[int] = (1,)) -> pd.DataFrame:
    """What a connection-scoped cache holds after each turn (the whole conversation: its items and its
    rendered tokens, ``bytes_per_token`` together), and the total for ``connections`` open sockets."""
    if bytes_per_token <= 0:
        raise ValueError(f"bytes_per_token: must be > 0, got {bytes_per_token!r}")
    rows = []
    for spec in workload.turn_specs():
        held = spec.conversation_tokens + spec.output_tokens
        for n in connections:
            rows.append((spec.index, held, int(n), held * bytes_per_token * int(n) / 2**20))
    return pd.DataFrame(rows, columns=["turn", "cached_tokens", "connections", "cache_mib"])


# -- the fleet at scale (streamed metrics, one replica per shard) ---------------------------------------


def scale_sweep(
    profiles: Iterable[str | Profile],
    workload: Any,
    agents_per_replica: Sequence[int],
    *,
    api_workers: int | None,
    inference_slots: int | None,
    rollouts_per_agent: int = 1,
    seed: int = 0,
    jitter: float = 0.2,
    cache: Any = None,
) -> pd.DataFrame:
    """One replica with ``a`` agents for each ``a`` in ``agents_per_replica``, per profile (streamed, no spans).

    Replicas share nothing (agents are pinned), so a fleet of N agents on N / a replicas has this replica's
    distribution: one row per (scenario, agents_per_replica) with end to end mean/p50/p95, TTFT p95, mean
    queueing per request (``api_wait_s``, ``inference_wait_s``), utilisations and the cache hit rate.
    """
    from labkit.sim.fleet import FleetSpec, run_shard

    rows = []
    for p in map(load_profile, profiles):
        for a in progress(agents_per_replica, desc=f"replica sizes {p.name}", unit="size"):
            spec = FleetSpec(
                profile=p,
                workload=workload,
                agents=int(a),
                rollouts_per_agent=rollouts_per_agent,
                api_workers=api_workers,
                inference_slots=inference_slots,
                cache=cache,
                seed=seed,
                jitter=jitter,
            )
            m = run_shard(spec, 0).metrics
            d = m.to_dict()
            rows.append(
                {
                    "scenario": p.name,
                    "agents_per_replica": int(a),
                    "e2e_s": d["e2e_mean_s"],
                    "e2e_p50_s": d["e2e_p50_s"],
                    "e2e_p95_s": d["e2e_p95_s"],
                    "ttft_p95_s": d["ttft_p95_s"],
                    "api_wait_s": d["api_wait_mean_s"],
                    "inference_wait_s": d["inference_wait_mean_s"],
                    "api_utilisation": d.get("api_utilisation", math.nan),
                    "inference_utilisation": d.get("inference_utilisation", math.nan),
                    "cache_hit_rate": d["cache_hit_rate"],
                }
            )
    return pd.DataFrame(rows)


def replicas_needed(df: pd.DataFrame, agents: int, target_p95_s: float, column: str = "e2e_p95_s") -> pd.DataFrame:
    """Per scenario of a :func:`scale_sweep`: the most agents per replica whose ``column`` meets the target,
    and the replicas ``agents`` concurrent agents then need (``NaN`` when no tried load meets it)."""
    if not target_p95_s > 0:
        raise ValueError(f"target_p95_s: must be > 0, got {target_p95_s!r}")
    rows = []
    for name, g in df.sort_values("agents_per_replica").groupby("scenario", sort=False):
        ok = g[g[column] <= target_p95_s]
        per = int(ok["agents_per_replica"].max()) if len(ok) else None
        rows.append(
            {
                "scenario": name,
                "max_agents_per_replica": per,
                "replicas": math.ceil(agents / per) if per else math.nan,
                f"{column}_at_max": float(ok[column].iloc[-1]) if len(ok) else math.nan,
            }
        )
    return pd.DataFrame(rows).set_index("scenario")


def gain_under_load(df: pd.DataFrame, baseline: str, candidate: str, column: str = "e2e_p95_s") -> pd.DataFrame:
    """The candidate's gain over the baseline at each load: ``baseline column / candidate column``."""
    b = df[df["scenario"] == baseline].set_index("agents_per_replica")[column]
    c = df[df["scenario"] == candidate].set_index("agents_per_replica")[column]
    if b.empty or c.empty:
        raise ValueError(f"scenario: need rows for both {baseline!r} and {candidate!r}")
    out = (b / c).rename("gain").dropna().reset_index()
    return out.assign(scenario=candidate, baseline=baseline, metric=column)


def cache_budget_sweep(
    profile: Profile,
    workload: Any,
    agents: int,
    budgets: Sequence[int],
    *,
    policies: Sequence[str] = ("lru", "ttl"),
    ttl_s: float = 5.0,
    model: Any = None,
    seed: int = 0,
    jitter: float = 0.2,
    api_workers: int | None = None,
    inference_slots: int | None = None,
) -> pd.DataFrame:
    """One replica's connection-cache memory budget against hit rate, fallbacks and end to end, per policy.

    One row per (policy, budget): ``budget_mib``, ``hit_rate``, ``fallbacks_per_rollout``, ``e2e_s`` (mean),
    ``e2e_p95_s``, ``peak_mib`` and ``mean_mib`` (what the caches actually held).
    """
    from labkit.model.cache import CacheModel, CachePolicy
    from labkit.sim.fleet import FleetSpec, run_shard

    model = model or CacheModel.for_profile(profile)
    rows = []
    for policy in policies:
        for b in progress(budgets, desc=f"cache budgets {policy}", unit="budget"):
            spec = FleetSpec(
                profile=profile,
                workload=workload,
                agents=int(agents),
                api_workers=api_workers,
                inference_slots=inference_slots,
                cache=CachePolicy(int(b), policy=policy, ttl_s=ttl_s, model=model),  # type: ignore[arg-type]
                seed=seed,
                jitter=jitter,
            )
            m = run_shard(spec, 0).metrics
            rows.append(
                {
                    "policy": policy if policy == "lru" else f"ttl {ttl_s:g} s",
                    "budget_mib": int(b) / 2**20,
                    "hit_rate": m.hit_rate,
                    "fallbacks_per_rollout": m.fallbacks / m.rollouts,
                    "e2e_s": float(np.mean(m.e2e_s)),
                    "e2e_p95_s": m.e2e_quantile(0.95),
                    "peak_mib": max(m.cache_peak_bytes) / 2**20,
                    "mean_mib": float(np.mean(m.cache_mean_bytes)) / 2**20,
                }
            )
    return pd.DataFrame(rows)


def cache_footprint(workload: Any, model: Any, agents_per_replica: int, seed: int | None = None) -> pd.DataFrame:
    """Bytes one connection's cache entry holds at its largest (the last turn), per component, and what
    ``agents_per_replica`` such connections need on one replica (no eviction)."""
    from labkit.model.cache import entry_bytes, turn_entry_tokens

    specs = workload.turn_specs(seed)
    peak = max(turn_entry_tokens(s.context_tokens, s.new_input_tokens, s.output_tokens) for s in specs)
    parts = model.components(peak)
    rows = [
        {"component": k, "bytes_per_connection": v, "mib_per_replica": v * agents_per_replica / 2**20}
        for k, v in parts.items()
    ]
    total = entry_bytes(peak, model)
    rows.append(
        {"component": "total", "bytes_per_connection": total, "mib_per_replica": total * agents_per_replica / 2**20}
    )
    return pd.DataFrame(rows).assign(peak_tokens=peak)
