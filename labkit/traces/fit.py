"""Fit a profile to a measurement: the parameters a spans table can identify, with bootstrap intervals.

What a client sees of one model call is a handful of times (:func:`labkit.traces.spansio.turn_table`): the
connection set-up, request sent to first output delta (TTFT), first to last delta (decode), last delta to the
terminal event (complete), and the tool time after it. The latency model (:func:`labkit.model.plan_turn`) says
how each depends on the profile and on the turn's sizes, so turns of different sizes identify:

- ``decode_tps``: decode time is ``(output - 1) / decode_tps`` plus a constant (the wake-up lateness of the
  last delta); the slope of decode seconds on decoded tokens, over turns, is ``1 / decode_tps``
  (the mean inter-delta gap per token, so coalesced deltas do not matter);
- the prefill part of TTFT: ``prefill_overhead_s + (new + (1 - prefix_cache_hit_share) * context) /
  prefill_tokens_per_s``. After taking out what the base profile says the rest of TTFT costs (validation,
  render, safety, hops, queue and the reasoning tokens at the fitted speed, on the measured transport's cache
  state), a least-squares fit of ``fixed + u * new + v * context`` gives ``prefill_overhead_s`` (fixed),
  ``prefill_tokens_per_s = 1 / u`` and ``prefix_cache_hit_share = 1 - v / u``;
- ``safety_out_s`` and ``safety_out_per_1k_s``: the complete span is the output classifier (fixed + per
  output token), plus persistence and billing when they are on the critical path (base values);
- ``connect_s``: the median connection set-up of turns that opened a connection;
- ``rtt_s``: a round trip adds to every request's TTFT exactly as a fixed server cost does (half on the way up,
  half down), so TTFT alone cannot tell them apart. By default the fit sets ``rtt_s = 0`` (assumed) and the
  fixed cost carries the round trip; with ``rtt_from_connect=True`` (a measurement over a real network, where
  the handshake is network-bound) ``rtt_s`` is derived as half the connection set-up (TCP handshake plus the
  TLS or WebSocket upgrade round trip, the calibration's own derivation) and taken out of the fixed cost. On
  loopback the set-up is the two programs' own work, not a round trip, so the default is right there;
- the tool time (a workload parameter, reported under ``workload``): median and lognormal sigma.

What the data cannot separate keeps the base preset's value with provenance ``assumed``: the fixed costs inside
TTFT (validation, config, input safety, hops, queue: one sum, carried by ``prefill_overhead_s``), the per-token
API costs (validation, render, input safety: taken from the base), and ``upload_bytes_per_s`` (set to infinity:
an upload time proportional to the request is not separable from per-token costs and the fit absorbs it).

Each regression is fitted twice: turns whose residual is beyond five robust standard deviations (median absolute
deviation) are left out of the second fit and counted in ``residuals[...]["outliers"]`` (a turn delayed by
something outside the model, such as another process on a shared machine, must not tilt the fit).

Intervals: 95% percentile bootstrap over turns (``n_boot`` resamples), widened by the clock resolution
``resolution_s`` (default 1 ms): a live measurement's event-loop wake-ups and socket reads shift every time by up
to about that, which no amount of resampling reveals. A fixed time's interval widens by ``resolution_s``, a
slope's by ``resolution_s`` over the range of sizes it was fitted on (a per-token cost whose whole effect over
the measured sizes is below the resolution cannot be told from zero).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import Profile, TurnSpec, load_profile, plan_turn
from labkit.sim.analytic import cache_state, forecast
from labkit.traces.parameter import FitParameter
from labkit.traces.spansio import read_spans_file, sessions_from_spans, turn_table
from labkit.traces.workload import trace_workload

#: The preset a measured transport was served with by default (as ``labkit measure``).
BASE_OF_SCENARIO = {"ws": "websocket", "http": "http_optimized", "http-chained": "http_chained"}
FITTED = (
    "decode_tps",
    "prefill_overhead_s",
    "prefill_tokens_per_s",
    "prefix_cache_hit_share",
    "safety_out_s",
    "safety_out_per_1k_s",
    "connect_s",
)
_PRE_DECODE_NOT_FITTED = ("validate", "load_state", "render", "config", "safety_in", "hops", "queue")


@dataclass(frozen=True)
class FitResult:
    """Every numeric profile parameter (fitted, derived or assumed), the workload's tool time, the residuals."""

    name: str
    base: str
    source: str
    parameters: dict[str, FitParameter]
    workload: dict[str, FitParameter]
    residuals: dict[str, dict[str, float]]
    turns: int
    rollouts: int
    profile: Profile = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "source": self.source,
            "turns": self.turns,
            "rollouts": self.rollouts,
            "parameters": {k: v.to_dict() for k, v in self.parameters.items()},
            "workload": {k: v.to_dict() for k, v in self.workload.items()},
            "residuals": self.residuals,
        }

    def to_toml(self) -> str:
        """A profile file :func:`labkit.model.load_profile` reads: ``[profile]`` with ``name``, ``base`` and a
        value table per parameter that differs from the base or was fitted."""
        lines = [
            "# Written by labkit fit: fitted values with 95% bootstrap intervals; the rest comes from the base preset.",
            "[profile]",
            f'name = "{self.name}"',
            f'base = "{self.base}"',
            f'description = "fitted to {_esc(self.source)} ({self.turns} turns, {self.rollouts} rollouts)"',
        ]
        base = load_profile(self.base)
        for key, p in self.parameters.items():
            if p.provenance == "assumed" and getattr(base, key) == p.value:
                continue
            parts = [f"value = {_toml_num(p.value)}"]
            if p.lo is not None and p.hi is not None:
                parts += [f"lo = {_toml_num(p.lo)}", f"hi = {_toml_num(p.hi)}"]
            parts += [f'provenance = "{p.provenance}"', f'source = "{_esc(p.source)}"']
            lines.append(f"{key} = {{ {', '.join(parts)} }}")
        return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _toml_num(v: float) -> str:
    if isinstance(v, float) and math.isinf(v):
        return '"inf"'
    if isinstance(v, int) or (float(v).is_integer() and abs(v) < 1e15):
        return repr(float(v))
    return repr(float(v))


def default_base(spans: pd.DataFrame) -> str:
    """The base preset of a measurement: its live transport's default preset, or the simulated profile's name."""
    from labkit.model import preset_names

    scenarios = sorted(set(spans["scenario"].astype(str)))
    for s in scenarios:
        if s in BASE_OF_SCENARIO:
            return BASE_OF_SCENARIO[s]
        if s in preset_names():
            return s
    return "websocket"


def _spec(r: Any) -> TurnSpec:
    return TurnSpec(
        int(r.turn), int(r.context_tokens), int(r.new_tokens), max(1, int(r.output_tokens)), 0.0, False,
        int(r.reasoning_tokens),
    )  # fmt: skip


def _ols(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return coef


def _inliers(x: np.ndarray, y: np.ndarray, floor: float) -> np.ndarray:
    """Rows whose residual is within 5 robust standard deviations (MAD), at least ``floor``: a turn delayed by
    something outside the model (another process on the machine, a garbage collection) must not tilt the fit."""
    keep = np.ones(len(y), dtype=bool)
    for _ in range(3):
        r = y - x @ _ols(x[keep], y[keep])
        scale = 1.4826 * float(np.median(np.abs(r[keep] - np.median(r[keep]))))
        new = np.abs(r - np.median(r[keep])) <= max(5 * scale, floor)
        if (new == keep).all() or new.sum() < x.shape[1] + 3:
            break
        keep = new
    return keep


def _percentile_ci(samples: np.ndarray, widen: float = 0.0) -> tuple[float, float]:
    s = samples[np.isfinite(samples)]
    if not len(s):
        return (math.nan, math.nan)
    lo, hi = np.percentile(s, [2.5, 97.5])
    return float(lo) - widen, float(hi) + widen


def _stats(resid: np.ndarray) -> dict[str, float]:
    if not len(resid):
        return {"n": 0}
    return {
        "n": len(resid),
        "rmse_s": float(np.sqrt(np.mean(resid**2))),
        "mean_abs_s": float(np.mean(np.abs(resid))),
        "max_abs_s": float(np.max(np.abs(resid))),
    }


def fit_spans(
    spans: pd.DataFrame,
    *,
    base: str | os.PathLike[str] | Profile | None = None,
    name: str = "fitted",
    source: str = "",
    n_boot: int = 200,
    seed: int = 0,
    resolution_s: float = 0.001,
    rtt_from_connect: bool = False,
) -> FitResult:
    """Fit the identifiable parameters of a profile to a spans table (see the module docstring)."""
    if n_boot < 20:
        raise ValueError(f"n_boot: must be >= 20, got {n_boot!r}")
    base_prof = load_profile(base or default_base(spans))
    base_name = base_prof.name
    t = turn_table(spans)
    t = t[(t["attempts"] == 1) & np.isfinite(t["request_ttft_s"]) & (t["output_tokens"] >= 1)].reset_index(drop=True)
    if len(t) < 8:
        raise ValueError(f"spans: {len(t)} complete single-attempt turns; the fit needs at least 8")
    rng = np.random.default_rng(seed)
    n = len(t)
    src = source or "spans"
    params: dict[str, FitParameter] = {}

    # -- decode: seconds = tokens / tps + constant ------------------------------------------------------------
    dec = t[t["output_tokens"] >= 3]
    tok = dec["output_tokens"].to_numpy(float) - 1
    dsec = dec["decode_s"].to_numpy(float)
    if len(dec) < 3 or np.ptp(tok) == 0:
        raise ValueError("spans: decode spans of at least 3 different output lengths are needed to fit decode_tps")
    xd = np.column_stack([np.ones_like(tok), tok])
    kd = _inliers(xd, dsec, resolution_s)
    xd, dsec, tok = xd[kd], dsec[kd], tok[kd]
    outliers = {"decode": int((~kd).sum())}
    slope = _ols(xd, dsec)[1]
    tps = 1.0 / slope
    db = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, len(dsec), len(dsec))
        db[b] = _ols(xd[i], dsec[i])[1] if np.ptp(tok[i]) > 0 else np.nan
    # The interval of the slope (seconds per token), widened by the clock resolution over the tokens' range.
    s_lo, s_hi = _percentile_ci(db, resolution_s / float(np.ptp(tok)))
    lo, hi = 1.0 / s_hi, (1.0 / s_lo if s_lo > 0 else math.inf)
    params["decode_tps"] = FitParameter(tps, lo, hi, "fitted", src, "slope of decode seconds on decoded tokens")

    # -- connection set-up -------------------------------------------------------------------------------------
    fresh = t.loc[~t["reused"].astype(bool), "connect_s"].to_numpy(float)
    if len(fresh):
        c_med = float(np.median(fresh))
        cb = np.array([np.median(fresh[rng.integers(0, len(fresh), len(fresh))]) for _ in range(n_boot)])
        lo, hi = _percentile_ci(cb, resolution_s)
        params["connect_s"] = FitParameter(c_med, max(0.0, lo), hi, "fitted", src, f"median of {len(fresh)} set-ups")
    rtt = 0.0
    if rtt_from_connect and len(fresh):
        rtt = c_med / 2
        params["rtt_s"] = FitParameter(
            rtt, max(0.0, lo) / 2, hi / 2, "derived", src, "connect_s / 2 (handshake + upgrade round trips)"
        )
    else:
        params["rtt_s"] = FitParameter(
            0.0, None, None, "assumed", src, "not separable from the fixed TTFT cost, which carries it"
        )
    fit_prof = base_prof.with_(rtt_s=rtt, upload_bytes_per_s=math.inf, decode_tps=tps)

    # -- TTFT: what the base says besides prefill, then fixed + u * new + v * context -----------------------------
    probe = fit_prof.with_(prefill_overhead_s=0.0, prefill_tokens_per_s=math.inf)
    offsets = np.empty(n)
    r: Any
    for k, r in enumerate(t.itertuples(index=False)):
        spec = _spec(r)
        plan = plan_turn(probe, spec, cache_state(probe, spec, True)._replace(connection_open=True))
        d = {s.name: s.duration_s for s in plan}
        offsets[k] = sum(d[s] for s in _PRE_DECODE_NOT_FITTED) + d["upload"] + d["download"] + d["reasoning"]
    y = t["request_ttft_s"].to_numpy(float) - offsets
    new = t["new_tokens"].to_numpy(float)
    ctx = t["context_tokens"].to_numpy(float)
    use_ctx = np.ptp(ctx) > 0 and np.linalg.matrix_rank(np.column_stack([np.ones(n), new, ctx])) == 3
    use_new = np.ptp(new) > 0
    cols = [np.ones(n)] + ([new] if use_new else []) + ([ctx] if use_ctx and use_new else [])
    x = np.column_stack(cols)
    kt = _inliers(x, y, resolution_s)
    outliers["ttft"] = int((~kt).sum())
    x, y = x[kt], y[kt]
    nt = len(y)

    def ttft_params(ix: np.ndarray) -> tuple[float, float, float]:
        coef = _ols(x[ix], y[ix])
        fixed = float(coef[0])
        u = float(coef[1]) if use_new else math.nan
        v = float(coef[2]) if use_ctx and use_new else math.nan
        return fixed, u, v

    fixed, u, v = ttft_params(np.arange(nt))
    boots = np.array([ttft_params(ix) for ix in rng.integers(0, nt, size=(n_boot, nt))])
    over = max(0.0, fixed)
    lo, hi = _percentile_ci(boots[:, 0], resolution_s)
    params["prefill_overhead_s"] = FitParameter(
        over, max(0.0, lo), hi, "fitted", src,
        "the fixed TTFT cost beyond the base's validation, config, safety, hops and queue",
    )  # fmt: skip
    ptps = base_prof.prefill_tokens_per_s
    share = base_prof.prefix_cache_hit_share
    if use_new and u > 0:
        ptps = 1.0 / u
        u_lo, u_hi = _percentile_ci(boots[:, 1], resolution_s / float(np.ptp(x[:, 1])))
        lo, hi = 1.0 / u_hi, (1.0 / u_lo if u_lo > 0 else math.inf)
        params["prefill_tokens_per_s"] = FitParameter(ptps, lo, hi, "fitted", src, "1 / per-token cost of new input")
        if use_ctx:
            share = min(1.0, max(0.0, 1.0 - v / u))
            with np.errstate(divide="ignore", invalid="ignore"):
                sb = np.clip(1.0 - boots[:, 2] / boots[:, 1], 0.0, 1.0)
            lo, hi = _percentile_ci(sb, resolution_s / float(np.ptp(x[:, 2])) / u)
            lo, hi = max(0.0, lo), min(1.0, hi)
            params["prefix_cache_hit_share"] = FitParameter(
                share, lo, hi, "fitted", src, "1 - per-token cost of context / of new input"
            )
    fit_prof = fit_prof.with_(prefill_overhead_s=over, prefill_tokens_per_s=ptps, prefix_cache_hit_share=share)

    # -- complete: output classifier fixed + per 1k output, plus persistence/billing when on the path --------------
    post = 0.0 if base_prof.post_off_critical_path else base_prof.persist_s + base_prof.postprocess_s
    outk = t["output_tokens"].to_numpy(float) / 1000
    comp = t["complete_s"].to_numpy(float) - post
    if np.ptp(outk) > 0:
        xc = np.column_stack([np.ones(n), outk])
        kc = _inliers(xc, comp, resolution_s)
        outliers["complete"] = int((~kc).sum())
        xc, comp = xc[kc], comp[kc]
        c0, c1 = _ols(xc, comp)
        cb2 = np.array([_ols(xc[ix], comp[ix]) for ix in rng.integers(0, len(comp), size=(n_boot, len(comp)))])
        lo, hi = _percentile_ci(cb2[:, 0], resolution_s)
        params["safety_out_s"] = FitParameter(max(0.0, c0), max(0.0, lo), hi, "fitted", src, "intercept of complete")
        lo, hi = _percentile_ci(cb2[:, 1], resolution_s / float(np.ptp(xc[:, 1])))
        params["safety_out_per_1k_s"] = FitParameter(max(0.0, c1), max(0.0, lo), hi, "fitted", src, "slope of complete")
        fit_prof = fit_prof.with_(safety_out_s=max(0.0, c0), safety_out_per_1k_s=max(0.0, c1))
    params["upload_bytes_per_s"] = FitParameter(
        math.inf, None, None, "assumed", src, "not separable from per-token costs: absorbed by the prefill fit"
    )

    # -- every other numeric parameter: the base's value, assumed ------------------------------------------------
    fitted_profile = fit_prof.with_(name=name)
    for f in dataclasses.fields(Profile):
        v0 = getattr(fitted_profile, f.name)
        if f.name in params or isinstance(v0, bool) or not isinstance(v0, int | float):
            continue
        params[f.name] = FitParameter(float(v0), None, None, "assumed", base_name, "kept from the base preset")

    # -- tool time (a workload parameter) -------------------------------------------------------------------------
    tool = t.loc[t["tool_calls"] > 0, "tool_s"].to_numpy(float)
    workload: dict[str, FitParameter] = {}
    if len(tool):
        pos = tool[tool > 0]
        med = float(np.median(tool))
        mb = np.array([np.median(tool[rng.integers(0, len(tool), len(tool))]) for _ in range(n_boot)])
        lo, hi = _percentile_ci(mb, resolution_s)
        workload["tool_time_median_s"] = FitParameter(med, max(0.0, lo), hi, "fitted", src, "median tool time")
        if len(pos) > 2:
            sig = float(np.std(np.log(pos), ddof=1))
            sb2 = np.array([np.std(np.log(pos[rng.integers(0, len(pos), len(pos))]), ddof=1) for _ in range(n_boot)])
            lo, hi = _percentile_ci(sb2)
            workload["tool_time_sigma"] = FitParameter(sig, lo, hi, "fitted", src, "sd of log tool time")

    # -- residuals ------------------------------------------------------------------------------------------------
    pred_ttft = np.empty(n)
    pred_complete = np.empty(n)
    pred_decode = np.empty(n)
    for k, r in enumerate(t.itertuples(index=False)):
        spec = _spec(r)
        plan = plan_turn(fitted_profile, spec, cache_state(fitted_profile, spec, True)._replace(connection_open=True))
        d = {s.name: s.duration_s for s in plan}
        pred_ttft[k] = sum(s.duration_s for s in plan[1 : [s.name for s in plan].index("decode")])
        pred_decode[k] = d["decode"]
        pred_complete[k] = d["safety_out"] + d["persist"] + d["postprocess"]
    residuals = {
        "ttft": _stats(t["request_ttft_s"].to_numpy(float) - pred_ttft),
        "decode": _stats(t["decode_s"].to_numpy(float) - pred_decode),
        "complete": _stats(t["complete_s"].to_numpy(float) - pred_complete),
    }
    for key, k in outliers.items():
        residuals[key]["outliers"] = k
    e2e = []
    for s in sessions_from_spans(spans):
        first, last = s.calls[0].start_s, s.calls[-1].end_s
        if first is None or last is None or any(c.ttft_s is None for c in s.calls):
            continue
        measured = last - first
        predicted = forecast(fitted_profile, trace_workload(s)).e2e_s
        e2e.append((predicted - measured) / measured)
    if e2e:
        arr = np.array(e2e)
        residuals["e2e"] = {"n": len(arr), "mean_rel": float(arr.mean()), "max_abs_rel": float(np.abs(arr).max())}
    return FitResult(
        name=name,
        base=base_name,
        source=src,
        parameters=params,
        workload=workload,
        residuals=residuals,
        turns=n,
        rollouts=int(t.groupby(["source", "scenario", "rollout"]).ngroups),
        profile=fitted_profile,
    )


def fit_file(path: str | os.PathLike[str], **kwargs: Any) -> FitResult:
    """:func:`fit_spans` on a spans file (CSV or Parquet); the file's name is the fitted values' source."""
    spans = read_spans_file(Path(path))
    return fit_spans(spans, source=kwargs.pop("source", Path(path).name), **kwargs)


def write_profile(result: FitResult, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.write_text(result.to_toml(), encoding="utf-8")
    # Read back: a file load_profile cannot read must not be left behind as a success.
    load_profile(p)
    return p


def compare_parameters(result: FitResult, truth: Profile | Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per fitted parameter: truth, value, relative error, inside the interval."""
    out = {}
    for key, p in result.parameters.items():
        if p.provenance != "fitted":
            continue
        true = float(getattr(truth, key) if isinstance(truth, Profile) else truth[key])
        rel = abs(p.value - true) / abs(true) if true else abs(p.value)
        out[key] = {
            "truth": true,
            "value": p.value,
            "lo": p.lo,
            "hi": p.hi,
            "rel_error": rel,
            "inside": p.contains(true),
        }
    return out
