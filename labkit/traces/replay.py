"""Replay: each session of a trace under each profile and decode speed, with its measured time beside.

The session becomes a :class:`~labkit.traces.workload.TraceWorkload`; the closed form
(:func:`labkit.traces.closedform.expected_e2e_s`, the expectation :func:`labkit.sim.analytic.forecast`
computes) gives its end to end under each profile, with the session's own prefix-cache share by default (see
:mod:`labkit.traces.workload`). The measured time is the session's agent-loop time
(:meth:`labkit.traces.model.Session.measured_s`: model calls and tool waits, not the user's think time).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labkit.model import Profile, load_profile, preset_names
from labkit.traces.closedform import expected_e2e_s
from labkit.traces.model import Session, Trace
from labkit.traces.workload import TraceWorkload, trace_workload
from labkit.util.progress import progress


def tps_key(tps: float) -> str:
    """The key of a decode speed in ``predicted_e2e_s`` (``65``, ``1000``, ``62.5``)."""
    return f"{float(tps):g}"


@dataclass(frozen=True)
class SessionReplay:
    """One session's replay: the ``labkit replay --json`` object of one session (keys are a contract)."""

    id: str
    format: str
    model_calls: int
    tool_calls: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    skipped_lines: int
    #: PROFILE -> TPS key -> seconds of end to end (closed form).
    predicted_e2e_s: dict[str, dict[str, float]]
    measured_s: float | None
    prefix_cache_share: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "skipped_lines": self.skipped_lines,
            "predicted_e2e_s": {p: dict(v) for p, v in self.predicted_e2e_s.items()},
            "measured_s": self.measured_s,
            "prefix_cache_share": self.prefix_cache_share,
            "skipped": dict(self.skipped),
        }

    def gain(self, baseline: str, candidate: str, tps: float | str) -> float:
        """Fractional end-to-end reduction of ``candidate`` against ``baseline`` at one decode speed."""
        key = tps if isinstance(tps, str) else tps_key(tps)
        b, c = self.predicted_e2e_s[baseline][key], self.predicted_e2e_s[candidate][key]
        return 1.0 - c / b


def resolve_profiles(profiles: Sequence[str | os.PathLike[str] | Profile] | None) -> list[Profile]:
    """Profiles from preset names, profile files or :class:`Profile` objects (default: every preset)."""
    out = []
    for p in profiles if profiles else preset_names():
        out.append(load_profile(p))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ValueError(f"profiles: two profiles share a name ({', '.join(names)})")
    return out


def replay_session(
    session: Session,
    profiles: Sequence[Profile],
    tps: Sequence[float] | None = None,
    *,
    trace_cache: bool = True,
) -> SessionReplay:
    """One session under each profile, at each decode speed (default: each profile's own)."""
    w: TraceWorkload = trace_workload(session)
    predicted: dict[str, dict[str, float]] = {}
    for prof in profiles:
        base = prof
        if trace_cache and w.prefix_cache_share is not None:
            base = prof.with_(prefix_cache_hit_share=w.prefix_cache_share)
        speeds = list(tps) if tps else [prof.decode_tps]
        predicted[prof.name] = {tps_key(s): expected_e2e_s(base.with_(decode_tps=float(s)), w) for s in speeds}
    calls = session.calls
    return SessionReplay(
        id=session.id,
        format=session.format,
        model_calls=len(calls),
        tool_calls=session.tool_calls,
        input_tokens=sum(c.input_tokens for c in calls),
        cached_input_tokens=sum(c.cached_input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        reasoning_tokens=sum(c.reasoning_tokens for c in calls),
        skipped_lines=session.skipped_lines,
        predicted_e2e_s=predicted,
        measured_s=session.measured_s(),
        prefix_cache_share=w.prefix_cache_share,
        skipped=dict(session.skipped),
    )


def replay(
    trace: Trace,
    profiles: Sequence[str | os.PathLike[str] | Profile] | None = None,
    tps: Sequence[float] | None = None,
    *,
    trace_cache: bool = True,
) -> list[SessionReplay]:
    """Every session of ``trace`` under every profile (default: every preset) and decode speed."""
    for s in tps or ():
        if not (isinstance(s, int | float) and np.isfinite(s) and s > 0):
            raise ValueError(f"tps: must be numbers > 0, got {s!r}")
    profs = resolve_profiles(profiles)
    return [replay_session(s, profs, tps, trace_cache=trace_cache) for s in progress(trace, desc="replay sessions")]


def replay_frame(results: Sequence[SessionReplay]) -> pd.DataFrame:
    """Long table: one row per session, profile and decode speed, with the measured time beside."""
    rows = []
    for r in results:
        for prof, by_tps in r.predicted_e2e_s.items():
            for key, secs in by_tps.items():
                rows.append(
                    {
                        "session": r.id,
                        "profile": prof,
                        "tps": float(key),
                        "predicted_e2e_s": secs,
                        "measured_s": r.measured_s,
                    }
                )
    return pd.DataFrame(rows)


# -- the session table -------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def calls_frame(session: Session) -> pd.DataFrame:
    """One row per model call: tokens, times, tool calls and their longest time (for figures)."""
    rows = []
    for c in session.calls:
        times = [t for t in (tc.seconds for tc in c.tool_calls) if t is not None]
        rows.append(
            {
                "session": session.id,
                "call": c.index,
                "start_s": c.start_s,
                "model_s": c.seconds,
                "input_tokens": c.input_tokens,
                "cached_input_tokens": c.cached_input_tokens,
                "uncached_input_tokens": c.input_tokens - c.cached_input_tokens,
                "output_tokens": c.output_tokens,
                "reasoning_tokens": c.reasoning_tokens,
                "tool_calls": len(c.tool_calls),
                "parallel": c.parallel,
                "tool_s": max(times) if times else 0.0,
            }
        )
    return pd.DataFrame(rows)


def tools_frame(session: Session) -> pd.DataFrame:
    """One row per tool call: name, call, seconds, sizes."""
    rows = [
        {
            "session": session.id,
            "call": c.index,
            "tool": t.name,
            "start_s": t.start_s,
            "seconds": t.seconds,
            "input_chars": t.input_chars,
            "output_chars": t.output_chars,
            "is_error": t.is_error,
        }
        for c in session.calls
        for t in c.tool_calls
    ]
    return pd.DataFrame(
        rows, columns=["session", "call", "tool", "start_s", "seconds", "input_chars", "output_chars", "is_error"]
    )


def summary(trace: Trace) -> pd.DataFrame:
    """The session table: one row per session (sizes, medians, cached share, tool times, parallel calls)."""
    rows = []
    for s in trace:
        calls = s.calls
        inputs = [c.input_tokens for c in calls]
        tool_times = [t for c in calls for t in (tc.seconds for tc in c.tool_calls) if t is not None]
        total_in = sum(inputs)
        rows.append(
            {
                "id": s.id,
                "format": s.format,
                "model": s.model,
                "model_calls": len(calls),
                "tool_calls": s.tool_calls,
                "input_tokens": total_in,
                "cached_input_tokens": sum(c.cached_input_tokens for c in calls),
                "output_tokens": sum(c.output_tokens for c in calls),
                "reasoning_tokens": sum(c.reasoning_tokens for c in calls),
                "cached_share": sum(c.cached_input_tokens for c in calls) / total_in if total_in else None,
                "input_median": statistics.median(inputs),
                "output_median": statistics.median(c.output_tokens for c in calls),
                "reasoning_median": statistics.median(c.reasoning_tokens for c in calls),
                "tool_median_s": _pct(tool_times, 50),
                "tool_p90_s": _pct(tool_times, 90),
                "max_parallel_tools": max((len(c.tool_calls) for c in calls), default=0),
                "parallel_calls": sum(1 for c in calls if c.parallel),
                "measured_s": s.measured_s(),
                "skipped_lines": s.skipped_lines,
            }
        )
    return pd.DataFrame(rows)
