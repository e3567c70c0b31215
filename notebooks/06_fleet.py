# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · The fleet: tens of thousands of agents on replicas, queues and cache memory
#
# **Question.** OpenAI's engineering post describes Codex moving most of its Responses API traffic onto
# WebSocket mode. At that scale, tens of thousands of concurrent agents, three questions decide a
# deployment: how many replicas keep the tail latency within a target, how much memory the
# connection-scoped caches need, and what queueing does to WebSocket mode's gain.
#
# **Method.** First the model's queue itself is checked against theory: the DES's resource pool fed as an
# M/M/c queue (Poisson arrivals, exponential service) against Erlang C. Then the fleet: each replica has
# its own API workers, its share of inference slots and its own cache memory, and every agent is pinned to
# one replica (a WebSocket connection stays on its replica; HTTP uses sticky routing). Replicas then share
# nothing, so a fleet of N agents on R replicas is R independent runs of N / R agents: the DES runs one
# replica per load level, keeps no spans (streamed metrics), and `labkit fleet` runs whole fleets shard by
# shard, on Dask if asked. Agents are a closed system: each runs its rollout back to back, turn after
# tool, with ±20% jitter on every stage.
#
# **Caveat up front.** Erlang C describes open arrivals; it checks the queue mechanics, not the fleet. The
# API workers and inference slots per replica are assumptions (parameters below), not published figures.

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/06_fleet"
formats = ["html", "png", "svg", "pdf"]
workload_name = "codex_bugfix"
decode_tps = 1000
profiles = ["http_optimized", "websocket"]
utilisations = [0.3, 0.5, 0.7, 0.8, 0.9]  # M/M/c check
servers = [1, 4, 16]
customers = 20_000  # per M/M/c point
fleet_agents = 100_000  # the fleet the answers are for
target_p95_s = 40.0  # tail-latency target per rollout
agents_per_replica = [1, 10, 20, 30, 40, 60, 80, 120]
api_workers = 16  # concurrent requests one API replica works on
inference_slots = 128  # inference slots per replica
jitter = 0.2
cache_shares = [0.1, 0.2, 0.35, 0.5, 0.75, 1.0]  # budget / what every connection would hold at its peak
ttl_s = 0.5  # the TTL policy drops an entry idle this long
check_replicas = 8  # a whole sharded fleet, to check that one replica stands for all

# %%
import math

from labkit import viz
from labkit.analysis import fleet as fleet_tables
from labkit.model import load_profile, load_workload
from labkit.model.cache import CacheModel
from labkit.sim.fleet import FleetSpec, run_fleet
from labkit.viz import fleet as fleet_figures

workload = load_workload(workload_name)
if fast:
    utilisations, servers, customers = utilisations[::2], servers[:2], 4_000
    agents_per_replica, cache_shares, check_replicas = [1, 20, 60], [0.2, 0.5, 1.0], 2
fleet_profiles = [load_profile(p, decode_tps=decode_tps) for p in profiles]
baseline, candidate = profiles
figures = {}

# %% [markdown]
# ## Result 1: the simulated queue against Erlang C

# %%
mmc = fleet_tables.erlang_check(utilisations, servers, customers=customers)
figures["queueing_vs_erlang_c"] = viz.fleet_queueing(
    mmc, x="utilisation", sim="wait_s", theory="erlang_wait_s", by="servers"
)
within = (abs(mmc["wait_s"] - mmc["erlang_wait_s"]) <= mmc["wait_s_ci"]).mean()
worst = mmc.loc[mmc["rel_error"].abs().idxmax()]
print(
    f"The pool's mean wait is within its 95% interval of Erlang C at {within:.0%} of {len(mmc)} points; the "
    f"largest relative error, {worst['rel_error']:+.0%}, is at {worst['servers']:.0f} servers and utilisation "
    f"{worst['utilisation']:.1f}, where the wait itself is only {worst['erlang_wait_s'] * 1e3:.2g} ms."
)
figures["queueing_vs_erlang_c"]

# %% [markdown]
# ## Result 2: replicas for a p95 target

# %%
scale = fleet_tables.scale_sweep(
    fleet_profiles,
    workload,
    agents_per_replica,
    api_workers=api_workers,
    inference_slots=inference_slots,
    jitter=jitter,
)
needed = fleet_tables.replicas_needed(scale, fleet_agents, target_p95_s)
figures["replica_load"] = fleet_figures.replica_load(scale, target_p95_s)
if needed["replicas"].notna().all():
    print(
        f"For {fleet_agents:,} agents at p95 <= {target_p95_s:g} s, {candidate} needs "
        f"{needed.loc[candidate, 'replicas']:,.0f} replicas where {baseline} needs "
        f"{needed.loc[baseline, 'replicas']:,.0f} "
        f"({needed.loc[baseline, 'replicas'] / needed.loc[candidate, 'replicas']:.1f}x)."
    )
for name, row in needed.iterrows():
    if math.isnan(row["replicas"]):
        print(f"{name}: no load tried meets p95 <= {target_p95_s:g} s, even {min(agents_per_replica)} agent(s).")
    else:
        print(
            f"{name}: up to {row['max_agents_per_replica']:.0f} agents per replica keep p95 within "
            f"{target_p95_s:g} s, so {fleet_agents:,} agents need {row['replicas']:,.0f} replicas."
        )
figures["replica_load"]

# %%
scale.round(3)

# %% [markdown]
# ## Result 3: what queueing does to WebSocket mode's gain

# %%
gain = fleet_tables.gain_under_load(scale, baseline, candidate)
figures["gain_under_load"] = fleet_figures.gain_under_load(gain)
g_lo, g_hi = gain.iloc[0], gain.iloc[-1]
busiest = scale[scale["agents_per_replica"] == g_hi["agents_per_replica"]].set_index("scenario")
print(
    f"WebSocket mode's p95 speed-up over {baseline} grows from {g_lo['gain']:.2f}x at "
    f"{g_lo['agents_per_replica']:.0f} agent(s) per replica to {g_hi['gain']:.2f}x at "
    f"{g_hi['agents_per_replica']:.0f}: API workers are the shared resource "
    f"({busiest.loc[baseline, 'api_utilisation']:.0%} busy for {baseline}, "
    f"{busiest.loc[candidate, 'api_utilisation']:.0%} for {candidate}), and WebSocket mode needs less API work "
    "per turn, so it queues less."
)
figures["gain_under_load"]

# %% [markdown]
# ## Result 4: cache memory per replica, and what a smaller budget costs

# %%
ws = fleet_profiles[profiles.index(candidate)]
model = CacheModel.for_profile(ws)
per_replica = needed.loc[candidate, "max_agents_per_replica"]
per_replica = int(per_replica) if per_replica == per_replica else max(agents_per_replica)
footprint = fleet_tables.cache_footprint(workload, model, per_replica)
full = int(footprint.iloc[-1]["mib_per_replica"] * 2**20)
print(
    f"One connection's cache holds up to {footprint.iloc[-1]['bytes_per_connection'] / 2**20:.2f} MiB "
    f"(the last turn, {footprint['peak_tokens'].iloc[0]:,} tokens); {per_replica} connections per replica "
    f"need {full / 2**20:,.0f} MiB if nothing is evicted, {full * fleet_agents / per_replica / 2**30:,.1f} GiB "
    f"across the fleet."
)
footprint

# %%
budgets = [int(full * s) for s in cache_shares]
sweep = fleet_tables.cache_budget_sweep(
    ws,
    workload,
    per_replica,
    budgets,
    ttl_s=ttl_s,
    model=model,
    jitter=jitter,
    api_workers=api_workers,
    inference_slots=inference_slots,
)
figures["cache_budget"] = fleet_figures.cache_budget(sweep)
lru = sweep[sweep["policy"] == "lru"].sort_values("budget_mib")
enough = lru[lru["hit_rate"] >= 0.99]
small = lru.iloc[0]
ttl_row = sweep[sweep["policy"] != "lru"].sort_values("budget_mib").iloc[-1]
print(
    (
        f"LRU keeps a 99% hit rate from {enough['budget_mib'].iloc[0]:,.0f} MiB per replica "
        f"({enough['budget_mib'].iloc[0] / (full / 2**20):.0%} of the no-eviction peak); "
        if len(enough)
        else "No budget tried keeps a 99% hit rate; "
    )
    + f"at {small['budget_mib']:,.0f} MiB the hit rate is {small['hit_rate']:.0%} and every miss resends the "
    f"whole context, {small['e2e_s'] - lru.iloc[-1]['e2e_s']:+.2f} s on the mean end to end. "
    f"A {ttl_s:g} s TTL frees memory sooner (mean {ttl_row['mean_mib']:,.0f} vs "
    f"{lru.iloc[-1]['mean_mib']:,.0f} MiB held) at a {ttl_row['hit_rate']:.0%} hit rate."
)
figures["cache_budget"]

# %%
sweep.round(3)

# %% [markdown]
# ## Result 5: one replica stands for the fleet
#
# A whole fleet, sharded by replica with per-replica seeds, at the load per replica found above
# (`labkit fleet` runs the same at any size, e.g. `labkit fleet --agents 100000 --replicas 834`).

# %%
check = run_fleet(
    FleetSpec(
        profile=ws,
        workload=workload,
        agents=per_replica * check_replicas,
        replicas=check_replicas,
        api_workers=api_workers,
        inference_slots=inference_slots,
        jitter=jitter,
    )
)
one = scale[(scale["scenario"] == candidate) & (scale["agents_per_replica"] == per_replica)]["e2e_p95_s"].iloc[0]
print(
    f"{check.spec.agents:,} agents on {check_replicas} replicas: p95 {check.metrics.e2e_quantile(0.95):.2f} s, "
    f"against {one:.2f} s for one replica at the same load ({check.wall_s:.1f} s to simulate, "
    f"{check.metrics.turns:,} turns)."
)

# %% [markdown]
# ## Caveats
#
# - API workers and inference slots per replica are the only shared resources; the network and the
#   response store are not contended here, and requests do not move between replicas.
# - Cache bytes count the conversation as text and as rendered token ids, parsed tool definitions and
#   sampler state (`labkit.model.cache`); no per-socket buffers and no KV cache (it lives on the inference
#   side). The live server counts the text only; the DES agrees with it under that model (a live test).
# - A miss costs one full-context resend on the same socket, as after `previous_response_not_found`.

# %%
written = viz.publish(figures, out_dir, formats)
