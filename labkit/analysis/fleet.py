"""The fleet: queueing on shared API workers and inference slots, capacity, and cache memory."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from labkit.analysis.profiles import as_profiles as _profiles
from labkit.model import Profile, Workload
from labkit.model.spans import SpanColumns


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
        for rho in utilisations:
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
    for p in _profiles(profiles):
        for a in agents:
            res = run(
                p, workload, rollouts=int(a) * rollouts_per_agent, agents=int(a), seed=seed, jitter=jitter, fleet=fleet
            )
            assert not isinstance(res, SpanColumns)
            spans = res.spans
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
