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


def read_tracelab(path: str | Path) -> list[Session]:
    """Every session of a ``round_trace.jsonl`` file, in order of first appearance."""
    p = str(path)
    rows: dict[str, list[tuple[int, int, ModelCall, str]]] = {}
    skipped: dict[str, dict[str, int]] = {}
    for n, obj in json_lines(p):
        for key in REQUIRED:
            if key not in obj:
                raise TraceError(p, n, key, "missing (not a TraceLab round trace row)")
        sid = str(obj["session_id"])
        round_index = as_int(obj["round_index"], p, n, "round_index")
        total = as_int(obj["input_tokens_total"], p, n, "input_tokens_total")
        cached = as_int(obj.get("prefix_tokens"), p, n, "prefix_tokens", optional=True)
        if cached > total:
            raise TraceError(p, n, "prefix_tokens", f"{cached} exceeds input_tokens_total {total}")
        out = as_int(obj["output_tokens"], p, n, "output_tokens")
        reasoning = as_int(obj.get("reasoning_output_tokens"), p, n, "reasoning_output_tokens", optional=True)
        events = obj.get("timing_events") or []
        if not isinstance(events, list):
            raise TraceError(p, n, "timing_events", "expected a list")
        inputs, outputs = [], []
        for k, ev in enumerate(events):
            if not isinstance(ev, dict):
                raise TraceError(p, n, f"timing_events[{k}]", "expected an object")
            t = _time(ev.get("timestamp"), p, n, f"timing_events[{k}].timestamp")
            if t is None:
                continue
            et = ev.get("event_type")
            if et in INPUT_EVENTS:
                inputs.append(t)
            elif et in OUTPUT_EVENTS:
                outputs.append(t)
            else:
                count(skipped.setdefault(sid, {}), f"unknown timing event {et!r}")
        tools_raw = obj.get("tools") or []
        if not isinstance(tools_raw, list):
            raise TraceError(p, n, "tools", "expected a list")
        tools = tuple(_tool(t, p, n, k) for k, t in enumerate(tools_raw))
        call = ModelCall(
            index=round_index,
            input_tokens=total,
            cached_input_tokens=cached,
            output_tokens=out,
            reasoning_tokens=min(reasoning, out),
            start_s=max(inputs) if inputs else None,
            end_s=max(outputs) if outputs else None,
            # Held here until the start is settled: the first output event, the TTFT proxy's end.
            ttft_s=min(outputs) if outputs else None,
            model=str(obj.get("model") or ""),
            tool_calls=tools,
        )
        rows.setdefault(sid, []).append((round_index, n, call, str(obj.get("provider") or "")))
    if not rows:
        raise TraceError(p, None, "file", "empty: no round rows")
    sessions = []
    for sid, items in rows.items():
        items.sort(key=lambda r: (r[0], r[1]))
        calls: list[ModelCall] = []
        prev_end: float | None = None
        for i, (_, _, c, _) in enumerate(items):
            start = c.start_s if c.start_s is not None else prev_end
            if start is not None and c.end_s is not None and start > c.end_s:
                start = prev_end if prev_end is not None and prev_end <= c.end_s else c.end_s
            first_out = c.ttft_s
            ttft = first_out - start if first_out is not None and start is not None and first_out >= start else None
            calls.append(
                ModelCall(
                    index=i,
                    input_tokens=c.input_tokens,
                    cached_input_tokens=c.cached_input_tokens,
                    output_tokens=c.output_tokens,
                    reasoning_tokens=c.reasoning_tokens,
                    start_s=start,
                    end_s=c.end_s,
                    ttft_s=ttft,
                    model=c.model,
                    tool_calls=c.tool_calls,
                )
            )
            prev_end = c.end_s if c.end_s is not None else prev_end
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
