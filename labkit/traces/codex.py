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
  first output item; its end is its ``token_count`` line. Both are when lines were *written*: proxies.

Very old versions wrote the items bare (``{"type": "message", ...}`` without ``payload``) and ``record_type``
state lines: the items are read, the rest counted. Unknown line types are counted, never fatal. A line that
is not a JSON object, or a token count with a malformed usage, is a :class:`TraceError` naming the line.
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

FORMAT = "codex"
TOOL_ITEMS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "web_search_call"})
TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "local_shell_call_output"})
#: Item types a model produces (the first one marks when its answer started to arrive).
OUTPUT_ITEMS = frozenset({"reasoning", *TOOL_ITEMS})
KNOWN_LINES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
BARE_ITEMS = frozenset({"message", "reasoning", *TOOL_ITEMS, *TOOL_OUTPUTS})
USAGE_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


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


def read_codex(path: str | Path) -> Session:
    """One rollout file as a :class:`Session` (times relative to its first line)."""
    p = str(path)
    skipped: dict[str, int] = {}
    session_id = Path(p).stem
    model = ""
    calls: list[ModelCall] = []
    last_total: dict[str, int] | None = None
    last_seen: dict[str, int] | None = None
    pending: list[dict[str, Any]] = []  # tool calls issued since the last model call
    tool_ends: dict[str, float | None] = {}
    tool_durations: dict[str, float] = {}
    tool_out_chars: dict[str, int] = {}
    last_input: float | None = None
    first_output: float | None = None
    prev_end: float | None = None
    seen_any = False
    first_ts: float | None = None

    for n, obj in json_lines(p):
        seen_any = True
        ts_raw = obj.get("timestamp")
        ts = parse_time(ts_raw, p, n, "timestamp") if ts_raw is not None else None
        if first_ts is None and ts is not None:
            first_ts = ts
        kind = obj.get("type")
        payload = obj.get("payload")
        if "payload" not in obj:
            if kind in BARE_ITEMS:
                kind, payload = "response_item", obj
            elif "record_type" in obj or ("id" in obj and "instructions" in obj):
                # The first versions: a session header and state snapshots, no timings or tokens.
                if "id" in obj and isinstance(obj.get("id"), str):
                    session_id = obj["id"]
                count(skipped, "legacy state line")
                continue
            else:
                count(skipped, f"unknown line type {kind!r}")
                continue
        if kind not in KNOWN_LINES:
            count(skipped, f"unknown line type {kind!r}")
            continue
        if not isinstance(payload, dict):
            raise TraceError(p, n, "payload", f"expected an object, got {type(payload).__name__}")
        ptype = payload.get("type")
        if kind == "session_meta":
            meta = payload.get("meta", payload)  # some versions nest it
            if isinstance(meta, dict) and isinstance(meta.get("id"), str):
                session_id = meta["id"]
            if isinstance(meta, dict) and isinstance(meta.get("model"), str):
                model = meta["model"]
        elif kind == "turn_context":
            if isinstance(payload.get("model"), str):
                model = payload["model"]
            last_input = ts if ts is not None else last_input
        elif kind == "compacted":
            count(skipped, "compacted history")
        elif kind == "response_item":
            if ptype in TOOL_ITEMS:
                call_id = str(payload.get("call_id") or payload.get("id") or f"line{n}")
                args = payload.get("arguments", payload.get("input"))
                pending.append(
                    {
                        "name": str(payload.get("name") or ptype),
                        "call_id": call_id,
                        "start": ts,
                        "input_chars": len(args) if isinstance(args, str) else None,
                    }
                )
                if ptype == "web_search_call":
                    tool_ends.setdefault(call_id, ts)  # answered inside the response, no output line
            if ptype in TOOL_OUTPUTS:
                call_id = str(payload.get("call_id", ""))
                out = payload.get("output")
                tool_ends[call_id] = ts
                if isinstance(out, str):
                    tool_out_chars[call_id] = len(out)
                last_input = ts if ts is not None else last_input
            elif ptype in OUTPUT_ITEMS or (ptype == "message" and payload.get("role") == "assistant"):
                if first_output is None:
                    first_output = ts
            elif ptype == "message" and payload.get("role") in ("user", "developer"):
                last_input = ts if ts is not None else last_input
            elif ptype not in ("message",) and ptype not in TOOL_OUTPUTS:
                count(skipped, f"unknown response item {ptype!r}")
        elif kind == "event_msg":
            if ptype == "token_count":
                info = payload.get("info")
                if info is None:
                    count(skipped, "token_count without info")
                    continue
                if not isinstance(info, dict):
                    raise TraceError(p, n, "payload.info", f"expected an object, got {type(info).__name__}")
                total = _usage(info.get("total_token_usage"), p, n, "payload.info.total_token_usage")
                last = _usage(info.get("last_token_usage"), p, n, "payload.info.last_token_usage")
                if total is None and last is None:
                    raise TraceError(p, n, "payload.info", "a token count with neither total nor last usage")
                if total is None:
                    # Without totals a repeat shows as the same usage written again with nothing between.
                    assert last is not None
                    if last == last_seen and not pending and first_output is None:
                        count(skipped, "repeated token usage")
                        continue
                    last_seen = last
                else:
                    if total == last_total:
                        count(skipped, "repeated token totals")
                        continue
                    if last is None:
                        base = last_total or dict.fromkeys(USAGE_FIELDS, 0)
                        last = {k: max(0, total[k] - base[k]) for k in USAGE_FIELDS}
                    last_total = total
                if last["cached_input_tokens"] > last["input_tokens"]:
                    raise TraceError(p, n, "payload.info.last_token_usage.cached_input_tokens", "exceeds input_tokens")
                mark = first_output if first_output is not None else ts
                start = last_input if last_input is not None and (mark is None or last_input <= mark) else None
                if prev_end is not None and (start is None or start < prev_end):
                    start = prev_end
                issued = tuple(
                    ToolCall(
                        name=t["name"],
                        call_id=t["call_id"],
                        start_s=t["start"],
                        end_s=None,
                        input_chars=t["input_chars"],
                    )
                    for t in pending
                )
                calls.append(
                    ModelCall(
                        index=len(calls),
                        input_tokens=last["input_tokens"],
                        cached_input_tokens=last["cached_input_tokens"],
                        output_tokens=last["output_tokens"],
                        reasoning_tokens=min(last["reasoning_output_tokens"], last["output_tokens"]),
                        start_s=start,
                        end_s=ts,
                        model=model,
                        tool_calls=issued,
                    )
                )
                pending = []
                first_output = None
                prev_end = ts
            elif ptype == "user_message":
                last_input = ts if ts is not None else last_input
            elif ptype == "exec_command_end":
                d = _duration(payload.get("duration"))
                if d is not None and payload.get("call_id"):
                    tool_durations[str(payload["call_id"])] = d
            elif ptype == "task_started":
                last_input = ts if ts is not None else last_input

    if not seen_any:
        raise TraceError(p, None, "file", "empty: no rollout lines")
    if pending:
        count(skipped, "tool calls after the last token count")
    if not calls:
        raise TraceError(p, None, "token_count", "no event_msg token_count with usage: not a Codex rollout with tokens")
    # Outputs can be written after the token count of the call that issued them: pair them now.
    paired = []
    for c in calls:
        paired_tools: list[ToolCall] = []
        for t in c.tool_calls:
            paired_tools.append(
                ToolCall(
                    name=t.name,
                    call_id=t.call_id,
                    start_s=t.start_s,
                    end_s=tool_ends.get(t.call_id),
                    duration_s=tool_durations.get(t.call_id),
                    input_chars=t.input_chars,
                    output_chars=tool_out_chars.get(t.call_id),
                )
            )
        paired.append(dataclasses.replace(c, tool_calls=tuple(paired_tools)))
    return Session(
        id=session_id, format=FORMAT, calls=rebase(paired, first_ts), source=Path(p).name, model=model, skipped=skipped
    )
