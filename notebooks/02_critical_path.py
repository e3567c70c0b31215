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
# # 02 · Where the gain comes from: the critical path, then every mechanism
#
# **Question.** Before WebSocket mode, a sprint on the HTTP path cut time to first token (TTFT) by about
# 45%: caching rendered tokens and the model configuration, fewer network hops, faster safety classifiers.
# WebSocket mode then added incremental input, a connection-scoped cache and post-inference work off the
# critical path; its prototype kept the sampling loop alive across tool calls. Which mechanism buys how much, at
# which decode speed, and how close does the shipped WebSocket mode come to the prototype and to no API work at all?
#
# **Method.** The closed form's mean TTFT per turn (every stage before the first output delta) and end to end.
# First the sprint: each optimisation toggled **alone** on the baseline and **left out** of the optimized profile,
# and applied one after another (a waterfall). Then every mechanism a strategy differs from the baseline by gets
# its **exact Shapley share** of the gain (`labkit attribute`): its marginal gain averaged over every order of
# switching the mechanisms on, so the shares add up to the total and interactions are split fairly.
#
# **Caveat up front.** The stage costs are calibrated to the published ratios (see notebook 01); the split
# between mechanisms is a property of those assumptions, not a published fact.

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/02_critical_path"
formats = ["html", "png", "svg", "pdf"]
workload_name = "codex_bugfix"
decode_tps = 1000  # TTFT does not depend on it; end to end does
baseline = "http_baseline"
optimized = "http_optimized"
candidate = "websocket"  # the strategy whose gain is attributed
attribution_tps = [65, 1000]  # decode speeds of the attribution tables (GPT-5, Codex-Spark)
curve_tps = [20, 40, 65, 100, 200, 400, 1000, 2000, 4000]  # decode speeds of the stacked-gain figure
presets = ["http_optimized", "http_chained", "websocket", "websocket_prototype", "ideal"]

# %%
import pandas as pd
from IPython.display import Markdown, display

from labkit import viz
from labkit.analysis import attribution, critical_path
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast

workload = load_workload(workload_name, turns=5) if fast else load_workload(workload_name)
base = forecast(load_profile(baseline, decode_tps=decode_tps), workload)
opt = forecast(load_profile(optimized, decode_tps=decode_tps), workload)
if fast:
    curve_tps = [20, 200, 4000]
figures = {}

# %% [markdown]
# ## Result 1: the TTFT waterfall, stage savings grouped by optimisation

# %%
figures["ttft_waterfall"] = viz.ttft_waterfall(base, opt)
figures["ttft_waterfall"]

# %%
display(
    Markdown(
        f"**Finding.** The sprint takes mean TTFT from {base.ttft_mean_s * 1e3:.0f} ms to "
        f"{opt.ttft_mean_s * 1e3:.0f} ms ({opt.ttft_mean_s / base.ttft_mean_s - 1:+.1%}; published -45%)."
    )
)

# %% [markdown]
# ## Result 2: each optimisation alone, and left out

# %%
effects = critical_path.optimisation_effects(workload, baseline, optimized)
print(
    f"mean TTFT {effects.attrs['baseline_ttft_s'] * 1e3:.0f} ms -> {effects.attrs['optimized_ttft_s'] * 1e3:.0f} ms "
    f"({-effects.attrs['total_reduction']:+.1%})"
)
effects.style.format({c: "{:.1%}" if "reduction" in c else "{:.3f}" for c in effects.columns})

# %%
top = effects["alone_reduction"].idxmax()
gap = (effects["alone_reduction"] - effects["leave_one_out_reduction"]).abs().max()
display(
    Markdown(
        f"**Finding.** Alone, the **{top}** cuts the most ({effects.loc[top, 'alone_reduction']:.1%} of the "
        f"baseline's TTFT); alone and left-out effects differ by at most {gap:.1%}, so the four optimisations "
        f"{'hardly interact' if gap < 0.01 else 'interact'}."
    )
)

# %% [markdown]
# ## Result 3: applied one after another

# %%
steps = critical_path.sprint_steps(workload, baseline, optimized)
figures["ttft_steps"] = viz.ttft_waterfall(base, steps=steps, title="The sprint, one optimisation at a time")
figures["ttft_steps"]

# %% [markdown]
# ## Result 4: what the TTFT gain does to end to end

# %%
every = {name: forecast(load_profile(name, decode_tps=decode_tps), workload) for name in [baseline, *presets]}
figures["e2e_by_profile"] = viz.e2e_by_transport(every, horizontal=True)
figures["e2e_by_profile"]

# %%
display(
    Markdown(
        f"**Finding.** At {decode_tps:,} tokens/s the sprint alone takes a rollout from {base.e2e_s:.1f} s to "
        f"{opt.e2e_s:.1f} s ({opt.e2e_s / base.e2e_s - 1:+.0%}); WebSocket mode reaches "
        f"{every['websocket'].e2e_s:.1f} s ({every['websocket'].e2e_s / base.e2e_s - 1:+.0%}) and no API work at all "
        f"{every['ideal'].e2e_s:.1f} s."
    )
)

# %% [markdown]
# ## Result 5: every mechanism's share of WebSocket mode's gain, at 65 and at 1,000 tokens/s

# %%
attrs = {t: attribution.attribute(candidate, baseline, tps=t, workload=workload) for t in attribution_tps}
shares = pd.DataFrame(
    {f"{t:,} TPS: end to end (s)": pd.Series(a.shares_s) for t, a in attrs.items()}
    | {f"{t:,} TPS: share of baseline": pd.Series(a.shares_s) / a.baseline_e2e_s for t, a in attrs.items()}
    | {"TTFT (ms)": pd.Series(attrs[attribution_tps[-1]].ttft_shares_s) * 1e3}
)
shares.loc["total"] = shares.sum()
shares.style.format("{:.3f}")

# %%
fast_attr = attrs[attribution_tps[-1]]
slow_attr = attrs[attribution_tps[0]]
largest = fast_attr.largest()
display(
    Markdown(
        f"**Finding.** The largest share of {candidate}'s {fast_attr.total_gain_s:.1f} s gain is the "
        f"**{attribution._label(largest)}** ({fast_attr.shares_s[largest] / fast_attr.total_gain_s:.0%}). The seconds "
        f"each mechanism saves do not depend on the decode speed (the same {slow_attr.total_gain_s:.1f} s at "
        f"{attribution_tps[0]} tokens/s), but they are {fast_attr.total_gain_s / fast_attr.baseline_e2e_s:.0%} of a "
        f"rollout at {attribution_tps[-1]:,} tokens/s and {slow_attr.total_gain_s / slow_attr.baseline_e2e_s:.0%} at "
        f"{attribution_tps[0]}."
    )
)

# %% [markdown]
# ## Result 6: the gain by mechanism over decode speed

# %%
over = attribution.attribution_over_tps(candidate, curve_tps, baseline, workload)
figures["gain_by_mechanism"] = viz.gain_by_mechanism(over)
figures["gain_by_mechanism"]

# %%
total = over.groupby("tps")["share_of_baseline"].sum()
half = next((t for t, v in total.items() if v >= total.max() / 2), total.index[-1])
display(
    Markdown(
        f"**Finding.** The mechanisms together cut {total.iloc[0]:.0%} of a rollout at {total.index[0]:,.0f} tokens/s "
        f"and {total.iloc[-1]:.0%} at {total.index[-1]:,.0f}; half of the largest cut is reached by {half:,.0f} "
        "tokens/s."
    )
)

# %% [markdown]
# ## Result 7: how much of the gap to the lower bound each preset closes

# %%
gap = attribution.gap_to_ideal(presets, baseline=baseline, tps=decode_tps, workload=workload)
figures["gap_closed"] = viz.gap_closed(gap)
figures["gap_closed"]

# %%
kept = attribution.kept_share(candidate, "websocket_prototype", baseline=baseline, tps=decode_tps, workload=workload)
g = gap.set_index("scenario")["gap_closed"]
display(
    Markdown(
        f"**Finding.** WebSocket mode closes {g['websocket']:.0%} of the gap from the baseline to no API work and "
        f"keeps **{kept:.0%} of the prototype's gain** at {decode_tps:,} tokens/s; the prototype, which ran pre- and "
        f"post-inference work once per rollout, closes {g['websocket_prototype']:.0%}."
    )
)

# %% [markdown]
# ## Caveats
#
# - The rendered-token cache saves work that grows with the conversation, so its share grows with the
#   number of turns; the fixed costs (config fetch, hops) do not.
# - TTFT here is the mean over turns; the first turn has no cache to hit.
# - Shapley shares answer "how much does this mechanism add, averaged over every order of adding them"; a
#   mechanism that only pays off together with another (incremental input needs a server that holds the
#   conversation) shares that joint gain with it.
# - `ideal` keeps the network, inference (with the KV state kept between turns) and the tools; it is a lower bound
#   for the API's share, not a design.

# %%
written = viz.publish(figures, out_dir, formats)
