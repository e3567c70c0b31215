"""Failures: what dropped connections, cache evictions and the 60-minute connection limit cost."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from labkit.model import Profile, Workload, load_profile
from labkit.util.progress import progress


def reconnects(spans: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and rollout: new connections opened after the first turn, and retried attempts.

    A reconnect after the first turn means a full-context turn (the connection cache died with the socket),
    whether or not the turn itself failed (the 60-minute limit closes an idle socket between turns).
    Connections are seen through their ``connect`` spans, so the profile needs ``connect_s > 0``.
    """
    conn = spans[(spans["stage"] == "connect") & (spans["turn"] > 0) & (spans["end_s"] > spans["start_s"])]
    keys = ["scenario", "rollout"]
    index = spans.groupby(keys).size().index
    return pd.DataFrame(
        {
            "reconnects": conn.groupby(keys).size().reindex(index, fill_value=0),
            "retried_turns": spans[spans["attempt"] > 0].groupby(keys)["turn"].nunique().reindex(index, fill_value=0),
        }
    ).reset_index()


def fallback_turn_cost(profile: str | Profile, workload: Workload) -> pd.DataFrame:
    """Per turn: request time with the connection cache (hit) and as a full-context fallback on a new
    connection (miss), and the extra seconds one fallback costs at that point of the rollout."""
    from labkit.model import CacheState, plan_total_s, plan_turn

    p = load_profile(profile)
    rows = []
    for spec in workload.turn_specs():
        if spec.index == 0:
            continue
        hit = plan_total_s(plan_turn(p, spec, CacheState(True, True, True)))
        miss = plan_total_s(plan_turn(p, spec, CacheState(False, False, False)))
        rows.append((spec.index, spec.conversation_tokens, hit, miss, miss - hit))
    return pd.DataFrame(rows, columns=["turn", "conversation_tokens", "hit_s", "fallback_s", "extra_s"])


def flat_reference(df: pd.DataFrame, reference: str, x: str, at: float = 0.0) -> pd.DataFrame:
    """``df`` with the ``reference`` scenario's rows replaced by its row at ``x == at``, repeated at every
    ``x``: "what if only the other scenarios suffered the failures" (e.g. HTTP without drops)."""
    col = "scenario" if "scenario" in df.columns else "profile"
    ref = df[(df[col] == reference) & (df[x] == at)]
    if ref.empty:
        raise ValueError(f"reference: no row of {reference!r} at {x} = {at}")
    others = df[df[col] != reference]
    xs = sorted(df[x].unique())
    repeated = pd.concat([ref.assign(**{x: v}) for v in xs], ignore_index=True)
    return pd.concat([others, repeated], ignore_index=True)


def limit_sweep(
    profile: str | Profile,
    workload: Workload,
    limits_s: Sequence[float],
    *,
    rollouts: int = 10,
    seed: int = 0,
    jitter: float = 0.2,
) -> pd.DataFrame:
    """WebSocket mode under a connection lifetime limit, with the DES: per limit, mean end to end, p95, and
    reconnects per rollout (each one a full-context turn on a fresh socket)."""
    from labkit.analysis.metrics import rollout_metrics
    from labkit.sim.des import Faults, simulate

    p = load_profile(profile)
    rows = []
    for limit in progress(limits_s, desc="connection limits", unit="limit"):
        spans = simulate(
            p, workload, rollouts=rollouts, seed=seed, jitter=jitter, faults=Faults(connection_limit_s=float(limit))
        )
        rm = rollout_metrics(spans)
        rc = reconnects(spans)
        rows.append(
            {
                "scenario": p.name,
                "connection_limit_s": float(limit),
                "e2e_s": float(rm["e2e_s"].mean()),
                "e2e_p95_s": float(rm["e2e_s"].quantile(0.95)),
                "reconnects": float(rc["reconnects"].mean()),
            }
        )
    return pd.DataFrame(rows)
