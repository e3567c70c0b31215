"""One shape for real agent sessions: a :class:`Trace` holds sessions, a session model calls, a call tool calls.

Every importer (Codex CLI rollouts, TraceLab round traces, OTLP GenAI spans, labkit's own spans) fills these
frozen dataclasses, so replay, the session summary and the figures never look at a format again.

Token conventions (those of the Responses API usage object, which every importer maps onto):

- ``input_tokens`` counts everything the model read in that call, *including* the cached part;
- ``cached_input_tokens`` is the part of it served from the provider's prompt (prefix) cache;
- ``output_tokens`` counts everything the model generated, *including* ``reasoning_tokens``.

Times are seconds on the session's own clock (``None`` where the format does not record them).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class TraceError(ValueError):
    """A trace file that breaks a rule of its format: names the file, the line (1-based) and the field."""

    def __init__(self, path: str, line: int | None, field_name: str, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{field_name}: {where}: {message}")
        self.path = path
        self.line = line
        self.field = field_name


def json_lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each non-blank line of a JSON-lines file as ``(line number, object)``; a line that is not a JSON object is
    a :class:`TraceError` naming the file and the line (both importers of JSON-lines formats read through this)."""
    with open(path, encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TraceError(path, n, "line", f"not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise TraceError(path, n, "line", f"expected a JSON object, got {type(obj).__name__}")
            yield n, obj


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call a model call issued."""

    name: str
    call_id: str = ""
    #: Seconds on the session clock when the call was issued and when its output was back (None: unknown).
    start_s: float | None = None
    end_s: float | None = None
    #: The tool's own duration when the format records one apart from the timestamps.
    duration_s: float | None = None
    input_chars: int | None = None
    output_chars: int | None = None
    is_error: bool = False

    @property
    def seconds(self) -> float | None:
        """The tool's duration: the recorded one, else output time minus issue time."""
        if self.duration_s is not None:
            return self.duration_s
        if self.start_s is not None and self.end_s is not None:
            return max(0.0, self.end_s - self.start_s)
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One model request and response."""

    index: int
    input_tokens: int
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    #: Request sent (or its best proxy) and response finished, seconds on the session clock.
    start_s: float | None = None
    end_s: float | None = None
    #: Time to the first output chunk, when the format records it.
    ttft_s: float | None = None
    model: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def seconds(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return max(0.0, self.end_s - self.start_s)

    @property
    def parallel(self) -> bool:
        """The call issued several tool calls whose windows overlap (run concurrently by the client)."""
        timed = sorted((t.start_s, t.end_s) for t in self.tool_calls if t.start_s is not None and t.end_s is not None)
        return any(b[0] < a[1] for a, b in itertools.pairwise(timed))

    @property
    def tool_s(self) -> float:
        """The longest of this call's tool calls (they run in parallel, so the loop waits for the longest)."""
        times = [t.seconds for t in self.tool_calls]
        return max((t for t in times if t is not None), default=0.0)

    def tool_wait_s(self, next_start_s: float | None) -> float | None:
        """What the agent waited between this call's end and the next call's start (None: unknown)."""
        if not self.tool_calls:
            return 0.0
        if self.end_s is not None and next_start_s is not None:
            return max(0.0, next_start_s - self.end_s)
        ends = [t.end_s for t in self.tool_calls if t.end_s is not None]
        if self.end_s is not None and ends and len(ends) == len(self.tool_calls):
            return max(0.0, max(ends) - self.end_s)
        return None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tool_calls"] = [t.to_dict() for t in self.tool_calls]
        return d


@dataclass(frozen=True, slots=True)
class Session:
    """One agent session: its model calls in order."""

    id: str
    format: str
    calls: tuple[ModelCall, ...]
    source: str = ""
    model: str = ""
    #: Lines (or records) of the file the importer skipped, by reason (unknown line types, rate-limit-only
    #: token counts, repeated totals...): never dropped silently.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_lines(self) -> int:
        return sum(self.skipped.values())

    @property
    def tool_calls(self) -> int:
        return sum(len(c.tool_calls) for c in self.calls)

    def measured_s(self) -> float | None:
        """The agent loop's own wall time: every model call plus the tool waits after calls that issued tools.

        Time waiting for the user (between a final answer and the next user message) is not counted, so the
        number compares with a replay's end to end. ``None`` when a call's times are unknown.
        """
        total = 0.0
        for i, call in enumerate(self.calls):
            s = call.seconds
            if s is None:
                return None
            nxt = self.calls[i + 1].start_s if i + 1 < len(self.calls) else None
            wait = call.tool_wait_s(nxt)
            if wait is None:
                return None
            total += s + wait
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "source": self.source,
            "model": self.model,
            "skipped": dict(self.skipped),
            "calls": [c.to_dict() for c in self.calls],
        }


@dataclass(frozen=True, slots=True)
class Trace:
    """Sessions read from one or more files."""

    sessions: tuple[Session, ...]

    def __iter__(self) -> Iterator[Session]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def session(self, session_id: str) -> Session:
        for s in self.sessions:
            if s.id == session_id:
                return s
        raise ValueError(f"session: no session {session_id!r}; known: {', '.join(s.id for s in self.sessions)}")

    def __add__(self, other: Trace) -> Trace:
        return Trace(self.sessions + other.sessions)

    def to_dict(self) -> dict[str, Any]:
        return {"sessions": [s.to_dict() for s in self.sessions]}


def count(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


def as_int(value: Any, path: str, line: int | None, field_name: str, *, optional: bool = False) -> int:
    """A non-negative integer field (JSON numbers like ``12.0`` pass), or a :class:`TraceError`."""
    if value is None and optional:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value < 0:
        raise TraceError(path, line, field_name, f"expected a non-negative integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise TraceError(path, line, field_name, f"expected an integer, got {value!r}")
    return int(value)


def parse_time(value: Any, path: str, line: int | None, field_name: str) -> float:
    """Seconds since the epoch of an ISO-8601 timestamp (``Z`` or an offset; naive means UTC)."""
    if not isinstance(value, str):
        raise TraceError(path, line, field_name, f"expected an ISO-8601 timestamp, got {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise TraceError(path, line, field_name, f"not an ISO-8601 timestamp: {value[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def rebase(calls: list[ModelCall], origin: float | None = None) -> tuple[ModelCall, ...]:
    """The calls with every time relative to ``origin`` (default: the earliest time seen), so the session clock
    starts at 0 and keeps sub-millisecond precision in a float."""
    times = [t for c in calls for t in (c.start_s, c.end_s) if t is not None]
    times += [t for c in calls for tc in c.tool_calls for t in (tc.start_s, tc.end_s) if t is not None]
    if origin is None:
        origin = min(times, default=0.0)

    def sh(t: float | None) -> float | None:
        return None if t is None else t - origin

    return tuple(
        dataclasses.replace(
            c,
            start_s=sh(c.start_s),
            end_s=sh(c.end_s),
            tool_calls=tuple(dataclasses.replace(t, start_s=sh(t.start_s), end_s=sh(t.end_s)) for t in c.tool_calls),
        )
        for c in calls
    )
