"""Codex CLI rollout files (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``) as a :class:`Session`.

The format is openai/codex's ``RolloutLine`` (``codex-rs/protocol``): one JSON object a line, ``{"timestamp",
"type", "payload"}`` with ``type`` one of ``session_meta``, ``turn_context``, ``response_item``, ``event_msg``,
``compacted`` (newer versions add more). What this importer reads:

- a model call is an ``event_msg`` of ``payload.type == "token_count"`` whose ``info.total_token_usage``
  changed: the CLI writes the same totals more than once, and writes ``info: null`` for rate-limit-only
  updates. Its tokens are that line's ``info.last_token_usage`` (``input_tokens`` includes
  ``cached_input_tokens``, ``output_tokens`` includes ``reasoning_output_tokens``); when a version wrote no
  ``last_token_usage`` (or an empty one) they are the difference of the totals, and when it wrote no totals a
  usage repeated with nothing between is the same call;
- tool calls are the ``response_item`` lines ``function_call``, ``custom_tool_call``, ``local_shell_call``,
  ``web_search_call`` written since the previous model call; each pairs with its output
  (``function_call_output``, ``custom_tool_call_output``) by ``call_id``, and runs from its own line's
  timestamp to its output's. Calls issued in one response are run in parallel by the CLI;
  ``event_msg``/``exec_command_end`` (extended persistence) gives a measured ``duration``;
- a call's request time is the latest input line (``turn_context``, a user message, a tool output) before its
  first output item; its end is its ``token_count`` line. Both are when lines were *written*: proxies;
- Codex CLI >= 0.147 writes the per-turn events as ``event_msg`` of ``payload.type == "item_completed"``
  (``{thread_id, turn_id, item}``, ``item`` a ``TurnItem`` of ``codex-rs/protocol/src/items.rs`` tagged by a
  PascalCase ``type``): ``UserMessage`` / ``HookPrompt`` are inputs (the old ``user_message`` event is gone),
  ``AgentMessage`` / ``Reasoning`` / ``Plan`` outputs, and the tool items (``CommandExecution``,
  ``McpToolCall``, ``DynamicToolCall``, ``WebSearch``, ``FileChange``, ...) a finished tool whose ``id`` is
  the call's ``call_id`` and whose optional ``duration`` (a ``std::time::Duration``) is the tool's own time;
- ``task_complete`` of newer versions carries ``time_to_first_token_ms`` for the turn: the TTFT of the turn's
  first model call (the only call whose TTFT a rollout records);
- later versions (public parsers read them from 0.147 to 0.153) also write a top-level ``token_usage_record``
  line per completed model response, ``{response_id, usage}`` with the same usage fields, beside the
  cumulative ``token_count`` snapshots. When a file has them they mark the calls (one per ``response_id``) and
  the ``token_count`` lines are counted, not read: the two never both make a call.

Very old versions wrote the items bare (``{"type": "message", ...}`` without ``payload``) and ``record_type``
state lines: the items are read, the rest counted. Unknown line and item types are counted, never fatal. A
line that is not a JSON object, or a token count with a malformed usage, is a :class:`TraceError` naming the
line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
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

FORMAT = "codex"
TOOL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "web_search_call"})
TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output"})
#: Item types a model produces (the first one marks when its answer started to arrive).
OUTPUT_ITEMS = frozenset({"reasoning", *TOOL_ITEMS})
KNOWN_LINES = frozenset(
    {"session_meta", "turn_context", "response_item", "event_msg", "compacted", "token_usage_record"}
)
BARE_ITEMS = frozenset({"message", "reasoning", *TOOL_ITEMS, *TOOL_OUTPUTS})
USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")
#: ``TurnItem`` variants (Codex CLI >= 0.147, ``item_completed``) by what they mean for a model call's clock.
TURN_INPUT_ITEMS = frozenset({"UserMessage", "HookPrompt"})
TURN_OUTPUT_ITEMS = frozenset({"AgentMessage", "Reasoning", "Plan"})
TURN_TOOL_ITEMS = frozenset(
    {
        "CommandExecution",
        "McpToolCall",
        "DynamicToolCall",
        "CollabAgentToolCall",
        "WebSearch",
        "FileChange",
        "ImageView",
        "ImageGeneration",
        "Sleep",
    }
)
TURN_OTHER_ITEMS = frozenset({"ContextCompaction", "SubAgentActivity"})


def looks_like(first_objects: list[dict[str, Any]]) -> bool:
    """Autodetection: rollout lines carry ``type`` and ``payload`` with a Codex line type."""
    return any(isinstance(o.get("payload"), dict) and o.get("type") in KNOWN_LINES for o in first_objects)


def _usage(raw: Any, path: str, line: int, where: str) -> dict[str, int] | None:
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise TraceError(path, line, where, f"expected an object, got {type(raw).__name__}")
    return {k: as_int(raw.get(k), path, line, f"{where}.{k}", optional=True) for k in USAGE_FIELDS}


def _duration(raw: Any) -> float | None:
    # codex-rs serialises std::time::Duration as {"secs", "nanos"}; some versions write seconds or "1.5s".
    if isinstance(raw, dict) and isinstance(raw.get("secs"), int | float):
        return float(raw["secs"]) + float(raw.get("nanos", 0) or 0) / 1e9
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str) and raw.endswith("s"):
        try:
            return float(raw.rstrip("ms")) / (1000 if raw.endswith("ms") else 1)
        except ValueError:
            return None
    return None


@dataclass(slots=True)
class _PendingTool:
    name: str
    call_id: str
    start_s: float | None
    input_chars: int | None


@dataclass(slots=True)
class _Tools:
    """Tool calls issued since the last model call, and what is known of every tool call's end."""

    pending: list[_PendingTool] = field(default_factory=list)
    ends: dict[str, float | None] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    out_chars: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Usage:
    """The last token totals (or, for versions without totals, the last usage) seen: a repeat is no new call."""

    total: dict[str, int] | None = None
    last: dict[str, int] | None = None


@dataclass(slots=True)
class _State:
    """What reading a rollout line by line keeps: the session, the clock of the call in flight, tools, usage."""

    path: str
    session_id: str
    model: str = ""
    calls: list[ModelCall] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    tools: _Tools = field(default_factory=_Tools)
    usage: _Usage = field(default_factory=_Usage)
    #: The latest input line (request proxy), the first output item of the call in flight, the last call's end.
    last_input: float | None = None
    first_output: float | None = None
    prev_end: float | None = None
    #: Index of the first model call of the current user turn (its TTFT is the turn's, when recorded).
    turn_first_call: int = 0
    first_ts: float | None = None
    #: The file has ``token_usage_record`` lines: they mark the calls, ``token_count`` snapshots do not.
    usage_records: bool = False
    responses: set[str] = field(default_factory=set)

    def input_at(self, ts: float | None) -> None:
        if ts is not None:
            self.last_input = ts

    def output_at(self, ts: float | None) -> None:
        if self.first_output is None:
            self.first_output = ts


def _on_session_meta(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    meta = payload.get("meta", payload)  # some versions nest it
    if isinstance(meta, dict) and isinstance(meta.get("id"), str):
        st.session_id = meta["id"]
    if isinstance(meta, dict) and isinstance(meta.get("model"), str):
        st.model = meta["model"]


def _on_turn_context(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    if isinstance(payload.get("model"), str):
        st.model = payload["model"]
    st.input_at(ts)


def _on_compacted(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    count(st.skipped, "compacted history")


def _on_response_item(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    ptype = payload.get("type")
    role = payload.get("role")
    if ptype in TOOL_ITEMS:
        call_id = str(payload.get("call_id") or payload.get("id") or f"line{n}")
        args = payload.get("arguments", payload.get("input"))
        name = str(payload.get("name") or ptype)
        st.tools.pending.append(_PendingTool(name, call_id, ts, len(args) if isinstance(args, str) else None))
        if ptype == "web_search_call":
            st.tools.ends.setdefault(call_id, ts)  # answered inside the response, no output line
        st.output_at(ts)
    elif ptype in TOOL_OUTPUTS:
        call_id = str(payload.get("call_id", ""))
        st.tools.ends[call_id] = ts
        out = payload.get("output")
        if isinstance(out, str):
            st.tools.out_chars[call_id] = len(out)
        st.input_at(ts)
    elif ptype in OUTPUT_ITEMS or (ptype == "message" and role == "assistant"):
        st.output_at(ts)
    elif ptype == "message" and role in ("user", "developer"):
        st.input_at(ts)
    elif ptype != "message":
        count(st.skipped, f"unknown response item {ptype!r}")


def _token_usage(st: _State, payload: dict[str, Any], n: int) -> dict[str, int] | None:
    """The usage of the model call this token count closes, or None when it repeats the last one."""
    p = st.path
    info = payload.get("info")
    if info is None:
        count(st.skipped, "token_count without info")
        return None
    if not isinstance(info, dict):
        raise TraceError(p, n, "payload.info", f"expected an object, got {type(info).__name__}")
    total = _usage(info.get("total_token_usage"), p, n, "payload.info.total_token_usage")
    last = _usage(info.get("last_token_usage"), p, n, "payload.info.last_token_usage")
    if total is None and last is None:
        raise TraceError(p, n, "payload.info", "a token count with neither total nor last usage")
    if total is None:
        # Without totals a repeat shows as the same usage written again with nothing between.
        if last == st.usage.last and not st.tools.pending and st.first_output is None:
            count(st.skipped, "repeated token usage")
            return None
        st.usage.last = last
        return last
    if total == st.usage.total:
        count(st.skipped, "repeated token totals")
        return None
    if last is None:
        base = st.usage.total or dict.fromkeys(USAGE_FIELDS, 0)
        last = {k: max(0, total[k] - base[k]) for k in USAGE_FIELDS}
    st.usage.total = total
    if last["cached_input_tokens"] > last["input_tokens"]:
        raise TraceError(p, n, "payload.info.last_token_usage.cached_input_tokens", "exceeds input_tokens")
    return last


def _close_call(st: _State, ts: float | None, last: dict[str, int]) -> None:
    """A model call ends at ``ts`` with usage ``last``: its start is the latest input before its first output."""
    mark = st.first_output if st.first_output is not None else ts
    start = st.last_input if st.last_input is not None and (mark is None or st.last_input <= mark) else None
    if st.prev_end is not None and (start is None or start < st.prev_end):
        start = st.prev_end
    issued = tuple(
        ToolCall(name=t.name, call_id=t.call_id, start_s=t.start_s, input_chars=t.input_chars) for t in st.tools.pending
    )
    st.calls.append(
        ModelCall(
            index=len(st.calls),
            input_tokens=last["input_tokens"],
            cached_input_tokens=last["cached_input_tokens"],
            output_tokens=last["output_tokens"],
            reasoning_tokens=min(last["reasoning_output_tokens"], last["output_tokens"]),
            start_s=start,
            end_s=ts,
            model=st.model,
            tool_calls=issued,
        )
    )
    st.tools.pending = []
    st.first_output = None
    st.prev_end = ts


def _on_token_count(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    if st.usage_records:
        count(st.skipped, "token_count snapshot (token_usage_record lines mark the calls)")
        return
    last = _token_usage(st, payload, n)
    if last is not None:
        _close_call(st, ts, last)


def _on_token_usage_record(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    response_id = str(payload.get("response_id") or f"line{n}")
    if response_id in st.responses:
        count(st.skipped, "repeated token_usage_record")
        return
    usage = _usage(payload.get("usage"), st.path, n, "payload.usage")
    if usage is None:
        raise TraceError(st.path, n, "payload.usage", "a token_usage_record without usage")
    if usage["cached_input_tokens"] > usage["input_tokens"]:
        raise TraceError(st.path, n, "payload.usage.cached_input_tokens", "exceeds input_tokens")
    st.responses.add(response_id)
    _close_call(st, ts, usage)


def _on_task_complete(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    ttft_ms = payload.get("time_to_first_token_ms")
    k = st.turn_first_call
    if isinstance(ttft_ms, int | float) and not isinstance(ttft_ms, bool) and ttft_ms >= 0 and k < len(st.calls):
        st.calls[k] = dataclasses.replace(st.calls[k], ttft_s=float(ttft_ms) / 1000)
    st.turn_first_call = len(st.calls)


def _on_item_completed(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    item = payload.get("item")
    if not isinstance(item, dict):
        raise TraceError(st.path, n, "payload.item", f"expected an object, got {type(item).__name__}")
    itype = item.get("type")
    if itype in TURN_INPUT_ITEMS:
        st.input_at(ts)
        if itype == "UserMessage":
            st.turn_first_call = len(st.calls)
    elif itype in TURN_OUTPUT_ITEMS:
        st.output_at(ts)
    elif itype in TURN_TOOL_ITEMS:
        call_id = str(item.get("call_id") or item.get("id") or "")
        if call_id:
            st.tools.ends.setdefault(call_id, ts)
            d = _duration(item.get("duration", item.get("duration_ms")))
            if d is not None:
                st.tools.durations[call_id] = d / 1000 if "duration" not in item else d
        st.input_at(ts)
    elif itype not in TURN_OTHER_ITEMS:
        count(st.skipped, f"unknown item_completed type {itype!r}")


def _on_exec_command_end(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    d = _duration(payload.get("duration"))
    if d is not None and payload.get("call_id"):
        st.tools.durations[str(payload["call_id"])] = d


def _on_user_message(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    st.input_at(ts)
    st.turn_first_call = len(st.calls)


Handler = Callable[[_State, float | None, dict[str, Any], int], None]
#: ``event_msg`` payload types that bear on a call's clock or tokens; the others (agent messages, reasoning
#: deltas, approvals...) carry none and are passed over.
EVENT_HANDLERS: dict[str, Handler] = {
    "token_count": _on_token_count,
    "user_message": _on_user_message,
    "task_started": lambda st, ts, payload, n: st.input_at(ts),
    "task_complete": _on_task_complete,
    "exec_command_end": _on_exec_command_end,
    "item_completed": _on_item_completed,
}


def _on_event_msg(st: _State, ts: float | None, payload: dict[str, Any], n: int) -> None:
    handler = EVENT_HANDLERS.get(str(payload.get("type")))
    if handler is not None:
        handler(st, ts, payload, n)


LINE_HANDLERS: dict[str, Handler] = {
    "session_meta": _on_session_meta,
    "turn_context": _on_turn_context,
    "response_item": _on_response_item,
    "event_msg": _on_event_msg,
    "compacted": _on_compacted,
    "token_usage_record": _on_token_usage_record,
}


def _line_kind(st: _State, obj: dict[str, Any]) -> tuple[str | None, Any]:
    """The line's kind and payload; bare items of the first versions read as ``response_item``."""
    kind = obj.get("type")
    if "payload" in obj:
        if kind in KNOWN_LINES:
            return str(kind), obj["payload"]
        count(st.skipped, f"unknown line type {kind!r}")
        return None, None
    if kind in BARE_ITEMS:
        return "response_item", obj
    if "record_type" in obj or ("id" in obj and "instructions" in obj):
        # The first versions: a session header and state snapshots, no timings or tokens.
        if isinstance(obj.get("id"), str):
            st.session_id = obj["id"]
        count(st.skipped, "legacy state line")
    else:
        count(st.skipped, f"unknown line type {kind!r}")
    return None, None


def _paired(st: _State) -> list[ModelCall]:
    """The calls with each tool call's end, duration and output size (outputs can be written after the token
    count of the call that issued them)."""
    t = st.tools
    return [
        dataclasses.replace(
            c,
            tool_calls=tuple(
                dataclasses.replace(
                    tc,
                    end_s=t.ends.get(tc.call_id),
                    duration_s=t.durations.get(tc.call_id),
                    output_chars=t.out_chars.get(tc.call_id),
                )
                for tc in c.tool_calls
            ),
        )
        for c in st.calls
    ]


def _has_usage_records(path: str) -> bool:
    """Whether any line of the file is a ``token_usage_record`` (a text scan; only candidate lines are parsed)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for text in fh:
            if "token_usage_record" not in text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                continue  # the reading pass names the bad line
            if isinstance(obj, dict) and obj.get("type") == "token_usage_record":
                return True
    return False


def read_codex(path: str | Path) -> Session:
    """One rollout file as a :class:`Session` (times relative to its first line)."""
    p = str(path)
    st = _State(path=p, session_id=Path(p).stem, usage_records=_has_usage_records(p))
    seen_any = False
    for n, obj in json_lines(p):
        seen_any = True
        ts_raw = obj.get("timestamp")
        ts = parse_time(ts_raw, p, n, "timestamp") if ts_raw is not None else None
        if st.first_ts is None:
            st.first_ts = ts
        kind, payload = _line_kind(st, obj)
        if kind is None:
            continue
        if not isinstance(payload, dict):
            raise TraceError(p, n, "payload", f"expected an object, got {type(payload).__name__}")
        LINE_HANDLERS[kind](st, ts, payload, n)
    if not seen_any:
        raise TraceError(p, None, "file", "empty: no rollout lines")
    if st.tools.pending:
        count(st.skipped, "tool calls after the last token count")
    if not st.calls:
        raise TraceError(
            p, None, "token_count", "no token_count or token_usage_record with usage: not a Codex rollout with tokens"
        )
    return Session(
        id=st.session_id,
        format=FORMAT,
        calls=rebase(_paired(st), st.first_ts),
        source=Path(p).name,
        model=st.model,
        skipped=st.skipped,
    )
