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
# # 02 · The critical path: where the −45% time to first token comes from
#
# **Question.** Before WebSocket mode, a sprint on the HTTP path cut time to first token (TTFT) by about
# 45%: caching rendered tokens and the model configuration, fewer network hops, faster safety classifiers.
# How much does each change contribute, and do they add up?
#
# **Method.** The closed form's mean TTFT per turn (every stage before the first output delta) for
# `http_baseline` and `http_optimized`; then each optimisation toggled **alone** on the baseline, and
# **left out** of the optimized profile. When effects simply add, both columns agree; the gap measures
# how much they interact. The waterfall applies them one after another in a fixed order.
#
# **Caveat up front.** The stage costs are assumed values consistent with the published −45%; the split
# between optimisations is a property of those assumptions, not a published fact.

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/02_critical_path"
formats = ["html", "png", "svg", "pdf"]
workload_name = "codex_bugfix"
decode_tps = 1000  # TTFT does not depend on it; end to end does
baseline = "http_baseline"
optimized = "http_optimized"

# %%
from labkit import viz
from labkit.analysis import critical_path
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast

workload = load_workload(workload_name, turns=5) if fast else load_workload(workload_name)
base = forecast(load_profile(baseline, decode_tps=decode_tps), workload)
opt = forecast(load_profile(optimized, decode_tps=decode_tps), workload)
figures = {}

# %% [markdown]
# ## Result 1: the TTFT waterfall, stage savings grouped by optimisation

# %%
figures["ttft_waterfall"] = viz.ttft_waterfall(base, opt)
figures["ttft_waterfall"]

# %% [markdown]
# ## Result 2: each optimisation alone, and left out

# %%
effects = critical_path.optimisation_effects(workload, baseline, optimized)
print(
    f"mean TTFT {effects.attrs['baseline_ttft_s'] * 1e3:.0f} ms -> {effects.attrs['optimized_ttft_s'] * 1e3:.0f} ms "
    f"({-effects.attrs['total_reduction']:+.1%})"
)
effects.style.format({c: "{:.1%}" if "reduction" in c else "{:.3f}" for c in effects.columns})

# %% [markdown]
# ## Result 3: applied one after another

# %%
steps = critical_path.sprint_steps(workload, baseline, optimized)
figures["ttft_steps"] = viz.ttft_waterfall(base, steps=steps, title="The sprint, one optimisation at a time")
figures["ttft_steps"]

# %% [markdown]
# ## Result 4: what the TTFT gain does to end to end

# %%
figures["e2e_by_profile"] = viz.e2e_by_transport({baseline: base, optimized: opt})
figures["e2e_by_profile"]

# %% [markdown]
# ## Caveats
#
# - The rendered-token cache saves work that grows with the conversation, so its share grows with the
#   number of turns; the fixed costs (config fetch, hops) do not.
# - TTFT here is the mean over turns; the first turn has no cache to hit.

# %%
written = viz.publish(figures, out_dir, formats)
