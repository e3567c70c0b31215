"""Recovery of known parameters through each real format: generate, write, import, fit, compare.

Sessions drawn with a known :class:`~labkit.traces.synth.Truth` are written in a format
(:data:`~labkit.traces.synth.SYNTH_FORMATS`), read back by the importer :func:`labkit.traces.load_trace` picks
for the file, and fitted with :func:`labkit.traces.sessionfit.fit_timings` with holdout. What comes back: per
fitted parameter the truth, the estimate, its relative error and whether the 95% interval holds the truth;
and the leave-one-session-out median absolute error of the sessions' model time.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from labkit.traces.load import load_trace
from labkit.traces.sessionfit import SessionFit, fit_timings
from labkit.traces.synth import SYNTH_FORMATS, Truth, synth_sessions, write_format
from labkit.traces.timing import trace_timings
from labkit.util.progress import progress

RECOVERED = ("call_fixed_s", "decode_tps", "reasoning_tps", "uncached_input_s_per_1k")


@dataclass(frozen=True)
class ParameterRecovery:
    truth: float
    value: float
    lo: float | None
    hi: float | None

    @property
    def rel_error(self) -> float:
        return abs(self.value - self.truth) / abs(self.truth) if self.truth else abs(self.value)

    @property
    def inside(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo <= self.truth <= self.hi

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rel_error": self.rel_error, "inside": self.inside}


@dataclass(frozen=True)
class FormatRecovery:
    """One format's recovery: parameters, the holdout's median absolute error, and the calls read back."""

    format: str
    sessions: int
    calls: int
    parameters: dict[str, ParameterRecovery]
    median_abs_error: float | None
    #: Model time the importer read back against the generated one, worst session (relative).
    read_back_error: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "sessions": self.sessions,
            "calls": self.calls,
            "parameters": {k: v.to_dict() for k, v in self.parameters.items()},
            "median_abs_error": self.median_abs_error,
            "read_back_error": self.read_back_error,
        }


def _compare(fit: SessionFit, truth: Truth) -> dict[str, ParameterRecovery]:
    out = {}
    for key in RECOVERED:
        p = fit.parameters[key]
        out[key] = ParameterRecovery(float(getattr(truth, key)), p.value, p.lo, p.hi)
    return out


def recover_format(
    fmt: str,
    truth: Truth | None = None,
    *,
    n_sessions: int = 8,
    calls_per_session: int = 40,
    seed: int = 0,
    n_boot: int = 100,
) -> FormatRecovery:
    """Generate sessions with ``truth``, write them as ``fmt``, read them back, fit with holdout, compare."""
    truth = truth or Truth()
    sessions = synth_sessions(truth, n_sessions, calls_per_session, seed)
    with tempfile.TemporaryDirectory(prefix="labkit-recovery-") as d:
        files = write_format(sessions, fmt, d)
        read = load_trace(files)
    timings = trace_timings(read)
    generated = {s.id: s.model_s for s in sessions}
    worst = 0.0
    for k, t in enumerate(timings):
        # labkit spans name a rollout source/scenario/index, the others keep the generated id.
        want = generated.get(t.session, sessions[k].model_s if k < len(sessions) else math.nan)
        worst = max(worst, abs(t.model_s - want) / want)
    fit = fit_timings(timings, files=[f.name for f in files], n_boot=n_boot, seed=seed, with_holdout=True)
    return FormatRecovery(fmt, fit.sessions, fit.calls, _compare(fit, truth), fit.median_abs_error, worst)


def recover_formats(
    formats: tuple[str, ...] = SYNTH_FORMATS, truth: Truth | None = None, **kwargs: Any
) -> list[FormatRecovery]:
    return [recover_format(f, truth, **kwargs) for f in progress(formats, desc="recovery by format", unit="format")]
