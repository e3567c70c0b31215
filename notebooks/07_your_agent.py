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
# closed form under every preset and decode speed. The sessions' own clocks are then fitted
# (`labkit.traces.fit_sessions`: a robust fit of each model call's time on its visible output, reasoning and
# uncached input tokens, intervals from a bootstrap over sessions) and checked out of sample (each session's
# model time predicted from a fit on the others). Last, a profile is *fitted* to a measurement
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

import numpy as np
import pandas as pd

from labkit import viz
from labkit.experiments.recovery import measure_simulated, token_cost
from labkit.model import load_profile
from labkit.sim.analytic import forecast
from labkit.traces import (
    calls_frame,
    fit_sessions,
    fit_spans,
    load_trace,
    replay,
    replay_frame,
    shipped_trace,
    summary,
    tools_frame,
    trace_workload,
)
from labkit.traces.sessionfit import fixed_time_s
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
# ## Your sessions' clocks, fitted and held out
#
# Each model call is timed from the moment its input was complete (the last tool output or user message) to its
# completion; time waiting on the human after a final answer is kept apart. A robust (Huber) fit of call time on
# visible output, reasoning and uncached input tokens gives a decode speed and a fixed time per call; each
# session's *model time* (the sum of its calls) is then predicted from a fit on the other sessions.

# %%
sfit = fit_sessions(trace, n_boot=50 if fast else 200, with_holdout=True)
params = pd.DataFrame(
    [
        {"parameter": k, "value": p.value, "lo": p.lo, "hi": p.hi, "provenance": p.provenance}
        for k, p in sfit.parameters.items()
    ]
)
params

# %%
ws = load_profile("websocket")
ws_reference = {
    "decode_tps": ws.decode_tps,
    "call_fixed_s": fixed_time_s(ws),
    "prefill_tokens_per_s": ws.prefill_tokens_per_s,
}
session_fit = tviz.fit_parameters(
    params[params["parameter"].isin(list(ws_reference))].assign(reference=lambda d: d["parameter"].map(ws_reference)),
    title="Fitted to the sessions' clocks / the websocket preset, 95% session-bootstrap intervals",
)
p = sfit.parameters
print(
    f"Over {sfit.calls} model calls of {sfit.sessions} sessions, a call's time grows by 1 s per "
    f"{p['decode_tps'].value:.0f} visible output tokens (95%: {p['decode_tps'].lo:.0f}-{p['decode_tps'].hi:.0f}) and "
    f"carries {p['call_fixed_s'].value:.2f} s that does not grow with tokens ({p['call_fixed_s'].lo:.2f}-"
    f"{p['call_fixed_s'].hi:.2f}); the websocket preset charges {ws_reference['call_fixed_s']:.2f} s for the same, so "
    f"these sessions show {p['call_fixed_s'].value / ws_reference['call_fixed_s']:.1f}x the fixed time the model "
    "assumes. "
    "What that fixed part is (API work, queueing, prefill, the client building its context) a client log cannot tell."
)
session_fit  # shown here, not published with the figures (the figure set is fixed by the tests)

# %%
held = pd.DataFrame([r.to_dict() for r in sfit.holdout or ()])
held["error"] = held["predicted_s"] / held["measured_s"] - 1
mae = sfit.median_abs_error
print(
    f"Held out one session at a time, the fit on the others predicts each session's model time with a median "
    f"absolute error of {mae:.1%} over {len(held)} sessions (goal: 15%); "
    + (
        "with two sessions of different agents and models (one Claude Code, one Codex CLI) that is one model "
        "predicting another, not a test of one agent's sessions."
        if trace_path is None
        else "each row below is one session predicted from the others."
    )
)
held

# %% [markdown]
# **API overhead at 65 and 1,000 tokens/s.** Each bootstrap draw of the fit becomes a profile (its decode and
# prefill speeds, its fixed time per call); decode speed is then set to 65 or 1,000 tokens/s and the sessions are
# forecast. How the fixed time splits is an assumption: the profile keeps the websocket preset's API stages and
# puts the rest in the queue (the low end below); if the rest were all API work, the share would be the high end.

# %%
workloads = [trace_workload(s) for s in trace]
fixed_ws = fixed_time_s(ws)


def api_share(profile, tps, all_api=False):
    prof = profile.with_(decode_tps=float(tps))
    fc = [forecast(prof, w) for w in workloads]
    extra = sum(max(0.0, prof.queue_s - ws.queue_s) * w.turns for w in workloads) if all_api else 0.0
    return (sum(f.api_s + f.network_s for f in fc) + extra) / sum(f.e2e_s for f in fc)


draws = range(1, len(sfit.draws.coef))
shares = []
for tps in (65, 1000):
    low = np.array([api_share(sfit.profile(k), tps) for k in draws])
    high = np.array([api_share(sfit.profile(k), tps, all_api=True) for k in draws])
    shares.append(
        {
            "tps": tps,
            "api_share": api_share(sfit.profile(0), tps),
            "lo": float(np.percentile(low, 2.5)),
            "hi": float(np.percentile(low, 97.5)),
            "if_fixed_all_api": api_share(sfit.profile(0), tps, all_api=True),
            "if_fixed_all_api_hi": float(np.percentile(high, 97.5)),
        }
    )
shares = pd.DataFrame(shares).set_index("tps")
print(
    f"With these sessions' clocks, API service and network take {shares.loc[65, 'api_share']:.1%} of the sessions' "
    f"end to end at 65 tokens/s (95%: {shares.loc[65, 'lo']:.1%}-{shares.loc[65, 'hi']:.1%}) and "
    f"{shares.loc[1000, 'api_share']:.1%} at 1,000 tokens/s ({shares.loc[1000, 'lo']:.1%}-{shares.loc[1000, 'hi']:.1%})"
    f", if the fixed time beyond websocket's stages is queueing or client work; if it were all API work, "
    f"{shares.loc[65, 'if_fixed_all_api']:.1%} and {shares.loc[1000, 'if_fixed_all_api']:.1%}. The data cannot choose "
    "between the two: the conclusion that holds either way is the direction (the share rises with decode speed)."
)
shares

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
departure = (fitted["value"] / fitted["reference"] - 1).abs()
# On loopback the connection set-up is the two programs' own work, not a network handshake: connect_s is fitted
# (it is what a real network would show) but cannot be compared with the simulator's modelled handshake.
identifiable = fitted["parameter"] != "connect_s" if not real else fitted["parameter"].notna()
worst = departure[identifiable].max()
worst_name = fitted.loc[departure[identifiable].idxmax(), "parameter"]
connect = fitted.set_index("parameter")["value"].get("connect_s")
print(
    f"{len(fitted)} parameters fitted from {fit.turns} turns; among those this measurement can identify, the "
    f"largest departure from the {'base preset' if real else 'simulator' + chr(39) + 's true value'} is {worst:.1%} "
    f"({worst_name}); the fitted profile predicts the measured rollouts' end to end within "
    f"{fit.residuals['e2e']['max_abs_rel']:.1%}."
    + (
        f" connect_s ({connect * 1e3:.1f} ms fitted) is left out of that comparison: on loopback a connection's "
        "set-up is the client's and server's own work with no network round trip, so it cannot be checked against "
        "the handshake the simulator models."
        if connect is not None and not real
        else ""
    )
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
# - The per-call fit of the sessions' clocks cannot split the fixed time per call into API work, queueing,
#   prefill and client-side context building; the API-overhead shares above are given for both ends of that
#   split. With few sessions the session bootstrap has few distinct resamples, and its intervals are coarse.
# - Against the simulator the fit recovers a known profile; against a real API it recovers what a client can see:
#   fixed TTFT costs (validation, safety, hops, the round trip) come out as one number, carried by
#   `prefill_overhead_s`; the rest keep the base preset's values, marked `assumed` in the profile file.

# %%
written = viz.publish(figures, out_dir, formats)
