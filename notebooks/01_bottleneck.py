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
# # 01 · The bottleneck moves: from inference to the API
#
# **Question.** At 65 tokens/s (GPT-5) an agent rollout's time is mostly decoding; at 1,000+ tokens/s
# (GPT-5.3-Codex-Spark, bursts to 4,000) the same rollout is mostly something else. What, from which
# decode speed on, and how much of it is the API's own work?
#
# **Method.** The closed form of `labkit.sim.analytic.forecast`: each turn's critical path from
# `labkit.model.plan_turn` (network, API services, inference), plus the client's tool time, summed over
# the workload's turns, for every preset over a log grid of decode speeds. No randomness is needed here:
# the DES gives the same numbers when nothing is random.
#
# **Caveat up front.** The per-stage milliseconds are *assumed* (the source publishes ratios only); see
# `data/calibration.toml` for the provenance of every default and `labkit.analysis.calibrate` for the family of
# parameter sets equally consistent with the published claims.

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/01_bottleneck"  # where the figures are written
formats = ["html", "png", "svg", "pdf"]  # export formats (HTML is always written)
workload_name = "codex_bugfix"  # the scenario of OpenAI's engineering post: 25 model calls, 24 tool calls
profiles = ["http_baseline", "http_optimized", "http_chained", "websocket"]
tps_min, tps_max = 20, 4000  # decode speeds swept (tokens/s), log-spaced
tps_points = 40
compare_tps = [65, 1000]  # decode speeds of the stage breakdown (GPT-5, Codex-Spark)

# %%
from labkit import viz
from labkit.analysis import crossover, headline
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast
from labkit.sim.sweep import forecast_sweep

workload = load_workload(workload_name)
tps = crossover.tps_grid(tps_min, tps_max, 6 if fast else tps_points)
figures = {}

# %% [markdown]
# ## Result 1: time per rollout by category, and the overhead share, over decode speed
#
# Inference time falls as 1/TPS; API services, network and client tools do not move. The upper panel
# stacks the baseline's categories, the lower one shows each preset's API-overhead share (API services +
# network, as a share of end to end). The dashed line marks where overhead equals inference.

# %%
sweep = forecast_sweep(profiles, workload, tps=list(tps))
figures["overhead_share"] = viz.overhead_vs_tps(
    sweep, scenario="http_baseline", crossover=crossover.crossover_tps("http_baseline", workload)
)
figures["overhead_share"]

# %% [markdown]
# ## Result 2: where one rollout's time goes, at 65 and at 1,000 tokens/s

# %%
by_speed = {
    f"{name} @ {v:,} tok/s": forecast(load_profile(name, decode_tps=v), workload)
    for v in compare_tps
    for name in ("http_baseline", "websocket")
}
figures["stage_breakdown"] = viz.stage_breakdown(
    by_speed, by="category", title="Time per rollout by category, slow vs fast decoding"
)
figures["stage_breakdown"]

# %% [markdown]
# ## Result 3: the crossover, and the headline numbers, printed from the model

# %%
crossover.crossover_table(profiles, workload_name)

# %%
print(headline.headline(workload_name).text())

# %% [markdown]
# ## Caveats
#
# - The crossover moves with the assumed per-stage costs: halve the API's milliseconds and it doubles.
#   What does not move is the shape: a constant overhead against a 1/TPS inference term.
# - Tool time is the workload's (lognormal, median 0.2 s); slower tools dilute every share shown here.
# - Prefill is assumed fast and mostly served from the inference prefix cache (see `prefix_cache_hit_share`).

# %%
written = viz.publish(figures, out_dir, formats)
