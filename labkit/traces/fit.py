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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import CacheState, Profile, TurnSpec, load_profile, plan_turn
from labkit.traces.closedform import expected_e2e_s
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


def _warm(profile: Profile, spec: TurnSpec) -> CacheState:
    """A turn measured on an open connection, its caches as an undisturbed rollout leaves them."""
    later = spec.index > 0
    return CacheState(
        connection_open=True, connection_cache_hit=profile.chaining == "connection" and later, replica_hit=later
    )


@dataclass(frozen=True)
class _Sample:
    """The turns a fit reads, and what every per-quantity fit shares: the resampler and the clock resolution."""

    t: pd.DataFrame
    rng: np.random.Generator
    n_boot: int
    resolution_s: float
    src: str

    def bootstrap(self, stat: Callable[[np.ndarray], Any], n: int) -> np.ndarray:
        """``stat`` of ``n_boot`` resamples with replacement of ``n`` rows (row indices in), one row per resample."""
        return np.array([stat(self.rng.integers(0, n, n)) for _ in range(self.n_boot)], dtype=float)


def _fit_decode(d: _Sample) -> tuple[FitParameter, int]:
    """decode seconds = tokens / tps + constant: the slope over turns is 1 / decode_tps."""
    dec = d.t[d.t["output_tokens"] >= 3]
    tok = dec["output_tokens"].to_numpy(float) - 1
    dsec = dec["decode_s"].to_numpy(float)
    if len(dec) < 3 or np.ptp(tok) == 0:
        raise ValueError("spans: decode spans of at least 3 different output lengths are needed to fit decode_tps")
    x = np.column_stack([np.ones_like(tok), tok])
    keep = _inliers(x, dsec, d.resolution_s)
    x, dsec, tok = x[keep], dsec[keep], tok[keep]
    tps = 1.0 / _ols(x, dsec)[1]
    slopes = d.bootstrap(lambda i: _ols(x[i], dsec[i])[1] if np.ptp(tok[i]) > 0 else np.nan, len(dsec))
    # The interval of the slope (seconds per token), widened by the clock resolution over the tokens' range.
    s_lo, s_hi = _percentile_ci(slopes, d.resolution_s / float(np.ptp(tok)))
    lo, hi = 1.0 / s_hi, (1.0 / s_lo if s_lo > 0 else math.inf)
    note = "slope of decode seconds on decoded tokens"
    return FitParameter(tps, lo, hi, "fitted", d.src, note), int((~keep).sum())


def _fit_connect(d: _Sample, rtt_from_connect: bool) -> dict[str, FitParameter]:
    """connect_s: the median set-up of turns that opened a connection; rtt_s assumed 0, or half of it."""
    fresh = d.t.loc[~d.t["reused"].astype(bool), "connect_s"].to_numpy(float)
    out: dict[str, FitParameter] = {}
    if len(fresh):
        med = float(np.median(fresh))
        lo, hi = _percentile_ci(d.bootstrap(lambda i: np.median(fresh[i]), len(fresh)), d.resolution_s)
        out["connect_s"] = FitParameter(med, max(0.0, lo), hi, "fitted", d.src, f"median of {len(fresh)} set-ups")
        if rtt_from_connect:
            note = "connect_s / 2 (handshake + upgrade round trips)"
            out["rtt_s"] = FitParameter(med / 2, max(0.0, lo) / 2, hi / 2, "derived", d.src, note)
    if "rtt_s" not in out:
        note = "not separable from the fixed TTFT cost, which carries it"
        out["rtt_s"] = FitParameter(0.0, None, None, "assumed", d.src, note)
    return out


def _ttft_offsets(t: pd.DataFrame, probe: Profile) -> np.ndarray:
    """What the profile says each turn's TTFT costs besides prefill (validation, render, safety, hops, queue,
    upload, download and the reasoning tokens)."""
    offsets = np.empty(len(t))
    r: Any
    for k, r in enumerate(t.itertuples(index=False)):
        spec = _spec(r)
        d = {s.name: s.duration_s for s in plan_turn(probe, spec, _warm(probe, spec))}
        offsets[k] = sum(d[s] for s in _PRE_DECODE_NOT_FITTED) + d["upload"] + d["download"] + d["reasoning"]
    return offsets


def _fit_ttft(d: _Sample, fit_prof: Profile) -> tuple[dict[str, FitParameter], int]:
    """TTFT minus the rest = fixed + u * new + v * context: prefill_overhead_s, prefill_tokens_per_s = 1 / u,
    prefix_cache_hit_share = 1 - v / u."""
    t, n = d.t, len(d.t)
    y = t["request_ttft_s"].to_numpy(float) - _ttft_offsets(
        t, fit_prof.with_(prefill_overhead_s=0.0, prefill_tokens_per_s=math.inf)
    )
    new = t["new_tokens"].to_numpy(float)
    ctx = t["context_tokens"].to_numpy(float)
    use_new = np.ptp(new) > 0
    use_ctx = use_new and np.ptp(ctx) > 0 and np.linalg.matrix_rank(np.column_stack([np.ones(n), new, ctx])) == 3
    x = np.column_stack([np.ones(n)] + ([new] if use_new else []) + ([ctx] if use_ctx else []))
    keep = _inliers(x, y, d.resolution_s)
    x, y = x[keep], y[keep]
    coef = _ols(x, y)
    boots = d.bootstrap(lambda i: _ols(x[i], y[i]), len(y))
    out: dict[str, FitParameter] = {}
    lo, hi = _percentile_ci(boots[:, 0], d.resolution_s)
    note = "the fixed TTFT cost beyond the base's validation, config, safety, hops and queue"
    out["prefill_overhead_s"] = FitParameter(max(0.0, float(coef[0])), max(0.0, lo), hi, "fitted", d.src, note)
    if use_new and coef[1] > 0:
        u_lo, u_hi = _percentile_ci(boots[:, 1], d.resolution_s / float(np.ptp(x[:, 1])))
        lo, hi = 1.0 / u_hi, (1.0 / u_lo if u_lo > 0 else math.inf)
        note = "1 / per-token cost of new input"
        out["prefill_tokens_per_s"] = FitParameter(1.0 / float(coef[1]), lo, hi, "fitted", d.src, note)
        if use_ctx:
            share = min(1.0, max(0.0, 1.0 - float(coef[2] / coef[1])))
            with np.errstate(divide="ignore", invalid="ignore"):
                sb = np.clip(1.0 - boots[:, 2] / boots[:, 1], 0.0, 1.0)
            lo, hi = _percentile_ci(sb, d.resolution_s / float(np.ptp(x[:, 2])) / float(coef[1]))
            note = "1 - per-token cost of context / of new input"
            out["prefix_cache_hit_share"] = FitParameter(share, max(0.0, lo), min(1.0, hi), "fitted", d.src, note)
    return out, int((~keep).sum())


def _fit_complete(d: _Sample, base: Profile) -> tuple[dict[str, FitParameter], int | None]:
    """complete = the output classifier (fixed + per 1k output), plus persistence and billing when on the path."""
    post = 0.0 if base.post_off_critical_path else base.persist_s + base.postprocess_s
    outk = d.t["output_tokens"].to_numpy(float) / 1000
    comp = d.t["complete_s"].to_numpy(float) - post
    if np.ptp(outk) == 0:
        return {}, None
    x = np.column_stack([np.ones(len(outk)), outk])
    keep = _inliers(x, comp, d.resolution_s)
    x, comp = x[keep], comp[keep]
    c0, c1 = _ols(x, comp)
    boots = d.bootstrap(lambda i: _ols(x[i], comp[i]), len(comp))
    lo, hi = _percentile_ci(boots[:, 0], d.resolution_s)
    out = {"safety_out_s": FitParameter(max(0.0, c0), max(0.0, lo), hi, "fitted", d.src, "intercept of complete")}
    lo, hi = _percentile_ci(boots[:, 1], d.resolution_s / float(np.ptp(x[:, 1])))
    out["safety_out_per_1k_s"] = FitParameter(max(0.0, c1), max(0.0, lo), hi, "fitted", d.src, "slope of complete")
    return out, int((~keep).sum())


def _fit_tool_time(d: _Sample) -> dict[str, FitParameter]:
    """The workload's tool time: median and the sd of its log (a lognormal's sigma)."""
    tool = d.t.loc[d.t["tool_calls"] > 0, "tool_s"].to_numpy(float)
    out: dict[str, FitParameter] = {}
    if not len(tool):
        return out
    lo, hi = _percentile_ci(d.bootstrap(lambda i: np.median(tool[i]), len(tool)), d.resolution_s)
    out["tool_time_median_s"] = FitParameter(
        float(np.median(tool)), max(0.0, lo), hi, "fitted", d.src, "median tool time"
    )
    pos = tool[tool > 0]
    if len(pos) > 2:
        lo, hi = _percentile_ci(d.bootstrap(lambda i: np.std(np.log(pos[i]), ddof=1), len(pos)))
        sigma = float(np.std(np.log(pos), ddof=1))
        out["tool_time_sigma"] = FitParameter(sigma, lo, hi, "fitted", d.src, "sd of log tool time")
    return out


def _residuals(
    t: pd.DataFrame, spans: pd.DataFrame, prof: Profile, outliers: dict[str, int]
) -> dict[str, dict[str, float]]:
    n = len(t)
    pred_ttft, pred_decode, pred_complete = np.empty(n), np.empty(n), np.empty(n)
    r: Any
    for k, r in enumerate(t.itertuples(index=False)):
        spec = _spec(r)
        plan = plan_turn(prof, spec, _warm(prof, spec))
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
        e2e.append((expected_e2e_s(prof, trace_workload(s)) - (last - first)) / (last - first))
    if e2e:
        arr = np.array(e2e)
        residuals["e2e"] = {"n": len(arr), "mean_rel": float(arr.mean()), "max_abs_rel": float(np.abs(arr).max())}
    return residuals


def _assumed(prof: Profile, params: dict[str, FitParameter], base_name: str) -> dict[str, FitParameter]:
    """Every numeric parameter the fit did not set: the base's value, provenance ``assumed``."""
    out = dict(params)
    for f in dataclasses.fields(Profile):
        v0 = getattr(prof, f.name)
        if f.name in out or isinstance(v0, bool) or not isinstance(v0, int | float):
            continue
        out[f.name] = FitParameter(float(v0), None, None, "assumed", base_name, "kept from the base preset")
    return out


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
    t = turn_table(spans)
    t = t[(t["attempts"] == 1) & np.isfinite(t["request_ttft_s"]) & (t["output_tokens"] >= 1)].reset_index(drop=True)
    if len(t) < 8:
        raise ValueError(f"spans: {len(t)} complete single-attempt turns; the fit needs at least 8")
    d = _Sample(t, np.random.default_rng(seed), n_boot, resolution_s, source or "spans")
    decode, n_out = _fit_decode(d)
    outliers = {"decode": n_out}
    params = {"decode_tps": decode, **_fit_connect(d, rtt_from_connect)}
    prof = base_prof.with_(rtt_s=params["rtt_s"].value, upload_bytes_per_s=math.inf, decode_tps=decode.value)
    ttft, outliers["ttft"] = _fit_ttft(d, prof)
    params.update(ttft)
    prof = prof.with_(**{k: p.value for k, p in ttft.items()})
    complete, n_out_c = _fit_complete(d, base_prof)
    if n_out_c is not None:
        outliers["complete"] = n_out_c
    params.update(complete)
    prof = prof.with_(**{k: p.value for k, p in complete.items()}, name=name)
    note = "not separable from per-token costs: absorbed by the prefill fit"
    params["upload_bytes_per_s"] = FitParameter(math.inf, None, None, "assumed", d.src, note)
    return FitResult(
        name=name,
        base=base_prof.name,
        source=d.src,
        parameters=_assumed(prof, params, base_prof.name),
        workload=_fit_tool_time(d),
        residuals=_residuals(t, spans, prof, outliers),
        turns=len(t),
        rollouts=int(t.groupby(["source", "scenario", "rollout"]).ngroups),
        profile=prof,
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
