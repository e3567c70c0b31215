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
# # 07 · Your agent: real sessions in, replay and fit
#
# **Question.** What would WebSocket mode, or a much faster model, do for *a real agent's* sessions, on *a
# measured* provider, rather than for the synthetic workloads of notebooks 01-06?
#
# **Method.** Import recorded sessions into one shape (`labkit.traces`: Codex CLI rollouts, TraceLab round traces,
# OTLP GenAI spans, labkit spans). By default these are TraceLab's two sanitized example sessions shipped with
# labkit (one Claude Code, one Codex CLI; CC BY 4.0, see `labkit/data/traces/ATTRIBUTION.md`); set `trace_path`
# to your own file or `~/.codex/sessions`. Each session becomes a workload whose turns carry the calls' real
# tokens, reasoning tokens, parallel tool calls and tool times (`labkit.traces.trace_workload`), replayed in
# closed form under every preset and decode speed. Then a profile is *fitted* to a measurement
# (`labkit.traces.fit_spans`): by default against the simulator serving a known profile (so the fit can be
# checked), or against the real API when `use_real_api = True` and `OPENAI_API_KEY` is set.
#
# **Caveat up front.** Trace times are when lines were written, not when bytes moved (see the guide); a replay
# says what the *model* predicts for these calls, and the measured time beside it is the session's own agent-loop
# time (model calls plus tool waits, without the user's think time).

# %% tags=["parameters"]
fast = False  # small parameter set (the test suite uses it)
out_dir = "../figures/07_your_agent"
formats = ["html", "png", "svg", "pdf"]
trace_path = None  # None: the shipped TraceLab sessions; else a file or folder of your sessions
trace_format = None  # None: detected; or "codex", "tracelab", "otlp", "labkit"
session_index = 1  # which session to show call by call (1: the shipped Codex session)
tps_grid = [65, 150, 300, 1000, 2000, 4000]  # decode speeds of the what-if
sim_profile = "websocket"  # the simulator's profile the fit is checked against
rollouts = 6  # calibration rollouts to measure and fit
use_real_api = False  # True (with OPENAI_API_KEY set): measure the real API instead of the simulator
api_model = "gpt-5.3-codex"

# %%
import os

import pandas as pd

from labkit import viz
from labkit.model import load_profile
from labkit.traces import calls_frame, fit_spans, load_trace, replay, replay_frame, shipped_trace, summary, tools_frame
from labkit.experiments.recovery import measure_simulated, token_cost
from labkit.viz import traces as tviz

figures = {}
trace = load_trace(trace_path, trace_format) if trace_path else shipped_trace()
n_rollouts = 3 if fast else rollouts
speeds = [65, 1000] if fast else tps_grid

# %% [markdown]
# ## The sessions

# %%
table = summary(trace)
shown = ["id", "format", "model", "model_calls", "tool_calls", "input_median", "cached_share", "output_median"]
shown += ["reasoning_median", "tool_median_s", "tool_p90_s", "max_parallel_tools", "measured_s", "skipped_lines"]
table[shown]

# %%
session = trace.sessions[min(session_index, len(trace) - 1)]
calls = calls_frame(session)
figures["session_calls"] = tviz.session_calls(calls, title=f"{session.format} session, call by call")
print(
    f"This session made {len(calls)} model calls reading a median {calls['input_tokens'].median():,.0f} input tokens "
    f"({calls['cached_input_tokens'].sum() / calls['input_tokens'].sum():.0%} of them cached) and writing a median "
    f"{calls['output_tokens'].median():,.0f}; its {int(calls['tool_calls'].sum())} tool calls came at most "
    f"{int(calls['tool_calls'].max())} to a response."
)
figures["session_calls"]

# %%
tools = pd.concat([tools_frame(s) for s in trace], ignore_index=True)
figures["tool_times"] = tviz.tool_time_ecdf(tools)
print(
    f"Tool calls took a median {tools['seconds'].median():.2f} s, but a tenth of them more than "
    f"{tools['seconds'].quantile(0.9):.1f} s: the tail, not the median, sets how much of a session waits on tools."
)
figures["tool_times"]

# %% [markdown]
# ## Replay under every strategy, at 65 and 1,000 TPS

# %%
replays = replay(trace, tps=[65, 1000])
frame = replay_frame(replays)
figures["replay_65"] = tviz.replay_bars(frame, 65)
figures["replay_1000"] = tviz.replay_bars(frame, 1000)
for r in replays:
    print(
        f"{r.id[:28]}: WebSocket mode would cut end to end against the HTTP baseline by "
        f"{r.gain('http_baseline', 'websocket', 65):.1%} at 65 TPS and {r.gain('http_baseline', 'websocket', 1000):.1%}"
        f" at 1,000 TPS (measured agent-loop time {r.measured_s or float('nan'):.1f} s)."
    )
figures["replay_1000"]

# %% [markdown]
# ## What if: end to end against decode speed

# %%
whatif = replay_frame(replay(trace, ["http_baseline", "http_optimized", "websocket"], speeds))
figures["whatif"] = tviz.whatif_curve(whatif, session.id)
w = whatif[whatif["session"] == session.id].set_index(["profile", "tps"])["predicted_e2e_s"]
lo, hi = speeds[0], speeds[-1]
print(
    f"Going from {lo} to {hi} TPS shortens this session {w['websocket', lo] / w['websocket', hi]:.1f}x in WebSocket "
    f"mode; the HTTP baseline still takes {w['http_baseline', hi] - w['websocket', hi]:.1f} s longer at {hi} TPS."
)
figures["whatif"]

# %% [markdown]
# ## Measure and fit
#
# The calibration workload varies context and output sizes on purpose so the regressions behind the fit are well
# conditioned. Its cost on a real API is shown before anything runs.

# %%
cost = token_cost("calibration", n_rollouts)
print(
    f"{n_rollouts} calibration rollouts: {cost['requests']} requests, {cost['input_tokens']:,} input tokens (billed "
    f"each request, cached ones at the provider's discount) and {cost['output_tokens']:,} output tokens."
)

# %%
real = use_real_api and bool(os.environ.get("OPENAI_API_KEY"))
if real:
    from labkit.live.runner import rollouts_spans, run_rollouts

    results = await run_rollouts(
        "ws", "calibration", rollouts=n_rollouts, base_url="https://api.openai.com/v1",
        api_key=os.environ["OPENAI_API_KEY"], model=api_model, script_tool_choice=True,
    )  # fmt: skip
    spans = rollouts_spans(results)
    reference = load_profile("websocket")
else:
    reference = load_profile(sim_profile)
    spans = await measure_simulated(reference, "calibration", rollouts=n_rollouts, seed=0)
fit = fit_spans(spans, base="websocket", source="notebook 07", n_boot=50 if fast else 200, rtt_from_connect=real)
fitted = pd.DataFrame(
    [
        {"parameter": k, "value": p.value, "lo": p.lo, "hi": p.hi, "reference": getattr(reference, k)}
        for k, p in fit.parameters.items()
        if p.provenance == "fitted"
    ]
)
figures["fit_parameters"] = tviz.fit_parameters(
    fitted, title="Fitted / " + ("base preset" if real else "the simulator's true value") + ", 95% intervals"
)
worst = (fitted["value"] / fitted["reference"] - 1).abs().max()
print(
    f"{len(fitted)} parameters fitted from {fit.turns} turns; the largest departure from the reference is {worst:.1%}; "
    f"the fitted profile predicts the measured rollouts' end to end within {fit.residuals['e2e']['max_abs_rel']:.1%}."
)
figures["fit_parameters"]

# %% [markdown]
# The fitted profile is a `Profile`: replay the sessions with it beside the presets.

# %%
mine = replay(trace, ["http_baseline", "websocket", fit.profile], [65, 1000])
replay_frame(mine).pivot_table(index=["session", "tps"], columns="profile", values="predicted_e2e_s")

# %% [markdown]
# ## Caveats
#
# - Trace times are proxies: Codex writes a line when an event is handled, TraceLab takes the latest input event as
#   "request sent". The measured time beside a replay is the agent loop's own (user think time excluded).
# - The replay uses each session's measured prefix-cache share (cached over context tokens); the per-call cached
#   tokens are not modelled one by one.
# - Against the simulator the fit recovers a known profile; against a real API it recovers what a client can see:
#   fixed TTFT costs (validation, safety, hops, the round trip) come out as one number, carried by
#   `prefill_overhead_s`; the rest keep the base preset's values, marked `assumed` in the profile file.

# %%
written = viz.publish(figures, out_dir, formats)
