"""Fit per-call model time to tokens on real sessions: a robust regression, session-bootstrap intervals, holdout.

Each timed model call (:mod:`labkit.traces.timing`) gives one row: its time from input complete to completion,
and its visible output, reasoning and uncached input tokens. The fit is

    seconds = call_fixed_s + visible / decode_tps + reasoning / reasoning_tps
              + uncached * uncached_input_s_per_1k / 1000

with every coefficient >= 0, by Huber's M-estimator (``scipy.optimize.least_squares(loss="huber")``, scale
re-estimated from the residuals' median absolute deviation): real call times are heavy-tailed (a call that
waited on a rate limit, a retry, a long queue), and least squares would let those few calls set the fixed
part. A column the data does not vary (no reasoning tokens: Claude's logs do not split them out) is not fitted:
reasoning tokens then decode at ``decode_tps``, as the latency model assumes.

The robust fit estimates the *typical* call; a sum of calls needs the mean. ``call_mean_residual_s`` (the tail
the robust fit leaves out, per call: each session's mean residual, the median over sessions,
:func:`tail_per_call`) is what a prediction of a session's model time adds per call, so a prediction of a sum
carries the tail even when the call times are skewed.

Intervals are 95% percentile bootstraps that resample *sessions* (calls of one session share a machine, a
network and a time of day, so they are not independent draws); with one session they resample calls and say so.
``holdout`` refits without each session in turn and predicts its model time (the sum) from the others.

What no client log separates (stated in the result and in the profile it writes): how ``call_fixed_s`` splits
between API work, queueing, prefill overhead and the client's own context building; that split is an
assumption (:data:`SPLIT_NOTE`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.model import CacheState, Profile, TurnSpec, load_profile, plan_turn
from labkit.traces.model import Session, Trace
from labkit.traces.parameter import FitParameter
from labkit.traces.timing import SessionTiming, trace_timings
from labkit.util.progress import progress

#: Design columns: the constant, then tokens in thousands (so the coefficients are seconds per 1,000 tokens).
COLUMNS = ("call_fixed_s", "visible_output", "reasoning", "uncached_input")
#: Huber's tuning constant: 95% efficiency at Gaussian residuals.
HUBER_K = 1.345
MIN_CALLS = 6
#: A profile's decode speed must be finite: a slope the fit puts at 0 becomes this (no decode time to speak of).
MAX_TPS = 1e9
SPLIT_NOTE = (
    "call_fixed_s is one number to a client log: API work, queueing, prefill overhead and the client's own "
    "context building all add to it alike. The profile keeps the base preset's fixed stages (validation, "
    "config, safety, hops, persistence) as they are and puts the rest of call_fixed_s into queue_s; when "
    "call_fixed_s is below the base's fixed time, every fixed stage is scaled down in proportion. That split is "
    "an assumption, not a measurement."
)


@dataclass(frozen=True)
class Calls:
    """The fit's rows: design matrix (``COLUMNS``), call seconds, and each row's session (an index)."""

    x: np.ndarray
    y: np.ndarray
    session: np.ndarray
    sessions: tuple[str, ...]

    def take(self, sessions: Sequence[int]) -> Calls:
        """The rows of these sessions (a session drawn twice is two sessions, numbered by position)."""
        parts = [np.flatnonzero(self.session == s) for s in sessions]
        rows = np.concatenate(parts)
        labels = np.concatenate([np.full(len(r), k) for k, r in enumerate(parts)])
        return Calls(self.x[rows], self.y[rows], labels, tuple(self.sessions[s] for s in sessions))


def call_rows(timings: Sequence[SessionTiming]) -> Calls:
    rows, ys, sess = [], [], []
    for k, t in enumerate(timings):
        for c in t.calls:
            rows.append(
                (1.0, c.visible_output_tokens / 1000, c.reasoning_tokens / 1000, c.uncached_input_tokens / 1000)
            )
            ys.append(c.seconds)
            sess.append(k)
    return Calls(
        np.array(rows, dtype=float).reshape(-1, 4),
        np.array(ys, dtype=float),
        np.array(sess, dtype=int),
        tuple(t.session for t in timings),
    )


def active_columns(x: np.ndarray) -> np.ndarray:
    """Columns the rows vary enough to fit: the constant always; a token column with 3+ non-zero calls."""
    active = np.array([True] + [int((x[:, j] > 0).sum()) >= 3 and np.ptp(x[:, j]) > 0 for j in range(1, 4)])
    return active


def _mad(r: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(r - np.median(r))))


def robust_fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Huber M-estimate of the coefficients (all >= 0); an unfitted reasoning column takes the visible output's
    slope (reasoning decodes at the same speed), an unfitted input column 0."""
    from scipy.optimize import least_squares  # imported here: importing labkit.traces stays light

    active = active_columns(x)
    xa = x[:, active]
    x0 = np.clip(np.linalg.lstsq(xa, y, rcond=None)[0], 0.0, None)
    coef = x0
    for _ in range(3):
        scale = max(_mad(y - xa @ coef), 1e-3)
        fit = least_squares(
            lambda b: xa @ b - y, coef, bounds=(0.0, np.inf), loss="huber", f_scale=HUBER_K * scale, method="trf"
        )
        coef = fit.x
    full = np.zeros(4)
    full[active] = coef
    if not active[2]:
        full[2] = full[1]
    return full


def _percentiles(samples: np.ndarray) -> tuple[float | None, float | None]:
    s = samples[np.isfinite(samples)]
    if len(s) < 2:
        return None, None
    lo, hi = np.percentile(s, [2.5, 97.5])
    return float(lo), float(hi)


def _rate(per_1k: float) -> float:
    """Tokens per second from seconds per 1,000 tokens (a slope of 0 is infinitely fast)."""
    return math.inf if per_1k <= 0 else 1000.0 / per_1k


def _rate_interval(lo: float | None, hi: float | None) -> tuple[float | None, float | None]:
    if lo is None or hi is None:
        return None, None
    return _rate(hi), _rate(lo)


@dataclass(frozen=True)
class Draws:
    """Coefficients (rows: the full fit, then each bootstrap resample) and mean residual per call."""

    coef: np.ndarray
    mean_residual: np.ndarray


def tail_per_call(residuals: np.ndarray, session: np.ndarray) -> float:
    """What a call adds on average beyond the robust fit: each session's mean residual, the median over sessions.

    A session's own mean keeps its tail (a sum needs the mean, not the median); the median over sessions keeps
    one session's unusual tail (a long stretch of slow calls, a rate-limited afternoon) from being charged to
    every other session.
    """
    means = [float(np.mean(residuals[session == k])) for k in np.unique(session)]
    return float(np.median(means))


def _fit_draw(calls: Calls) -> tuple[np.ndarray, float]:
    coef = robust_fit(calls.x, calls.y)
    return coef, tail_per_call(calls.y - calls.x @ coef, calls.session)


def bootstrap(calls: Calls, n_boot: int, seed: int) -> Draws:
    """The fit, then ``n_boot`` refits on resampled sessions (on resampled calls when there is one session)."""
    rng = np.random.default_rng(seed)
    n_sess = len(calls.sessions)
    coefs, means = [], []
    first = _fit_draw(calls)
    coefs.append(first[0])
    means.append(first[1])
    for _ in progress(range(n_boot), desc="bootstrap by session", total=n_boot, unit="resample"):
        if n_sess > 1:
            sample = calls.take(rng.integers(0, n_sess, n_sess).tolist())
        else:
            i = rng.integers(0, len(calls.y), len(calls.y))
            sample = Calls(calls.x[i], calls.y[i], np.zeros(len(i), dtype=int), calls.sessions)
        if len(sample.y) < MIN_CALLS:
            continue
        c, m = _fit_draw(sample)
        if not active_columns(sample.x)[2]:
            c[2] = np.nan  # a resample without reasoning tokens says nothing of their speed
        coefs.append(c)
        means.append(m)
    return Draws(np.array(coefs), np.array(means))


@dataclass(frozen=True)
class HoldoutRow:
    """One held-out session: its calls, its measured model time, the prediction from a fit on the others."""

    session: str
    calls: int
    measured_s: float
    predicted_s: float

    @property
    def error(self) -> float:
        return (self.predicted_s - self.measured_s) / self.measured_s if self.measured_s > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "calls": self.calls,
            "measured_s": self.measured_s,
            "predicted_s": self.predicted_s,
        }


def holdout(calls: Calls) -> list[HoldoutRow]:
    """Leave-one-session-out: each session's model time predicted (as a sum, with the mean residual per call)
    from a fit on every other session."""
    rows = []
    for k, name in progress(enumerate(calls.sessions), desc="holdout", total=len(calls.sessions), unit="session"):
        train = calls.take([j for j in range(len(calls.sessions)) if j != k])
        test = calls.take([k])
        if len(train.y) < MIN_CALLS or not len(test.y):
            continue
        coef, mean_resid = _fit_draw(train)
        predicted = float(np.sum(test.x @ coef) + len(test.y) * mean_resid)
        rows.append(HoldoutRow(name, len(test.y), float(test.y.sum()), predicted))
    return rows


def median_abs_error(rows: Sequence[HoldoutRow]) -> float | None:
    errs = [abs(r.error) for r in rows if math.isfinite(r.error)]
    return float(np.median(errs)) if errs else None


@dataclass(frozen=True)
class SessionFit:
    """The fit of call time on tokens over real sessions (see the module docstring)."""

    parameters: dict[str, FitParameter]
    residuals: dict[str, float]
    calls: int
    sessions: int
    files: tuple[str, ...]
    base: str
    draws: Draws = field(repr=False)
    holdout: tuple[HoldoutRow, ...] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def median_abs_error(self) -> float | None:
        return None if self.holdout is None else median_abs_error(self.holdout)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "parameters": {k: v.to_dict() for k, v in self.parameters.items()},
            "residuals": dict(self.residuals),
            "calls": self.calls,
            "sessions": self.sessions,
            "files": list(self.files),
            "base": self.base,
            "not_separable": dict(self.notes),
        }
        if self.holdout is not None:
            d["holdout"] = [r.to_dict() for r in self.holdout]
            d["median_abs_error"] = self.median_abs_error
        return d

    def coefficients(self, draw: int = 0) -> np.ndarray:
        """Seconds per call and per 1,000 tokens (``COLUMNS``) of the full fit (0) or of bootstrap draw k."""
        return self.draws.coef[draw]

    def profile(self, draw: int = 0, name: str = "fitted") -> Profile:
        """The fit as a :class:`Profile` on its base preset (decode speed, prefill speed, and call_fixed_s split
        as :data:`SPLIT_NOTE` says) for the full fit (0) or bootstrap draw ``draw``."""
        return fitted_profile(load_profile(self.base), self.coefficients(draw), name)

    def to_toml(self, name: str = "fitted") -> str:
        return profile_toml(self, name)


def fixed_time_s(profile: Profile) -> float:
    """What the profile charges a continuing call at (almost) no tokens: its fixed stages' sum."""
    spec = TurnSpec(1, 0, 0, 1, 0.0, False, 0)
    persistent = profile.transport == "websocket" or profile.keep_alive
    cache = CacheState(connection_open=persistent, connection_cache_hit=profile.chaining == "connection")
    return sum(s.duration_s for s in plan_turn(profile, spec, cache))


#: Fixed per-call stage parameters scaled down together when call_fixed_s is below the base's fixed time.
FIXED_STAGE_PARAMETERS = (
    "validate_s",
    "config_load_s",
    "config_cached_s",
    "safety_in_s",
    "safety_out_s",
    "hop_latency_s",
    "persist_s",
    "postprocess_s",
    "queue_s",
    "prefill_overhead_s",
    "rtt_s",
)


def fitted_profile(base: Profile, coef: np.ndarray, name: str = "fitted") -> Profile:
    """``base`` with the fitted decode and prefill speeds and ``call_fixed_s`` split as :data:`SPLIT_NOTE`."""
    prof = base.with_(
        name=name,
        decode_tps=min(_rate(float(coef[1])), MAX_TPS),
        prefill_tokens_per_s=_rate(float(coef[3])),
    )
    fixed = float(coef[0])
    have = fixed_time_s(prof.with_(decode_tps=MAX_TPS))
    if fixed >= have:
        return prof.with_(queue_s=prof.queue_s + fixed - have)
    k = fixed / have if have > 0 else 0.0
    return prof.with_(**{p: getattr(prof, p) * k for p in FIXED_STAGE_PARAMETERS})


def _parameters(draws: Draws, src: str, reasoning_fitted: bool) -> dict[str, FitParameter]:
    full, boot = draws.coef[0], draws.coef[1:]
    out: dict[str, FitParameter] = {}
    lo, hi = _percentiles(boot[:, 0])
    out["call_fixed_s"] = FitParameter(
        float(full[0]), lo, hi, "fitted", src, "time per call that does not grow with tokens (robust intercept)"
    )
    lo, hi = _rate_interval(*_percentiles(boot[:, 1]))
    out["decode_tps"] = FitParameter(_rate(float(full[1])), lo, hi, "fitted", src, "1 / slope on visible output")
    if reasoning_fitted:
        lo, hi = _rate_interval(*_percentiles(boot[:, 2]))
        out["reasoning_tps"] = FitParameter(_rate(float(full[2])), lo, hi, "fitted", src, "1 / slope on reasoning")
    else:
        out["reasoning_tps"] = FitParameter(
            _rate(float(full[2])), None, None, "assumed", src, "no reasoning tokens to fit: decoded at decode_tps"
        )
    lo, hi = _percentiles(boot[:, 3])
    out["uncached_input_s_per_1k"] = FitParameter(
        float(full[3]), lo, hi, "fitted", src, "seconds per 1,000 uncached input tokens"
    )
    lo, hi = _rate_interval(lo, hi)
    out["prefill_tokens_per_s"] = FitParameter(
        _rate(float(full[3])), lo, hi, "derived", src, "1000 / uncached_input_s_per_1k"
    )
    lo, hi = _percentiles(draws.mean_residual[1:])
    out["call_mean_residual_s"] = FitParameter(
        float(draws.mean_residual[0]), lo, hi, "fitted", src,
        "mean residual per call (median over sessions): the tail a robust fit leaves out, added to predict a sum",
    )  # fmt: skip
    return out


def _residual_stats(calls: Calls, coef: np.ndarray) -> dict[str, float]:
    r = calls.y - calls.x @ coef
    return {
        "n": len(r),
        "median_s": float(np.median(r)),
        "mean_s": float(np.mean(r)),
        "mad_s": _mad(r),
        "rmse_s": float(np.sqrt(np.mean(r**2))),
        "p95_abs_s": float(np.percentile(np.abs(r), 95)),
        "max_abs_s": float(np.max(np.abs(r))),
    }


def fit_timings(
    timings: Sequence[SessionTiming],
    *,
    files: Sequence[str] = (),
    base: str = "websocket",
    n_boot: int = 200,
    seed: int = 0,
    with_holdout: bool = False,
) -> SessionFit:
    """The robust fit over timed sessions (see the module docstring)."""
    if n_boot < 20:
        raise ValueError(f"n_boot: must be >= 20, got {n_boot!r}")
    calls = call_rows(timings)
    if len(calls.y) < MIN_CALLS:
        raise ValueError(f"trace: {len(calls.y)} timed model calls; the fit needs at least {MIN_CALLS}")
    active = active_columns(calls.x)
    if not active[1]:
        raise ValueError("trace: visible output tokens do not vary over 3+ calls: decode_tps cannot be fitted")
    load_profile(base)  # a bad base is an error now, not when the profile is written
    src = ", ".join(files) if files else "sessions"
    draws = bootstrap(calls, n_boot, seed)
    notes = {
        "call_fixed_s": SPLIT_NOTE,
        "uncached_input_s_per_1k": "prefill and the API's per-token work on new input (validation, render, "
        "input safety) grow alike with uncached input: the slope carries both; the profile puts it in prefill",
    }
    if len(calls.sessions) == 1:
        notes["intervals"] = "one session: the bootstrap resamples calls (understates the spread between sessions)"
    elif len(calls.sessions) < 5:
        notes["intervals"] = (
            f"{len(calls.sessions)} sessions: a session bootstrap has few distinct resamples, so the intervals are "
            "coarse (an end can equal the value)"
        )
    return SessionFit(
        parameters=_parameters(draws, src, bool(active[2])),
        residuals=_residual_stats(calls, draws.coef[0]),
        calls=len(calls.y),
        sessions=len(calls.sessions),
        files=tuple(files),
        base=base,
        draws=draws,
        holdout=tuple(holdout(calls)) if with_holdout else None,
        notes=notes,
    )


def fit_sessions(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Trace | Iterable[Session],
    *,
    fmt: str | None = None,
    **kwargs: Any,
) -> SessionFit:
    """:func:`fit_timings` on trace files of any importable format (or on sessions already read)."""
    from labkit.traces.load import load_trace

    if isinstance(paths, Trace):
        sessions: list[Session] = list(paths.sessions)
        files: list[str] = sorted({s.source for s in sessions if s.source})
    else:
        items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        if items and all(isinstance(i, Session) for i in items):
            sessions = [i for i in items if isinstance(i, Session)]
            files = sorted({s.source for s in sessions if s.source})
        else:
            file_items = [i for i in items if isinstance(i, str | os.PathLike)]
            sessions = list(load_trace(file_items, fmt).sessions)
            files = [Path(p).name for p in file_items]
    timings = trace_timings(sessions)
    if not timings:
        raise ValueError("trace: no session has a model call with both its start and end times")
    return fit_timings(timings, files=kwargs.pop("files", files), **kwargs)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_num(v: float) -> str:
    return '"inf"' if math.isinf(v) else repr(float(v))


def profile_toml(fit: SessionFit, name: str = "fitted") -> str:
    """A profile file :func:`labkit.model.load_profile` reads: per parameter its value and, for what the fit
    set, ``fitted: FILES (N calls)``; ``[fit]`` the fit's own parameters, ``[not_separable]`` what it cannot
    tell apart."""
    prof = fit.profile(0, name)
    base = load_profile(fit.base)
    fitted_from = f"fitted: {', '.join(fit.files) or 'sessions'} ({fit.calls} calls, {fit.sessions} sessions)"
    p = fit.parameters
    set_by_fit = {
        "decode_tps": (p["decode_tps"], fitted_from),
        "prefill_tokens_per_s": (p["prefill_tokens_per_s"], fitted_from + "; 1000 / uncached_input_s_per_1k"),
    }
    lines = [
        "# Written by labkit fit: a profile fitted to real sessions' per-call times (95% session-bootstrap intervals).",
        "[profile]",
        f"name = {_toml_str(name)}",
        f"base = {_toml_str(fit.base)}",
        f"description = {_toml_str(fitted_from)}",
    ]
    for key, (param, source) in set_by_fit.items():
        parts = [f"value = {_toml_num(getattr(prof, key))}"]
        if param.lo is not None and param.hi is not None:
            parts += [f"lo = {_toml_num(param.lo)}", f"hi = {_toml_num(param.hi)}"]
        parts += [f'provenance = "{param.provenance}"', f"source = {_toml_str(source)}"]
        lines.append(f"{key} = {{ {', '.join(parts)} }}")
    for f in dataclasses.fields(Profile):
        key = f.name
        if key in set_by_fit or key == "name":
            continue
        v, v0 = getattr(prof, key), getattr(base, key)
        if isinstance(v, int | float) and not isinstance(v, bool) and v != v0:
            src = "assumed: split of call_fixed_s (see [not_separable])"
            lines.append(f'{key} = {{ value = {_toml_num(v)}, provenance = "assumed", source = {_toml_str(src)} }}')
    lines += ["", "[fit]"]
    for key, param in p.items():
        parts = [f"value = {_toml_num(param.value)}"]
        if param.lo is not None and param.hi is not None:
            parts += [f"lo = {_toml_num(param.lo)}", f"hi = {_toml_num(param.hi)}"]
        source = fitted_from if param.provenance == "fitted" else f"{param.provenance}: {param.note}"
        parts += [f'provenance = "{param.provenance}"', f"source = {_toml_str(source)}"]
        lines.append(f"{key} = {{ {', '.join(parts)} }}")
    lines += ["", "[not_separable]"]
    lines += [f"{k} = {_toml_str(v)}" for k, v in fit.notes.items()]
    return "\n".join(lines) + "\n"


def write_session_profile(fit: SessionFit, path: str | os.PathLike[str], name: str = "fitted") -> Path:
    p = Path(path)
    p.write_text(profile_toml(fit, name), encoding="utf-8")
    load_profile(p)  # read back: a file load_profile cannot read must not be left behind as a success
    return p
