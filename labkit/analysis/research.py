"""Tables the notebooks plot: sweeps and comparisons built on the closed form (and the DES where noted).

Notebook cells only set parameters and call these; every number a notebook prints comes from here or from
the model modules, so the narrative never carries a hard-coded result. All functions return tidy pandas
DataFrames (one row per observation) that the ``labkit.viz`` builders take directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import Profile, Workload, load_profile
from labkit.model.spans import SpanColumns
from labkit.sim.analytic import RolloutForecast, forecast

#: The four changes of the critical-path sprint, as the ``Profile`` fields each one touches.
OPTIMISATIONS: dict[str, tuple[str, ...]] = {
    "rendered-token cache": ("rendered_token_cache",),
    "config cache": ("config_cache",),
    "fewer hops": ("hops", "hop_latency_s"),
    "faster safety": ("safety_in_s", "safety_in_per_1k_s", "safety_out_s", "safety_out_per_1k_s"),
}


def tps_grid(lo: float = 20.0, hi: float = 4000.0, points: int = 25) -> np.ndarray:
    """Log-spaced decode speeds (tokens/s) from ``lo`` to ``hi`` inclusive."""
    if not (0 < lo < hi):
        raise ValueError(f"lo: need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    if points < 2:
        raise ValueError(f"points: must be >= 2, got {points!r}")
    return np.geomspace(lo, hi, int(points))


def _profiles(profiles: Iterable[str | Profile]) -> list[Profile]:
    return [p if isinstance(p, Profile) else load_profile(p) for p in profiles]


# -- 02: the critical path ----------------------------------------------------------------------------


def _sprint_fields(baseline: Profile, optimized: Profile, groups: Mapping[str, tuple[str, ...]]) -> None:
    grouped = {f for fields in groups.values() for f in fields}
    differ = {k for k, v in baseline.to_dict().items() if k != "name" and optimized.to_dict()[k] != v}
    stray = sorted(differ - grouped)
    if stray:
        raise ValueError(f"groups: fields {', '.join(stray)} differ between the profiles but are in no group")


def optimisation_effects(
    workload: Workload,
    baseline: str | Profile = "http_baseline",
    optimized: str | Profile = "http_optimized",
    groups: Mapping[str, tuple[str, ...]] = OPTIMISATIONS,
) -> pd.DataFrame:
    """How much each optimisation of the sprint cuts mean TTFT, measured two ways.

    ``alone``: the baseline with only this optimisation applied; ``leave_one_out``: the optimized profile
    with only this one reverted. When the effects simply add up the two columns agree; their gap measures
    how much the optimisations interact. Reductions are fractions of the baseline's mean TTFT.
    """
    b, o = _profiles([baseline, optimized])
    _sprint_fields(b, o, groups)
    t_base = forecast(b, workload).ttft_mean_s
    t_opt = forecast(o, workload).ttft_mean_s
    rows = []
    for name, fields in groups.items():
        alone = b.with_(**{f: getattr(o, f) for f in fields})
        loo = o.with_(**{f: getattr(b, f) for f in fields})
        t_alone = forecast(alone, workload).ttft_mean_s
        t_loo = forecast(loo, workload).ttft_mean_s
        rows.append(
            {
                "optimisation": name,
                "alone_ttft_s": t_alone,
                "alone_reduction": (t_base - t_alone) / t_base,
                "leave_one_out_ttft_s": t_loo,
                "leave_one_out_reduction": (t_loo - t_opt) / t_base,
            }
        )
    df = pd.DataFrame(rows).set_index("optimisation")
    df.attrs.update(baseline_ttft_s=t_base, optimized_ttft_s=t_opt, total_reduction=(t_base - t_opt) / t_base)
    return df


def sprint_steps(
    workload: Workload,
    baseline: str | Profile = "http_baseline",
    optimized: str | Profile = "http_optimized",
    groups: Mapping[str, tuple[str, ...]] = OPTIMISATIONS,
) -> list[tuple[str, RolloutForecast]]:
    """The sprint applied one optimisation after another: ``[(name, forecast after it), ...]``.

    The input of :func:`labkit.viz.ttft_waterfall` ``steps=``; the last step is the optimized profile.
    """
    b, o = _profiles([baseline, optimized])
    _sprint_fields(b, o, groups)
    steps = []
    cur = b
    for name, fields in groups.items():
        cur = cur.with_(**{f: getattr(o, f) for f in fields})
        steps.append((name, forecast(cur, workload)))
    return steps


# -- 01: the bottleneck ---------------------------------------------------------------------------------


def crossover_table(profiles: Iterable[str], workload: str) -> pd.DataFrame:
    """Per profile: the decode speed at which API + network overhead equals inference time."""
    from labkit.analysis.headline import crossover_tps

    rows = [{"profile": p, "crossover_tps": crossover_tps(p, workload)} for p in profiles]
    return pd.DataFrame(rows).set_index("profile")


def headline_text(h: Mapping[str, Any]) -> str:
    """The claims of OpenAI's engineering post next to the model's numbers, one line each."""
    return "\n".join(
        [
            f"workload {h['workload']} ({h['tool_calls']} tool calls), {h['baseline_profile']} vs the others",
            f"TTFT reduction of the critical-path sprint: model {h['ttft_reduction']:.1%}, "
            f"published {h['published_ttft_reduction']:.0%}",
            f"end-to-end reduction with WebSocket mode at 1,000 tokens/s: model {h['e2e_reduction_at_1000_tps']:.1%}, "
            f"published {h['published_e2e_reduction']:.0%}",
            f"the same at 65 tokens/s: model {h['e2e_reduction_at_65_tps']:.1%}",
            f"API-overhead share of the baseline: {h['overhead_share_at_65_tps']:.1%} at 65 tokens/s, "
            f"{h['overhead_share_at_1000_tps']:.1%} at 1,000 tokens/s",
            f"overhead equals inference at {h['crossover_tps']:,.0f} tokens/s",
        ]
    )


# -- 05: failures ---------------------------------------------------------------------------------------


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

    (p,) = _profiles([profile])
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

    (p,) = _profiles([profile])
    rows = []
    for limit in limits_s:
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


# -- 06: the fleet --------------------------------------------------------------------------------------


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


# -- publishing a notebook's figures -----------------------------------------------------------------


def publish(
    figures: Mapping[str, Any],
    out_dir: str | Path,
    formats: Sequence[str] = ("html", "png", "svg", "pdf"),
) -> dict[str, dict[str, Path]]:
    """Export a notebook's figures (one browser start for all) and keep each as plotly JSON too.

    The JSON lets ``labkit figures`` re-render a figure at another size (the README tour) without
    re-running the notebook. Prints one line per figure with the formats written.
    """
    from labkit.viz.export import export_many

    out = Path(out_dir)
    written = export_many([(fig, name) for name, fig in figures.items()], formats, out)
    for name, fig in figures.items():
        fig.write_json(out / f"{name}.json")
        print(f"{name}: {', '.join(written[name])} -> {out}")
    return written


__all__ = [
    "OPTIMISATIONS",
    "cache_memory",
    "capacity",
    "crossover_table",
    "erlang_check",
    "fallback_turn_cost",
    "flat_reference",
    "fleet_sweep",
    "headline_text",
    "limit_sweep",
    "optimisation_effects",
    "publish",
    "queue_waits",
    "reconnects",
    "sprint_steps",
    "tps_grid",
]
