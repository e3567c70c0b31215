"""Per model call timing, the same for every format: what a robust fit of call time on tokens reads.

A :class:`CallTiming` is one model call of a :class:`~labkit.traces.model.Session` as a fit sees it:

- ``start_s``: when its input was complete (the importer's request proxy: the last tool output or user message
  before it for Codex and TraceLab, the span start for OTLP and labkit spans), ``end_s`` when it completed, and
  ``seconds = end_s - start_s`` (the call's *model time*: API work, queueing, prefill, decode, and whatever the
  client did between its input being complete and the request leaving, which a client log cannot tell apart);
- ``ttft_s`` where the format records a first output event (TraceLab's timing events, OTLP's
  ``gen_ai.response.time_to_first_chunk``, labkit spans, a Codex turn's first call on versions writing
  ``time_to_first_token_ms``), else ``None``;
- tokens: ``visible_output_tokens`` (output minus reasoning), ``reasoning_tokens``, ``input_tokens``,
  ``cached_input_tokens``, ``uncached_input_tokens``;
- what followed it: ``tool_s``, the agent's wait for the tools this call issued (to the next call's start), and
  ``human_s``, the wait after a call that issued no tool (a final answer) until the next call's input was
  complete: time the session spent waiting on the human, kept apart and never counted as agent time.

A session's model time (:func:`session_timing`) is the sum of its calls' ``seconds``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from labkit.traces.model import Session, Trace


@dataclass(frozen=True, slots=True)
class CallTiming:
    """One timed model call (see the module docstring)."""

    session: str
    index: int
    start_s: float
    end_s: float
    ttft_s: float | None
    visible_output_tokens: int
    reasoning_tokens: int
    input_tokens: int
    cached_input_tokens: int
    tool_s: float
    human_s: float

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_input_tokens

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["seconds"] = self.seconds
        d["uncached_input_tokens"] = self.uncached_input_tokens
        return d


@dataclass(frozen=True, slots=True)
class SessionTiming:
    """A session's timed calls and its totals; ``untimed`` counts calls a format left without both times."""

    session: str
    format: str
    source: str
    calls: tuple[CallTiming, ...]
    untimed: int = 0

    @property
    def model_s(self) -> float:
        """The session's model time: the sum of its calls' times."""
        return sum(c.seconds for c in self.calls)

    @property
    def tool_s(self) -> float:
        return sum(c.tool_s for c in self.calls)

    @property
    def human_s(self) -> float:
        return sum(c.human_s for c in self.calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "format": self.format,
            "source": self.source,
            "model_s": self.model_s,
            "tool_s": self.tool_s,
            "human_s": self.human_s,
            "untimed": self.untimed,
            "calls": [c.to_dict() for c in self.calls],
        }


def session_timing(session: Session) -> SessionTiming:
    """The timed calls of a session (a call without both times is counted in ``untimed``, not guessed)."""
    out: list[CallTiming] = []
    untimed = 0
    calls = session.calls
    for i, c in enumerate(calls):
        if c.start_s is None or c.end_s is None:
            untimed += 1
            continue
        nxt = calls[i + 1].start_s if i + 1 < len(calls) else None
        gap = max(0.0, nxt - c.end_s) if nxt is not None else 0.0
        tool_wait = c.tool_wait_s(nxt) if c.tool_calls else 0.0
        out.append(
            CallTiming(
                session=session.id,
                index=c.index,
                start_s=c.start_s,
                end_s=max(c.start_s, c.end_s),
                ttft_s=c.ttft_s,
                visible_output_tokens=max(0, c.output_tokens - c.reasoning_tokens),
                reasoning_tokens=c.reasoning_tokens,
                input_tokens=c.input_tokens,
                cached_input_tokens=min(c.cached_input_tokens, c.input_tokens),
                tool_s=float(tool_wait or 0.0),
                human_s=0.0 if c.tool_calls else gap,
            )
        )
    return SessionTiming(session.id, session.format, session.source, tuple(out), untimed)


def trace_timings(sessions: Trace | Iterable[Session]) -> list[SessionTiming]:
    """:func:`session_timing` of each session that has at least one timed call."""
    return [t for t in (session_timing(s) for s in sessions) if t.calls]
