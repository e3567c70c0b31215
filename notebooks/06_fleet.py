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
# # 06 · The fleet: many agents on finite replicas and inference slots
#
# **Question.** One agent never waits for anybody. Many agents share API workers and inference slots:
# how much queueing appears, where, and how far does one API replica go? And what does WebSocket mode's
# connection-scoped cache cost in memory?
#
# **Method.** First the model's queue itself is checked against theory: the DES's resource pool fed as an
# M/M/c queue (Poisson arrivals, exponential service) against Erlang C. Then closed systems of N agents
# (each runs rollouts back to back) on one API replica with a fixed number of workers and a shared pool of
# inference slots, with ±20% jitter; mean and p95 per point. Cache memory follows from the conversation
# sizes: the socket holds the last response, its items and rendered tokens.
#
# **Caveat up front.** The agents are a closed system (a new request only after the previous one and its
# tool), so queues stay bounded however many agents there are; Erlang C describes open arrivals and is
# the check of the queue mechanics, not a prediction of the fleet.

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
agents = [1, 4, 8, 16, 32, 48, 64]
api_workers = 8  # concurrent requests one API replica works on
inference_slots = 32  # concurrent requests the inference fleet serves
rollouts_per_agent = 2
jitter = 0.2
capacity_slack = 0.2  # "goes" = p95 end to end within 20% of one agent's
cache_bytes_per_token = 8  # item text (~4 bytes a token) plus rendered token ids (4 bytes each)
replica_memory_gib = 16  # memory one replica can give to connection caches

# %%
from labkit import viz
from labkit.analysis import fleet as fleet_tables
from labkit.model import load_profile, load_workload

workload = load_workload(workload_name)
if fast:
    utilisations, servers, customers = utilisations[::2], servers[:2], 4_000
    agents, rollouts_per_agent = [1, 8, 32], 1
fleet_profiles = [load_profile(p, decode_tps=decode_tps) for p in profiles]
figures = {}

# %% [markdown]
# ## Result 1: the simulated queue against Erlang C

# %%
mmc = fleet_tables.erlang_check(utilisations, servers, customers=customers)
figures["queueing_vs_erlang_c"] = viz.fleet_queueing(
    mmc, x="utilisation", sim="wait_s", theory="erlang_wait_s", by="servers"
)
mmc

# %%
figures["queueing_vs_erlang_c"]

# %% [markdown]
# ## Result 2: many agents on one replica: queueing and tail latency

# %%
fleet = fleet_tables.fleet_sweep(
    fleet_profiles,
    workload,
    agents,
    api_workers=api_workers,
    inference_slots=inference_slots,
    rollouts_per_agent=rollouts_per_agent,
    jitter=jitter,
)
figures["tail_latency"] = viz.line_chart(
    fleet,
    x="agents",
    y="e2e_p95_s",
    x_title="concurrent agents (count)",
    y_title="p95 end to end per rollout (s)",
    title="Tail latency as agents share one replica",
)
figures["queueing_by_agents"] = viz.line_chart(
    fleet_tables.queue_waits(fleet),
    x="agents",
    y="queue_wait_s",
    dash_by="queue",
    x_title="concurrent agents (count)",
    y_title="mean queueing per turn (s)",
    title="Where agents wait: API workers (solid) and inference (dashed)",
)
figures["tail_latency"]

# %%
figures["queueing_by_agents"]

# %% [markdown]
# ## Result 3: how far one replica goes

# %%
fleet_tables.capacity(fleet, "e2e_p95_s", slack=capacity_slack)

# %% [markdown]
# ## Result 4: cache memory per connection

# %%
memory = fleet_tables.cache_memory(workload, cache_bytes_per_token)
peak_mib = memory["cache_mib"].max()
print(
    f"one connection holds up to {peak_mib:.2f} MiB at the last turn; "
    f"{replica_memory_gib} GiB of cache fits {replica_memory_gib * 1024 / peak_mib:,.0f} such connections"
)
figures["cache_memory"] = viz.line_chart(
    memory.assign(scenario="websocket"),
    x="turn",
    y="cache_mib",
    x_title="turn (index)",
    y_title="connection cache (MiB)",
    title="What one WebSocket connection's cache holds, turn by turn",
)
figures["cache_memory"]

# %% [markdown]
# ## Caveats
#
# - API workers and inference slots are the only shared resources; the network and the store are not
#   contended here.
# - WebSocket mode pins each agent to one replica for the connection's life; with many replicas an
#   unlucky placement is not rebalanced until the socket closes (not modelled here: one replica).
# - Cache memory counts the conversation only (no per-socket buffers, no KV cache, which lives on the
#   inference side).

# %%
written = viz.publish(figures, out_dir, formats)
