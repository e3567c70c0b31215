"""TraceLab round traces (github.com/uw-syfi/TraceLab, ``round_trace.jsonl``; data CC BY 4.0) as sessions.

One JSON object a line, one line per model call ("round"), schema in TraceLab's ``artifacts/utils/DB_SCHEMA.md``
and ``example_sessions/sanitized/README.md``. What this importer reads:

- the session: ``session_id`` (rows of one session ordered by ``round_index``, ties by file order, as TraceLab's
  own ``ORDER BY round_index, ingest_seq``);
- tokens: ``input_tokens_total`` (all input), ``prefix_tokens`` (the cached prefix), ``output_tokens`` and
  ``reasoning_output_tokens`` (null for Claude, whose logs do not split thinking tokens out);
- times: no format records when a request was sent, so (as TraceLab's own latency proxy) a call starts at its
  latest input event in ``timing_events`` (``user_message``, ``tool_result``; the previous call's end when it
  has none) and ends at its latest output event (``reasoning``, ``text``, ``tool_call``, ``usage_report``);
  its TTFT is its first output event minus that start (a proxy too: events are written when a content block
  is complete, not when its first token arrives);
- tools: ``tools[]`` with ``emitted_at``, ``result_at`` and ``tool_wall_latency_ms`` (what the agent loop waited;
  the runner-reported ``tool_internal_latency_ms`` is often 0 for Codex shell calls), ``input_chars``,
  ``result_chars``, ``is_error``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from labkit.traces.model import (
    ModelCall,
    Session,
    ToolCall,
    TraceError,
    as_int,
    count,
    json_lines,
    parse_time,
    rebase,
)

FORMAT = "tracelab"
INPUT_EVENTS = frozenset({"user_message", "tool_result"})
OUTPUT_EVENTS = frozenset({"reasoning", "text", "tool_call", "usage_report"})
REQUIRED = ("session_id", "round_index", "input_tokens_total", "output_tokens")


def looks_like(first_objects: list[dict[str, Any]]) -> bool:
    return any("round_index" in o and "input_tokens_total" in o for o in first_objects)


def _time(raw: Any, path: str, line: int, where: str) -> float | None:
    return None if raw is None else parse_time(raw, path, line, where)


def _tool(raw: Any, path: str, line: int, k: int) -> ToolCall:
    where = f"tools[{k}]"
    if not isinstance(raw, dict):
        raise TraceError(path, line, where, f"expected an object, got {type(raw).__name__}")
    start = _time(raw.get("emitted_at"), path, line, f"{where}.emitted_at")
    end = _time(raw.get("result_at"), path, line, f"{where}.result_at")
    wall = raw.get("tool_wall_latency_ms")
    duration = as_int(wall, path, line, f"{where}.tool_wall_latency_ms") / 1000 if wall is not None else None
    chars_in, chars_out = raw.get("input_chars"), raw.get("result_chars")
    return ToolCall(
        name=str(raw.get("tool_name") or "tool"),
        call_id=str(raw.get("tool_call_id") or ""),
        start_s=start,
        end_s=end,
        duration_s=duration,
        input_chars=as_int(chars_in, path, line, f"{where}.input_chars") if chars_in is not None else None,
        output_chars=as_int(chars_out, path, line, f"{where}.result_chars") if chars_out is not None else None,
        is_error=bool(raw.get("is_error")),
    )


def _events(raw: Any, path: str, line: int, skipped: dict[str, int]) -> tuple[list[float], list[float]]:
    """The input and output event times of a row's ``timing_events``."""
    events = raw or []
    if not isinstance(events, list):
        raise TraceError(path, line, "timing_events", "expected a list")
    inputs, outputs = [], []
    for k, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise TraceError(path, line, f"timing_events[{k}]", "expected an object")
        t = _time(ev.get("timestamp"), path, line, f"timing_events[{k}].timestamp")
        if t is None:
            continue
        et = ev.get("event_type")
        if et in INPUT_EVENTS:
            inputs.append(t)
        elif et in OUTPUT_EVENTS:
            outputs.append(t)
        else:
            count(skipped, f"unknown timing event {et!r}")
    return inputs, outputs


def _row(obj: dict[str, Any], path: str, line: int, skipped: dict[str, int]) -> ModelCall:
    """One round row as a call; its ``ttft_s`` holds the first output event's time until the start is settled."""
    for key in REQUIRED:
        if key not in obj:
            raise TraceError(path, line, key, "missing (not a TraceLab round trace row)")
    total = as_int(obj["input_tokens_total"], path, line, "input_tokens_total")
    cached = as_int(obj.get("prefix_tokens"), path, line, "prefix_tokens", optional=True)
    if cached > total:
        raise TraceError(path, line, "prefix_tokens", f"{cached} exceeds input_tokens_total {total}")
    out = as_int(obj["output_tokens"], path, line, "output_tokens")
    reasoning = as_int(obj.get("reasoning_output_tokens"), path, line, "reasoning_output_tokens", optional=True)
    inputs, outputs = _events(obj.get("timing_events"), path, line, skipped)
    tools_raw = obj.get("tools") or []
    if not isinstance(tools_raw, list):
        raise TraceError(path, line, "tools", "expected a list")
    return ModelCall(
        index=as_int(obj["round_index"], path, line, "round_index"),
        input_tokens=total,
        cached_input_tokens=cached,
        output_tokens=out,
        reasoning_tokens=min(reasoning, out),
        start_s=max(inputs) if inputs else None,
        end_s=max(outputs) if outputs else None,
        ttft_s=min(outputs) if outputs else None,
        model=str(obj.get("model") or ""),
        tool_calls=tuple(_tool(t, path, line, k) for k, t in enumerate(tools_raw)),
    )


def _settle(rows: list[ModelCall]) -> list[ModelCall]:
    """The calls of one session in order, each start settled (the previous call's end when the row has no input
    event, or when its input event is after its last output) and its TTFT measured from it."""
    calls: list[ModelCall] = []
    prev_end: float | None = None
    for i, c in enumerate(rows):
        start = c.start_s if c.start_s is not None else prev_end
        if start is not None and c.end_s is not None and start > c.end_s:
            start = prev_end if prev_end is not None and prev_end <= c.end_s else c.end_s
        first_out = c.ttft_s
        ttft = first_out - start if first_out is not None and start is not None and first_out >= start else None
        calls.append(dataclasses.replace(c, index=i, start_s=start, ttft_s=ttft))
        prev_end = c.end_s if c.end_s is not None else prev_end
    return calls


def read_tracelab(path: str | Path) -> list[Session]:
    """Every session of a ``round_trace.jsonl`` file, in order of first appearance."""
    p = str(path)
    rows: dict[str, list[tuple[int, int, ModelCall]]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for n, obj in json_lines(p):
        sid = str(obj.get("session_id"))
        call = _row(obj, p, n, skipped.setdefault(sid, {}))
        rows.setdefault(sid, []).append((call.index, n, call))
    if not rows:
        raise TraceError(p, None, "file", "empty: no round rows")
    sessions = []
    for sid, items in rows.items():
        # TraceLab's own order: ORDER BY round_index, ingest_seq (file order breaks ties).
        calls = _settle([c for _, _, c in sorted(items, key=lambda r: (r[0], r[1]))])
        sessions.append(
            Session(
                id=sid,
                format=FORMAT,
                calls=rebase(calls),
                source=Path(p).name,
                model=calls[0].model,
                skipped=skipped.get(sid, {}),
            )
        )
    return sessions
