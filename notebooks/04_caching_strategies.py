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
# # 04 · Caching strategies: what each one buys, and where
#
# **Question.** Three ways to stop re-processing the conversation every turn: the critical-path caches on
# HTTP (`http_optimized`), chaining with `previous_response_id` and `store=true` (`http_chained`), and
# WebSocket mode's connection-scoped cache (`websocket`). Which one pays off at which decode speed and
# rollout length? And what happens to HTTP chaining when requests spread over N API replicas?
#
# **Method.** First a dashboard to explore by hand: every slider recomputes the closed form and redraws
# the figures in place. Then two sweeps of the closed form: the end-to-end speedup against
# `http_baseline` over (decode speed, turns) per strategy, and sticky vs random routing across replicas
# (random routing finds the replica-local rendered-token cache with probability 1/N; the closed form
# takes the expectation; the DES draws it, request by request, for the tail).
#
# **Caveat up front.** All strategies here include the critical-path sprint; the speedups mix its gain and
# the strategy's own. Notebook 02 separates the sprint.

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/04_caching_strategies"
formats = ["html", "png", "svg", "pdf"]
workload_name = "codex_bugfix"
strategy = "websocket"  # the dashboard's initial strategy
decode_tps = 1000  # the dashboard's initial decode speed (tokens/s)
baseline = "http_baseline"
strategies = ["http_optimized", "http_chained", "websocket"]
heatmap_tps = [65, 200, 500, 1000, 2000, 4000]
heatmap_turns = [2, 5, 10, 20, 40, 80]
replicas = [1, 2, 4, 8, 16]
routing_profile = "http_chained"
des_rollouts = 40  # seeded DES rollouts per routing point

# %%
from labkit import viz
from labkit.model import load_workload
from labkit.sim.sweep import forecast_sweep, sweep
from labkit.viz.dashboard import what_if

workload = load_workload(workload_name)
if fast:
    heatmap_tps, heatmap_turns, replicas, des_rollouts = heatmap_tps[::2], heatmap_turns[::2], replicas[:3], 5
figures = {}

# %% [markdown]
# ## The what-if dashboard
#
# Decode TPS (log scale), hop latency, internal hops, tool time, turns, context size, the strategy, and
# replicas with routing for HTTP chaining. The export button writes the current figures next to the
# others.

# %%
dashboard = what_if(
    workload, strategy=strategy, tps=decode_tps, export_dir=f"{out_dir}/what_if", export_formats=formats
)
dashboard

# %% [markdown]
# ## Result 1: end-to-end speedup over (decode speed, turns), per strategy

# %%
grid = forecast_sweep([baseline, *strategies], workload, baseline=baseline, tps=heatmap_tps, turns=heatmap_turns)
figures["speedup_heatmap"] = viz.speedup_heatmap(grid, x="tps", y="turns")
figures["speedup_heatmap"]

# %%
grid.pivot_table(index="turns", columns=["scenario", "tps"], values="speedup").round(2)

# %% [markdown]
# ## Result 2: HTTP chaining across N replicas, sticky vs random routing

# %%
routing = forecast_sweep(
    [routing_profile], workload, decode_tps=[decode_tps], replicas=replicas, routing=["sticky", "random"]
)
figures["routing_effect"] = viz.routing_effect(routing, x="replicas", y="e2e_s")
figures["routing_effect"]

# %% [markdown]
# Random routing is random: the closed form above is its expectation. The DES draws the replica of every
# request (no other jitter, so the spread is routing alone) and shows the tail.

# %%
routing_des = sweep(
    {
        "profile": [routing_profile],
        "method": "des",
        "rollouts": des_rollouts,
        "jitter": 0.0,
        "decode_tps": decode_tps,
        "workload": workload_name,
        "replicas": replicas,
        "routing": ["sticky", "random"],
    }
)
figures["routing_effect_p95"] = viz.routing_effect(
    routing_des, x="replicas", y="e2e_p95_s", title="Sticky vs random routing: p95 end to end (DES)"
)
figures["routing_effect_p95"]

# %% [markdown]
# ## Caveats
#
# - WebSocket mode pins a conversation to one replica by construction; the routing question is HTTP's.
# - The heatmap's speedups grow with turns because every strategy saves work proportional to the
#   conversation already sent; with very few turns there is nothing to cache.
# - Prefix (KV) caching on the inference side is held equal across strategies here
#   (`prefix_cache_hit_share`); in practice routing also affects it.

# %%
written = viz.publish(figures, out_dir, formats)
