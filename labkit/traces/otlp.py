"""OTLP JSON traces with the OpenTelemetry GenAI semantic conventions: import into sessions, export from spans.

The JSON is the OTLP/HTTP JSON encoding of ``ExportTraceServiceRequest`` (opentelemetry-proto), as the
collector's file exporter writes it (one request a line) or as one object a file: ``resourceSpans[].scopeSpans[]
.spans[]`` (older producers: ``instrumentationLibrarySpans``), ids as hex strings, times as nanosecond strings,
attributes as ``{"key", "value": {"stringValue" | "intValue" | "doubleValue" | "boolValue"}}``.

GenAI conventions (open-telemetry/semantic-conventions, ``gen-ai-spans.md``, ``gen-ai-agent-spans.md``; status
development): ``invoke_agent`` spans are agent runs, ``chat`` spans model calls (kind CLIENT), ``execute_tool``
spans tool calls; ``gen_ai.operation.name`` names the operation (span names are ``"{operation} {model|tool}"``).
Usage: ``gen_ai.usage.input_tokens`` (includes cached tokens), ``gen_ai.usage.cache_read.input_tokens``,
``gen_ai.usage.output_tokens``, ``gen_ai.usage.reasoning.output_tokens``; ``gen_ai.response.time_to_first_chunk``
(seconds). Nothing names the transport: labkit's exporter writes it and the connection under ``labkit.*``.
Phoenix reads ``openinference.span.kind`` (``AGENT``, ``LLM``, ``TOOL``), written beside.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.traces.model import ModelCall, Session, ToolCall, TraceError, as_int, count, rebase
from labkit.traces.spansio import turn_table

FORMAT = "otlp"
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
#: labkit's live scenarios name their transport; simulated ones are profiles, whose transport the preset says.
TRANSPORT_OF_SCENARIO = {"ws": "websocket", "http": "http", "http-chained": "http"}


def looks_like(first_objects: list[dict[str, Any]]) -> bool:
    return any("resourceSpans" in o for o in first_objects)


# -- import ------------------------------------------------------------------------------------------------


def _attr_value(v: Any) -> Any:
    if not isinstance(v, dict):
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        try:
            return int(v["intValue"])  # proto3 JSON writes int64 as a string
        except (TypeError, ValueError):
            return None
    if "doubleValue" in v:
        try:
            return float(v["doubleValue"])
        except (TypeError, ValueError):
            return None
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_attr_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    return None


def _attrs(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, list):
        return {}
    return {a["key"]: _attr_value(a.get("value")) for a in raw if isinstance(a, dict) and "key" in a}


def _ns(span: dict[str, Any], key: str, path: str, line: int) -> float:
    raw: Any = span.get(key)
    try:
        return int(raw) / 1e9
    except (TypeError, ValueError):
        raise TraceError(
            path, line, f"span {span.get('name', '?')!r}.{key}", f"expected nanoseconds, got {raw!r}"
        ) from None


def _operation(span: dict[str, Any], attrs: dict[str, Any]) -> str:
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str):
        return op
    name = str(span.get("name", ""))
    return name.split(" ", 1)[0]


def _records(path: str) -> list[tuple[int, dict[str, Any]]]:
    """The ExportTraceServiceRequest objects of a file: one JSON document, or one a line."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    stripped = text.strip()
    if not stripped:
        raise TraceError(path, None, "file", "empty")
    try:
        doc = json.loads(stripped)
        if isinstance(doc, dict):
            return [(1, doc)]
        if isinstance(doc, list):
            return [(1, d) for d in doc]
    except json.JSONDecodeError:
        pass
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(path, n, "line", f"not JSON ({exc.msg})") from None
        out.append((n, obj))
    return out


def _spans(path: str) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    """Every span of the file with its line and its attributes as a dict."""
    spans: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for line, rec in _records(path):
        if not isinstance(rec, dict) or "resourceSpans" not in rec:
            raise TraceError(path, line, "resourceSpans", "missing: not an OTLP JSON trace export")
        rs_list = rec["resourceSpans"]
        if not isinstance(rs_list, list):
            raise TraceError(path, line, "resourceSpans", "expected a list")
        for rs in rs_list:
            scopes = (rs or {}).get("scopeSpans", (rs or {}).get("instrumentationLibrarySpans", []))
            for ss in scopes or []:
                for sp in (ss or {}).get("spans", []) or []:
                    if not isinstance(sp, dict) or "spanId" not in sp:
                        raise TraceError(path, line, "spans[].spanId", "missing")
                    spans.append((line, sp, _attrs(sp.get("attributes"))))
    return spans


def _session_key(
    sp: dict[str, Any], attrs: dict[str, Any], by_id: dict[Any, tuple[dict[str, Any], dict[str, Any]]]
) -> str:
    """A span's session: its ``gen_ai.conversation.id``, else its root ``invoke_agent``'s, else that span's id,
    else the trace id."""
    conv = attrs.get("gen_ai.conversation.id")
    if isinstance(conv, str) and conv:
        return conv
    root: dict[str, Any] | None = None
    cur: dict[str, Any] | None = sp
    seen: set[Any] = set()
    while cur is not None and cur.get("spanId") not in seen:
        seen.add(cur.get("spanId"))
        cur_attrs = by_id.get(cur.get("spanId"), (cur, {}))[1]
        if _operation(cur, cur_attrs) == "invoke_agent":
            root = cur
            conv = cur_attrs.get("gen_ai.conversation.id")
            if isinstance(conv, str) and conv:
                return conv
        parent = cur.get("parentSpanId")
        cur = by_id[parent][0] if parent and parent in by_id else None
    return str(root["spanId"]) if root is not None else str(sp.get("traceId", ""))


def _model_call(
    sp: dict[str, Any], attrs: dict[str, Any], times: tuple[float, float], path: str, line: int
) -> ModelCall:
    where = f"span {sp.get('name')!r}."

    def tok(name: str) -> int:
        return as_int(attrs.get(name), path, line, where + name, optional=True)

    ttft = attrs.get("gen_ai.response.time_to_first_chunk")
    out = tok("gen_ai.usage.output_tokens")
    return ModelCall(
        index=0,
        input_tokens=tok("gen_ai.usage.input_tokens"),
        cached_input_tokens=tok("gen_ai.usage.cache_read.input_tokens"),
        output_tokens=out,
        reasoning_tokens=min(out, tok("gen_ai.usage.reasoning.output_tokens")),
        start_s=times[0],
        end_s=times[1],
        ttft_s=float(ttft) if isinstance(ttft, int | float) else None,
        model=str(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or ""),
    )


def _tool_call(sp: dict[str, Any], attrs: dict[str, Any], times: tuple[float, float]) -> ToolCall:
    status = sp.get("status")
    return ToolCall(
        name=str(attrs.get("gen_ai.tool.name") or "tool"),
        call_id=str(attrs.get("gen_ai.tool.call.id") or ""),
        start_s=times[0],
        end_s=times[1],
        is_error=isinstance(status, dict) and status.get("code") in (2, "STATUS_CODE_ERROR"),
    )


def _session(key: str, calls: list[ModelCall], tools: list[ToolCall], path: str, skipped: dict[str, int]) -> Session:
    """A session's calls in start order, each with the tool calls started after it and before the next: GenAI
    spans are siblings, so a tool call belongs to the latest model call that started before it."""
    calls = sorted(calls, key=lambda c: (c.start_s or 0.0, c.end_s or 0.0))
    attached: list[list[ToolCall]] = [[] for _ in calls]
    sk = dict(skipped)
    starts = np.array([c.start_s or 0.0 for c in calls])
    for tc in sorted(tools, key=lambda t: t.start_s or 0.0):
        i = int(np.searchsorted(starts, tc.start_s or 0.0, side="right")) - 1
        if i < 0:
            count(sk, "execute_tool span before any chat span")
            continue
        attached[i].append(tc)
    mc = [
        dataclasses.replace(c, index=i, tool_calls=tuple(a))
        for i, (c, a) in enumerate(zip(calls, attached, strict=True))
    ]
    return Session(id=key, format=FORMAT, calls=rebase(mc), source=Path(path).name, model=mc[0].model, skipped=sk)


def read_otlp(path: str | Path) -> list[Session]:
    """Sessions from OTLP JSON: one per ``gen_ai.conversation.id``, else per root ``invoke_agent``, else trace."""
    p = str(path)
    spans = _spans(p)
    by_id = {sp["spanId"]: (sp, attrs) for _, sp, attrs in spans}
    skipped: dict[str, int] = {}
    models: dict[str, list[ModelCall]] = {}
    tools: dict[str, list[ToolCall]] = {}
    for line, sp, attrs in spans:
        op = _operation(sp, attrs)
        if op == "invoke_agent":
            continue
        times = _ns(sp, "startTimeUnixNano", p, line), _ns(sp, "endTimeUnixNano", p, line)
        if times[1] < times[0]:
            raise TraceError(p, line, f"span {sp.get('name')!r}.endTimeUnixNano", "before startTimeUnixNano")
        key = _session_key(sp, attrs, by_id)
        if op in MODEL_OPERATIONS:
            if "gen_ai.usage.input_tokens" not in attrs:
                count(skipped, "chat span without gen_ai.usage.input_tokens")
            models.setdefault(key, []).append(_model_call(sp, attrs, times, p, line))
        elif op == "execute_tool":
            tools.setdefault(key, []).append(_tool_call(sp, attrs, times))
        else:
            count(skipped, f"span operation {op!r}")
    if not models:
        raise TraceError(p, None, "spans", "no chat (model call) spans with the GenAI conventions")
    return [_session(key, calls, tools.get(key, []), p, skipped) for key, calls in models.items()]


# -- export ------------------------------------------------------------------------------------------------


def _hex_id(nbytes: int, *parts: Any) -> str:
    h = hashlib.sha256("/".join(str(x) for x in parts).encode()).hexdigest()[: nbytes * 2]
    return h if int(h, 16) else "1".rjust(nbytes * 2, "0")  # all-zero ids are invalid in OTLP


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int | np.integer):
        v = {"intValue": str(int(value))}
    elif isinstance(value, float | np.floating):
        v = {"doubleValue": float(value)}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def _transport(scenario: str) -> str | None:
    if scenario in TRANSPORT_OF_SCENARIO:
        return TRANSPORT_OF_SCENARIO[scenario]
    from labkit.model import preset_names  # the model layer: a preset name says its transport

    if scenario in preset_names():
        from labkit.model import load_profile

        return load_profile(scenario).transport
    return None


def _chat_span(r: Any, trace_id: str, root: str, model: str, common: list[dict[str, Any]], ns: Any) -> dict[str, Any]:
    """The ``chat`` span of one turn-table row."""
    attrs = [
        _kv("gen_ai.operation.name", "chat"),
        _kv("gen_ai.request.model", model),
        _kv("openai.api.type", "responses"),
        _kv("openinference.span.kind", "LLM"),
        _kv("gen_ai.usage.input_tokens", int(r.input_tokens)),
        _kv("gen_ai.usage.output_tokens", int(r.output_tokens) + int(r.reasoning_tokens)),
        _kv("gen_ai.usage.reasoning.output_tokens", int(r.reasoning_tokens)),
        _kv("labkit.turn", int(r.turn)),
        _kv("labkit.attempts", int(r.attempts)),
        _kv("labkit.connection.reused", bool(r.reused)),
        _kv("labkit.connection.connect_s", float(r.connect_s)),
        _kv("labkit.request.sent_tokens", int(r.sent_tokens)),
        _kv("labkit.request.chained", bool(r.chained)),
        *common,
    ]
    if r.cached_input_tokens:
        attrs.append(_kv("gen_ai.usage.cache_read.input_tokens", int(r.cached_input_tokens)))
    if not np.isnan(r.ttft_s):
        attrs.append(_kv("gen_ai.response.time_to_first_chunk", float(r.ttft_s)))
    return {
        "traceId": trace_id,
        "spanId": _hex_id(8, trace_id, "chat", r.turn),
        "parentSpanId": root,
        "name": f"chat {model}",
        "kind": SPAN_KIND_CLIENT,
        "startTimeUnixNano": ns(r.start_s),
        "endTimeUnixNano": ns(r.end_s),
        "attributes": attrs,
    }


def _tool_span(
    t: Any, k: int, rollout: Any, trace_id: str, root: str, common: list[dict[str, Any]], ns: Any
) -> dict[str, Any]:
    """The ``execute_tool`` span of one tool row."""
    return {
        "traceId": trace_id,
        "spanId": _hex_id(8, trace_id, "tool", t.turn, k),
        "parentSpanId": root,
        "name": "execute_tool tool",
        "kind": SPAN_KIND_INTERNAL,
        "startTimeUnixNano": ns(t.start_s),
        "endTimeUnixNano": ns(t.end_s),
        "attributes": [
            _kv("gen_ai.operation.name", "execute_tool"),
            _kv("gen_ai.tool.name", "tool"),
            _kv("gen_ai.tool.call.id", f"call_{rollout}_{t.turn}_{k}"),
            _kv("gen_ai.tool.type", "function"),
            _kv("openinference.span.kind", "TOOL"),
            _kv("labkit.turn", int(t.turn)),
            *common,
        ],
    }


def _rollout_spans(
    key: tuple[Any, Any, Any], turns: pd.DataFrame, tools: pd.DataFrame, provider: str, model: str, origin: int
) -> list[dict[str, Any]]:
    """``invoke_agent`` for one rollout, then a ``chat`` span per model call and an ``execute_tool`` per tool call."""
    source, scenario, rollout = key

    def ns(t: float) -> str:
        return str(origin + round(float(t) * 1e9))

    trace_id = _hex_id(16, source, scenario, rollout, origin)
    root = _hex_id(8, trace_id, "agent")
    t_end = max(float(turns["end_s"].max()), float(tools["end_s"].max()) if len(tools) else -np.inf)
    common = [
        _kv("gen_ai.provider.name", provider),
        _kv("gen_ai.conversation.id", f"{source}/{scenario}/{rollout}"),
        _kv("labkit.source", str(source)),
        _kv("labkit.scenario", str(scenario)),
        _kv("labkit.rollout", int(rollout)),
    ]
    transport = _transport(str(scenario))
    if transport:
        common.append(_kv("labkit.transport", transport))
    agent_attrs = [
        _kv("gen_ai.operation.name", "invoke_agent"),
        _kv("gen_ai.agent.name", "labkit"),
        _kv("openinference.span.kind", "AGENT"),
        *common,
    ]
    out = [
        {
            "traceId": trace_id,
            "spanId": root,
            "name": "invoke_agent labkit",
            "kind": SPAN_KIND_INTERNAL,
            "startTimeUnixNano": ns(float(turns["start_s"].min())),
            "endTimeUnixNano": ns(t_end),
            "attributes": agent_attrs,
        }
    ]
    out += [_chat_span(r, trace_id, root, model, common, ns) for r in turns.itertuples(index=False)]
    out += [_tool_span(t, k, rollout, trace_id, root, common, ns) for k, t in enumerate(tools.itertuples(index=False))]
    return out


def spans_to_otlp(
    spans: pd.DataFrame,
    *,
    model: str = "labkit-sim",
    provider: str = "openai",
    origin_unix_ns: int | None = None,
    service_name: str = "labkit",
) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` (OTLP JSON) of a spans table: ``invoke_agent`` per rollout, ``chat`` per
    model call, ``execute_tool`` per tool call. ``origin_unix_ns`` is the wall time of the spans' 0 (default:
    now); spans are relative seconds, OTLP wants absolute nanoseconds."""
    import labkit

    origin = time.time_ns() if origin_unix_ns is None else int(origin_unix_ns)
    turns = turn_table(spans)
    tool_rows = spans[spans["stage"] == "tool"]
    out_spans: list[dict[str, Any]] = []
    key: Any
    for key, g in turns.groupby(["source", "scenario", "rollout"], sort=True):
        source, scenario, rollout = key
        mine = (tool_rows["source"] == source) & (tool_rows["scenario"] == scenario) & (tool_rows["rollout"] == rollout)
        out_spans += _rollout_spans(key, g, tool_rows[mine], provider, model, origin)
    scope = {"scope": {"name": "labkit.traces", "version": labkit.__version__}, "spans": out_spans}
    resource = {"attributes": [_kv("service.name", service_name)]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}
