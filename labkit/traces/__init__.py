"""Real agent sessions in, replay and fit, traces out.

- importers into one :class:`Trace` shape (:mod:`~labkit.traces.model`): Codex CLI rollouts
  (:mod:`~labkit.traces.codex`), TraceLab round traces (:mod:`~labkit.traces.tracelab`), OTLP JSON with the
  OpenTelemetry GenAI conventions (:mod:`~labkit.traces.otlp`), labkit's own spans (:mod:`~labkit.traces.spansio`);
  :func:`load_trace` detects the format;
- :func:`trace_workload`: a session as a :class:`~labkit.model.Workload` the closed form, the DES, the simulator and
  the live runner take; :func:`replay` and :func:`summary`;
- :func:`session_timing`: per model call, when its input was complete, when it completed, its TTFT where
  recorded, its tokens, the tool and the human wait after it (:mod:`~labkit.traces.timing`);
- :func:`fit_sessions`: a robust fit of call time on tokens over real sessions, with session-bootstrap
  intervals and leave-one-session-out holdout (:mod:`~labkit.traces.sessionfit`), checked on generated
  sessions in every format (:mod:`~labkit.traces.synth`, :mod:`~labkit.traces.sessionrecovery`);
- :func:`fit_spans`: a profile fitted to a measured spans table (:mod:`~labkit.traces.fit`; its live recovery
  test is :mod:`labkit.experiments.recovery`);
- exporters: :func:`spans_to_otlp`, :func:`spans_to_perfetto`.

This layer reads files and computes; it never opens a socket and never draws.
"""

from labkit.traces.fit import FitParameter, FitResult, fit_file, fit_spans, write_profile
from labkit.traces.load import FORMATS, detect_format, load_trace, shipped_trace
from labkit.traces.model import ModelCall, Session, ToolCall, Trace, TraceError
from labkit.traces.otlp import spans_to_otlp
from labkit.traces.perfetto import spans_to_perfetto
from labkit.traces.replay import SessionReplay, calls_frame, replay, replay_frame, summary, tools_frame
from labkit.traces.sessionfit import SessionFit, fit_sessions, fit_timings
from labkit.traces.spansio import read_spans_file, turn_table
from labkit.traces.timing import CallTiming, SessionTiming, session_timing, trace_timings
from labkit.traces.workload import TraceWorkload, trace_workload

__all__ = [
    "FORMATS",
    "CallTiming",
    "FitParameter",
    "FitResult",
    "ModelCall",
    "Session",
    "SessionFit",
    "SessionReplay",
    "SessionTiming",
    "ToolCall",
    "Trace",
    "TraceError",
    "TraceWorkload",
    "calls_frame",
    "detect_format",
    "fit_file",
    "fit_sessions",
    "fit_spans",
    "fit_timings",
    "load_trace",
    "read_spans_file",
    "replay",
    "replay_frame",
    "session_timing",
    "shipped_trace",
    "spans_to_otlp",
    "spans_to_perfetto",
    "summary",
    "tools_frame",
    "trace_timings",
    "trace_workload",
    "turn_table",
    "write_profile",
]
