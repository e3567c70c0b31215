"""Sessions with known per-call parameters, written in each format the importers read: the fit's recovery test.

:func:`synth_sessions` draws agent sessions whose model calls take exactly ``call_fixed_s + visible / decode_tps
+ reasoning / reasoning_tps + uncached * uncached_input_s_per_1k / 1000`` plus noise: Gaussian jitter and, for
a share of calls, a heavy positive tail (a call held up by a rate limit or a retry), the shape real sessions
show. Calls issue tool calls (sometimes two in parallel), a turn ends with a final answer, and the next turn's
user message comes after a human wait that must never count as model time.

Writers put the same sessions in each format as its producer lays it out (line timestamps at millisecond
resolution, as the producers write them): :func:`write_codex` (the rollout of Codex CLI before 0.147, or with
``item_completed`` turn items as 0.147 and later write them; with a repeated token count, a rate-limit-only
one and an unknown line type, as real rollouts have), :func:`write_tracelab`, :func:`write_otlp`,
:func:`write_spans` (labkit's spans table).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

#: Formats :func:`write_format` writes (``codex-0.147``: a rollout with ``item_completed`` turn items;
#: ``codex-usage-records``: that plus a ``token_usage_record`` line per response beside the ``token_count``).
SYNTH_FORMATS = ("codex", "codex-0.147", "codex-usage-records", "tracelab", "otlp", "labkit")
#: The session clock's origin on the wall (any fixed date: the importers rebase to the first event).
EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Truth:
    """The parameters sessions are drawn with (defaults: near what a robust fit of real Codex calls shows)."""

    call_fixed_s: float = 2.9
    decode_tps: float = 60.0
    reasoning_tps: float = 60.0
    uncached_input_s_per_1k: float = 0.06
    noise_sd_s: float = 0.25
    tail_share: float = 0.06
    tail_mean_s: float = 6.0

    def mean_s(self, visible: int, reasoning: int, uncached: int) -> float:
        return (
            self.call_fixed_s
            + visible / self.decode_tps
            + reasoning / self.reasoning_tps
            + uncached * self.uncached_input_s_per_1k / 1000
        )


@dataclass(frozen=True)
class SynthTool:
    call_id: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class SynthCall:
    """One generated model call, on the session clock (seconds)."""

    start_s: float
    seconds: float
    ttft_s: float
    visible: int
    reasoning: int
    input_tokens: int
    cached: int
    tools: tuple[SynthTool, ...]
    turn: int
    #: First call of its user turn (a user message made its input complete).
    opens_turn: bool

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds


@dataclass(frozen=True)
class SynthSession:
    id: str
    calls: tuple[SynthCall, ...]

    @property
    def model_s(self) -> float:
        return sum(c.seconds for c in self.calls)


def _call_seconds(truth: Truth, rng: np.random.Generator, visible: int, reasoning: int, uncached: int) -> float:
    s = truth.mean_s(visible, reasoning, uncached) + rng.normal(0.0, truth.noise_sd_s)
    if rng.random() < truth.tail_share:
        s += rng.exponential(truth.tail_mean_s)
    return max(0.05, s)


def _session(truth: Truth, rng: np.random.Generator, sid: str, n_calls: int) -> SynthSession:
    calls: list[SynthCall] = []
    t, turn, context, opens = 0.0, 0, 8000, True
    for i in range(n_calls):
        visible = int(rng.lognormal(np.log(180), 0.9)) + 1
        reasoning = int(rng.lognormal(np.log(120), 1.0)) if rng.random() < 0.8 else 0
        new = int(rng.lognormal(np.log(1500), 1.0)) + 50
        context += new
        cached = max(0, context - new - int(rng.integers(0, 400)))
        seconds = _call_seconds(truth, rng, visible, reasoning, context - cached)
        ttft = min(seconds, max(0.01, seconds - visible / truth.decode_tps))
        last_of_turn = i == n_calls - 1 or rng.random() < 0.15
        tools: tuple[SynthTool, ...] = ()
        if not last_of_turn:
            end = t + seconds
            k = 2 if rng.random() < 0.25 else 1  # two tool calls in one response run in parallel
            tools = tuple(
                SynthTool(f"call_{sid[-4:]}_{i}_{j}", end - 0.002 * (k - j), end + float(rng.lognormal(np.log(0.6), 1)))
                for j in range(k)
            )
        calls.append(SynthCall(t, seconds, ttft, visible, reasoning, context, cached, tools, turn, opens))
        context += visible + reasoning
        if tools:
            t = max(x.end_s for x in tools)
            opens = False
        else:
            t = t + seconds + float(rng.uniform(20, 300))  # the human reads, thinks, types
            turn += 1
            opens = True
    return SynthSession(sid, tuple(calls))


def synth_sessions(truth: Truth, n_sessions: int = 8, calls_per_session: int = 40, seed: int = 0) -> list[SynthSession]:
    """``n_sessions`` sessions of about ``calls_per_session`` calls each (lengths vary by up to half)."""
    if n_sessions < 1 or calls_per_session < 2:
        raise ValueError("sessions: need n_sessions >= 1 and calls_per_session >= 2")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_sessions):
        n = int(rng.integers(max(2, calls_per_session // 2), calls_per_session * 3 // 2 + 1))
        out.append(_session(truth, rng, f"synth-{seed}-{k:04d}", n))
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(EPOCH + t, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _usage(inp: int, cached: int, out: int, reasoning: int) -> dict[str, int]:
    return {
        "input_tokens": inp,
        "cached_input_tokens": cached,
        "output_tokens": out,
        "reasoning_output_tokens": reasoning,
        "total_tokens": inp + out,
    }


def _codex_user(t: float, new_format: bool) -> Iterator[tuple[float, str, dict[str, Any]]]:
    yield t, "turn_context", {"cwd": "/repo", "model": "gpt-5.3-codex", "effort": "medium"}
    text = [{"type": "input_text", "text": "<redacted>"}]
    yield t, "response_item", {"type": "message", "role": "user", "content": text}
    if new_format:
        item = {"type": "UserMessage", "id": "u", "content": [{"type": "text", "text": "<redacted>"}]}
        yield t, "event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "1", "item": item}
    else:
        yield t, "event_msg", {"type": "user_message", "message": "<redacted>"}
    yield t, "event_msg", {"type": "token_count", "info": None, "rate_limits": {"primary": {"used_percent": 1.0}}}


def _codex_tool_end(tool: SynthTool, new_format: bool) -> Iterator[tuple[float, str, dict[str, Any]]]:
    yield tool.end_s, "response_item", {"type": "function_call_output", "call_id": tool.call_id, "output": "ok"}
    if new_format:
        d = tool.end_s - tool.start_s
        item = {
            "type": "CommandExecution",
            "id": tool.call_id,
            "command": ["ls"],
            "status": "completed",
            "duration": {"secs": int(d), "nanos": round((d - int(d)) * 1e9)},
        }
        yield tool.end_s, "event_msg", {"type": "item_completed", "thread_id": "t", "turn_id": "1", "item": item}


def _codex_lines(
    s: SynthSession, new_format: bool, usage_records: bool = False
) -> list[tuple[float, str, dict[str, Any]]]:
    lines: list[tuple[float, str, dict[str, Any]]] = [
        (0.0, "session_meta", {"id": s.id, "cli_version": "0.147.0" if new_format else "0.110.0"})
    ]
    total = dict.fromkeys(("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"), 0)
    for c in s.calls:
        if c.opens_turn:
            lines += list(_codex_user(c.start_s, new_format))
        first = c.start_s + c.ttft_s
        if c.reasoning:
            lines.append((first, "response_item", {"type": "reasoning", "summary": [], "encrypted_content": "x"}))
        for tool in c.tools:
            args = json.dumps({"cmd": "ls"})
            call = {"type": "function_call", "name": "exec_command", "arguments": args, "call_id": tool.call_id}
            lines.append((tool.start_s, "response_item", call))
        if not c.tools:
            msg = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}
            lines.append((c.end_s - 0.002, "response_item", msg))
            if new_format:
                item = {"type": "AgentMessage", "id": "m", "content": [{"type": "Text", "text": "done"}]}
                lines.append((c.end_s - 0.002, "event_msg", {"type": "item_completed", "item": item}))
        last = _usage(c.input_tokens, c.cached, c.visible + c.reasoning, c.reasoning)
        total = {k: total[k] + last[k] for k in total}
        info = {"total_token_usage": {**total, "total_tokens": 0}, "last_token_usage": last}
        if usage_records:
            record = {"response_id": f"resp_{s.id[-4:]}_{len(lines)}", "usage": last}
            lines.append((c.end_s, "token_usage_record", record))
            lines.append((c.end_s, "token_usage_record", record))  # written twice: one response, one call
        lines.append((c.end_s, "event_msg", {"type": "token_count", "info": info}))
        lines.append((c.end_s + 0.001, "event_msg", {"type": "token_count", "info": info}))  # the same totals again
        for tool in c.tools:
            lines += list(_codex_tool_end(tool, new_format))
        if not c.tools:
            lines.append((c.end_s + 0.003, "event_msg", {"type": "task_complete", "last_agent_message": "done"}))
        lines.append((c.end_s + 0.004, "ghost_snapshot", {"ghost_commit": {"id": "abc"}}))
    lines.sort(key=lambda x: x[0])
    return lines


def write_codex(
    session: SynthSession, path: str | os.PathLike[str], *, new_format: bool = False, usage_records: bool = False
) -> Path:
    """One rollout file (``new_format``: Codex CLI >= 0.147's ``item_completed`` turn items; ``usage_records``: a
    ``token_usage_record`` line per response too)."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as fh:
        for t, kind, payload in _codex_lines(session, new_format, usage_records):
            fh.write(json.dumps({"timestamp": _iso(t), "type": kind, "payload": payload}) + "\n")
    return p


def _tracelab_row(s: SynthSession, i: int, c: SynthCall) -> dict[str, Any]:
    events = [{"event_type": "user_message" if c.opens_turn else "tool_result", "timestamp": _iso(c.start_s)}]
    if c.reasoning:
        events.append({"event_type": "reasoning", "timestamp": _iso(c.start_s + c.ttft_s)})
    events.append({"event_type": "tool_call" if c.tools else "text", "timestamp": _iso(c.end_s)})
    return {
        "provider": "codex",
        "session_id": s.id,
        "round_index": i,
        "model": "gpt-5.3-codex",
        "input_tokens_total": c.input_tokens,
        "prefix_tokens": c.cached,
        "newly_append_tokens": c.input_tokens - c.cached,
        "output_tokens": c.visible + c.reasoning,
        "reasoning_output_tokens": c.reasoning,
        "timing_events": events,
        "tools": [
            {
                "tool_name": "exec_command",
                "tool_call_id": t.call_id,
                "emitted_at": _iso(t.start_s),
                "result_at": _iso(t.end_s),
                "tool_wall_latency_ms": round((t.end_s - t.start_s) * 1000),
            }
            for t in c.tools
        ],
    }


def write_tracelab(sessions: Sequence[SynthSession], path: str | os.PathLike[str]) -> Path:
    """A ``round_trace.jsonl``: one row per model call, every session in one file."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as fh:
        for s in sessions:
            for i, c in enumerate(s.calls):
                fh.write(json.dumps(_tracelab_row(s, i, c)) + "\n")
    return p


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _ns(t: float) -> str:
    return str(round((EPOCH + t) * 1e9))


def _otlp_spans(s: SynthSession, k: int) -> list[dict[str, Any]]:
    trace_id = f"{k + 1:032x}"
    spans = []
    for i, c in enumerate(s.calls):
        attrs = [
            _kv("gen_ai.operation.name", "chat"),
            _kv("gen_ai.request.model", "gpt-5.3-codex"),
            _kv("gen_ai.conversation.id", s.id),
            _kv("gen_ai.usage.input_tokens", c.input_tokens),
            _kv("gen_ai.usage.cache_read.input_tokens", c.cached),
            _kv("gen_ai.usage.output_tokens", c.visible + c.reasoning),
            _kv("gen_ai.usage.reasoning.output_tokens", c.reasoning),
            _kv("gen_ai.response.time_to_first_chunk", round(c.ttft_s, 6)),
        ]
        base = {"traceId": trace_id, "startTimeUnixNano": _ns(c.start_s), "endTimeUnixNano": _ns(c.end_s)}
        spans.append(
            {**base, "spanId": f"{2 * i + 1:016x}", "name": "chat gpt-5.3-codex", "kind": 3, "attributes": attrs}
        )
        for j, t in enumerate(c.tools):
            tool_attrs = [
                _kv("gen_ai.operation.name", "execute_tool"),
                _kv("gen_ai.tool.name", "exec_command"),
                _kv("gen_ai.tool.call.id", t.call_id),
                _kv("gen_ai.conversation.id", s.id),
            ]
            spans.append(
                {"traceId": trace_id, "spanId": f"{2 * i + 2:08x}{j:08x}", "name": "execute_tool exec_command",
                 "kind": 1, "startTimeUnixNano": _ns(t.start_s), "endTimeUnixNano": _ns(t.end_s),
                 "attributes": tool_attrs}
            )  # fmt: skip
    return spans


def write_otlp(sessions: Sequence[SynthSession], path: str | os.PathLike[str]) -> Path:
    """OTLP JSON lines, one ``ExportTraceServiceRequest`` per session (as the collector's file exporter)."""
    p = Path(path)
    with p.open("w", encoding="utf-8") as fh:
        for k, s in enumerate(sessions):
            scope = {"scope": {"name": "synth"}, "spans": _otlp_spans(s, k)}
            doc = {
                "resourceSpans": [{"resource": {"attributes": [_kv("service.name", "agent")]}, "scopeSpans": [scope]}]
            }
            fh.write(json.dumps(doc) + "\n")
    return p


def _span_rows(k: int, s: SynthSession) -> Iterator[tuple[Any, ...]]:
    for turn, c in enumerate(s.calls):
        key = ("api", "synth", k, turn)
        first = c.start_s + c.ttft_s
        yield (*key, "request", c.start_s, c.start_s, c.input_tokens, 0, False, 0)
        yield (*key, "prefill", c.start_s, c.start_s, c.input_tokens - c.cached, 0, False, 0)
        if c.reasoning:
            yield (*key, "reasoning", c.start_s, first, c.reasoning, 0, False, 0)
        yield (*key, "decode", first, c.end_s, c.visible - 1, 0, False, 0)
        yield (*key, "complete", c.end_s, c.end_s, 0, 0, False, 0)
        for t in c.tools:
            yield (*key, "tool", t.start_s if t.start_s >= c.end_s else c.end_s, t.end_s, 0, 0, False, 0)


def write_spans(sessions: Sequence[SynthSession], path: str | os.PathLike[str]) -> Path:
    """labkit's spans table (CSV): one rollout per session."""
    import pandas as pd

    from labkit.model.spans import SPAN_COLUMNS

    rows = [r for k, s in enumerate(sessions) for r in _span_rows(k, s)]
    p = Path(path)
    pd.DataFrame(rows, columns=list(SPAN_COLUMNS)).to_csv(p, index=False)
    return p


def write_format(sessions: Sequence[SynthSession], fmt: str, folder: str | os.PathLike[str]) -> list[Path]:
    """The sessions written in one of :data:`SYNTH_FORMATS` under ``folder``; the files written."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    if fmt in ("codex", "codex-0.147", "codex-usage-records"):
        new, records = fmt != "codex", fmt == "codex-usage-records"
        return [write_codex(s, d / f"rollout-{s.id}.jsonl", new_format=new, usage_records=records) for s in sessions]
    if fmt == "tracelab":
        return [write_tracelab(sessions, d / "round_trace.jsonl")]
    if fmt == "otlp":
        return [write_otlp(sessions, d / "otlp.jsonl")]
    if fmt == "labkit":
        return [write_spans(sessions, d / "spans.csv")]
    raise ValueError(f"format: expected one of {', '.join(SYNTH_FORMATS)}, got {fmt!r}")
