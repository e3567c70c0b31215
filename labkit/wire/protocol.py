"""The Responses API wire protocol as plain data (sans-I/O): client events in, server events out.

Nothing here touches a socket or a clock. The simulated server (``labkit.live.server``) and the clients
(``labkit.live.client``) both build on it, so the event shapes live in exactly one place.

- Client side: :func:`build_create` makes a ``response.create`` event (WebSocket mode) or an HTTP
  body; :func:`parse_client_event` / :func:`parse_create_body` validate one into a :class:`CreateRequest`,
  raising :class:`ProtocolError` whose ``param`` names the offending field.
- Server side: :class:`ResponseEvents` produces every event of one response in order, with
  ``sequence_number`` and ``resp_``/``msg_``/``fc_``/``call_`` ids; :func:`turn_events` yields a whole
  turn at once. One generator, two framings: :func:`ws_frame` and :func:`sse_frame`.

Shapes follow the official ``openai`` SDK's types (``Response``, ``ResponseCompletedEvent``, ...) so that
the SDK parses them unmodified.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from labkit.wire.events import (
    TERMINAL_EVENT_TYPES,
    ErrorEvent,
    ServerEvent,
    is_terminal,
    parse_server_event,
    sse_frame,
    ws_frame,
)
from labkit.wire.response import (
    ResponseEvents,
    ResponseStateError,
    error_event,
    split_tokens,
    steer_failed,
    turn_events,
)
from labkit.wire.tokens import estimate_tokens
from labkit.wire.validation import check_create

__all__ = [
    "OUTPUT_ITEM_TYPES",
    "TERMINAL_EVENT_TYPES",
    "CreateRequest",
    "ProtocolError",
    "ResponseEvents",
    "ResponseStateError",
    "ServerEvent",
    "SteerError",
    "SteerRequest",
    "build_create",
    "conversation_split",
    "error_body",
    "error_event",
    "function_arguments",
    "function_call_output",
    "input_tokens",
    "internal_error",
    "is_terminal",
    "item_tokens",
    "load_json",
    "no_tool_call_error",
    "no_tool_output_error",
    "parse_client_event",
    "parse_create_body",
    "parse_input_items",
    "parse_server_event",
    "split_tokens",
    "sse_frame",
    "steer_failed",
    "turn_events",
    "user_message",
    "ws_frame",
]

#: ``stream_id`` lanes: 1-256 letters, digits, ``_``, ``-``, ``.`` (documented limit).
STREAM_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")

#: Top-level fields of the HTTP create body that the simulator accepts. Fields it does not model
#: (sampling settings, reasoning, ...) are accepted and echoed where the Response object has them,
#: so SDK calls that pass them still work; anything else is an ``unknown_parameter`` error, as on the
#: real API.
_PASSTHROUGH_FIELDS = frozenset(
    {
        "background_options",
        "context_management",
        "conversation",
        "include",
        "max_tool_calls",
        "moderation",
        "parallel_tool_calls",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "access_programs",
        "image",
    }
)
_MODELLED_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "previous_response_id",
        "store",
        "max_output_tokens",
        "metadata",
    }
)
#: ``stream`` and ``background`` are HTTP fields. The WebSocket-mode guide says to omit them, but OpenAI's own
#: clients send ``stream: true`` in every ``response.create`` (the Agents SDK's ``_prepare_websocket_request``,
#: openai-python's ``examples/responses/websocket.py``) and the real server accepts it: WebSocket mode always
#: streams, so ``stream`` (either value) and ``background: false`` are accepted there and ignored.
_STREAM_FIELDS = frozenset({"stream", "background"})
_WS_ONLY_FIELDS = frozenset({"type", "stream_id", "generate", "event_id"})

#: Item types that the model produced (they mark the boundaries between turns in a full history).
OUTPUT_ITEM_TYPES = frozenset({"function_call", "reasoning"})
_INPUT_ITEM_TYPES = frozenset(
    {"message", "function_call", "function_call_output", "reasoning", "item_reference", "compaction"}
)


#: ``metadata`` key through which a client names the workload seed of its conversation (simulator only).
SEED_METADATA_KEY = "labkit_seed"


class ProtocolError(Exception):
    """A request the server rejects: becomes an ``error`` event (WebSocket) or an HTTP 4xx body."""

    def __init__(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        #: ``None`` where the real API sends ``"code": null`` (e.g. its function-call bookkeeping errors).
        self.code = code
        self.message = message
        self.param = param
        self.status = status
        self.type = type
        #: What the rejected message named, when it was a JSON object: a continuation's parent (a failed
        #: same-lane continuation evicts it) and its lane (request errors on a named lane echo the lane).
        self.previous_response_id: str | None = None
        self.stream_id: str | None = None

    def event(self, *, stream_id: str | None = None, sequence_number: int | None = None) -> ErrorEvent:
        return error_event(
            self.code,
            self.message,
            self.param,
            type=self.type,
            status=self.status,
            stream_id=stream_id if stream_id is not None else self.stream_id,
            sequence_number=sequence_number,
        )

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.param, type=self.type)


def _invalid(param: str, message: str, code: str = "invalid_value") -> ProtocolError:
    # Messages start with the field name, as every labkit error does.
    return ProtocolError(code, f"{param}: {message}", param)


# -- client events ----------------------------------------------------------------------------------


#: The ``extra`` of a request without any: one shared, read-only mapping.
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


class CreateRequest(NamedTuple):
    """One validated ``response.create`` (WebSocket) or ``POST /v1/responses`` body.

    Immutable; a named tuple rather than a frozen dataclass because a request is built per create, and a frozen
    dataclass sets each field through ``object.__setattr__`` (1.5 us against 0.4 us for these twelve fields).
    """

    model: str
    #: Input items, normalised: a bare string input becomes one user message item.
    input: tuple[dict[str, Any], ...]
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    previous_response_id: str | None = None
    store: bool = True
    max_output_tokens: int | None = None
    metadata: dict[str, str] | None = None
    #: WebSocket lane; ``None`` is the connection's default lane.
    stream_id: str | None = None
    #: ``False`` warms the server's state without sampling (WebSocket mode).
    generate: bool = True
    #: HTTP only: answer with SSE instead of one JSON object.
    stream: bool = False
    #: Accepted fields the simulator does not model (echoed in the Response where it has them); read-only.
    extra: Mapping[str, Any] = _NO_EXTRA

    @property
    def tool_names(self) -> tuple[str, ...]:
        names = []
        for tool in self.tools:
            name = tool.get("name")
            if isinstance(name, str):
                names.append(name)
        return tuple(names)


#: A request from the tuple of all its fields, in order (as labkit.util.fields.from_fields builds one; the wire
#: imports nothing of labkit's but itself).
_new_request = functools.partial(tuple.__new__, CreateRequest)


def build_create(
    model: str,
    input: str | Sequence[Mapping[str, Any]],
    *,
    instructions: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    previous_response_id: str | None = None,
    store: bool | None = None,
    max_output_tokens: int | None = None,
    metadata: Mapping[str, str] | None = None,
    stream_id: str | None = None,
    generate: bool | None = None,
    stream: bool | None = None,
    websocket: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A ``response.create`` event (``websocket=True``) or an HTTP create body (``websocket=False``).

    Only the fields given are set, so the server applies the API's defaults to the rest.
    """
    event: dict[str, Any] = {"type": "response.create"} if websocket else {}
    event["model"] = model
    event["input"] = input if isinstance(input, str) else [dict(item) for item in input]
    optional = {
        "instructions": instructions,
        "tools": None if tools is None else [dict(t) for t in tools],
        "previous_response_id": previous_response_id,
        "store": store,
        "max_output_tokens": max_output_tokens,
        "metadata": None if metadata is None else dict(metadata),
        **extra,
    }
    if websocket:
        optional.update(stream_id=stream_id, generate=generate)
    else:
        if stream_id is not None or generate is not None:
            raise ValueError("stream_id: stream_id and generate exist only in WebSocket mode")
        optional["stream"] = stream
    event.update({k: v for k, v in optional.items() if v is not None})
    return event


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    """The input item that returns a tool's result to the model."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


#: A ``\\uD800``-``\\uDFFF`` escape in JSON text: half of a UTF-16 surrogate pair (a pair is one character).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def load_json(data: str | bytes, what: str) -> Any:
    """Decode a client's JSON; ``what`` (``message`` or ``body``) leads the error message.

    JSON lets a string escape a lone UTF-16 surrogate (``"\\ud800"``), which Python decodes to a string that
    is not Unicode text (it cannot be encoded as UTF-8): such a message is rejected here, as invalid JSON,
    before any field reaches code that encodes it. Only a message holding a surrogate escape pays for the check.
    """
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"{what}: not valid JSON ({exc})", None) from None
    except RecursionError:
        # json's decoder recurses per nesting level: a few KB of '[' would otherwise escape as a crash.
        raise ProtocolError("invalid_json", f"{what}: JSON nested too deeply", None) from None
    escape = _SURROGATE_ESCAPE_BYTES if isinstance(data, bytes) else _SURROGATE_ESCAPE
    if escape.search(data) is not None:  # type: ignore[arg-type]
        try:
            json.dumps(obj, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ProtocolError(
                "invalid_json", f"{what}: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)", None
            ) from None
        except RecursionError:
            raise ProtocolError("invalid_json", f"{what}: JSON nested too deeply", None) from None
    return obj


def parse_client_event(data: str | bytes, *, max_bytes: int | None = None) -> CreateRequest | SteerRequest:
    """Validate one WebSocket-mode client message (``response.create`` or ``response.steer``).

    Raises :class:`ProtocolError` naming the field; a malformed ``response.steer`` raises :class:`SteerError`,
    which the server answers with ``response.steer.failed`` (``invalid_input``) as the real API does.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode())
    if max_bytes is not None and size > max_bytes:
        raise ProtocolError("message_too_large", f"message: {size} bytes exceeds the limit of {max_bytes} bytes", None)
    obj = load_json(data, "message")
    if not isinstance(obj, dict):
        raise _invalid("type", "a client event must be a JSON object", "invalid_type")
    kind = obj.get("type")
    if "type" not in obj:
        raise _invalid("type", "missing; expected 'response.create'", "missing_required_parameter")
    if not isinstance(kind, str):
        raise _invalid("type", f"must be a string, got {_json_type(kind)}", "invalid_type")
    if kind == "response.steer":
        return _parse_steer(obj)
    if kind != "response.create":
        raise ProtocolError(
            "unknown_event_type",
            f"type: unsupported client event {kind[:64]!r}; this server accepts 'response.create' and 'response.steer'",
            "type",
        )
    try:
        return _parse_create(obj, websocket=True)
    except ProtocolError as exc:
        prev, lane = obj.get("previous_response_id"), obj.get("stream_id")
        exc.previous_response_id = prev if isinstance(prev, str) else None
        exc.stream_id = lane if isinstance(lane, str) and STREAM_ID_RE.match(lane) else None
        raise


def parse_create_body(body: bytes | str | Mapping[str, Any]) -> CreateRequest:
    """Validate an HTTP ``POST /v1/responses`` body; raises :class:`ProtocolError` naming the field."""
    if isinstance(body, bytes | str):
        return parse_create_json(load_json(body, "body"))
    return parse_create_json(dict(body) if isinstance(body, Mapping) else body)


def parse_create_json(obj: Any) -> CreateRequest:
    """Validate an HTTP ``POST /v1/responses`` body already decoded from its JSON (the decoder's value, which
    the request keeps parts of); raises :class:`ProtocolError` naming the field."""
    if type(obj) is not dict:
        raise _invalid("body", "must be a JSON object", "invalid_type")
    return _parse_create(obj, websocket=False)


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object" if isinstance(v, dict) else type(v).__name__


#: The fields of a common create (a model, its input, the chaining and lane fields): :func:`_parse_common` checks
#: a body of only these in one pass; any other field (tools, sampling settings, ...) takes the full check.
_COMMON_HTTP_FIELDS = frozenset(
    {"model", "input", "instructions", "previous_response_id", "store", "stream", "metadata"}
)
_COMMON_WS_FIELDS = _COMMON_HTTP_FIELDS | {"type", "stream_id", "generate"}


def _parse_create(obj: dict[str, Any], *, websocket: bool) -> CreateRequest:
    return _parse_common(obj, websocket) or _parse_full(obj, websocket)


def _parse_full(obj: dict[str, Any], websocket: bool) -> CreateRequest:
    """Every check of a create, in the order the API reports the first problem; raises :class:`ProtocolError`."""
    _check_fields(obj, websocket)
    model = obj.get("model")
    if model is None:
        raise _invalid("model", "missing required parameter", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _invalid("model", "must be a non-empty string", "invalid_type")

    generate = _optional_bool(obj, "generate", True)
    if obj.get("input") is None:
        # A warm-up (``generate: false``) may carry only tools and instructions (the WebSocket-mode guide).
        if generate:
            raise _invalid("input", "missing required parameter", "missing_required_parameter")
        items: tuple[dict[str, Any], ...] = ()
    else:
        items = _parse_input(obj["input"])

    instructions = obj.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("instructions", f"must be a string, got {_json_type(instructions)}", "invalid_type")

    tools = _parse_tools(obj.get("tools"))

    prev = obj.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev):
        raise _invalid("previous_response_id", "must be a non-empty string", "invalid_type")

    store = _optional_bool(obj, "store", True)
    # WebSocket mode always streams: ``stream`` is accepted there (OpenAI's clients send it) and ignored.
    stream = _optional_bool(obj, "stream", False) or websocket
    if _optional_bool(obj, "background", False):
        where = "WebSocket mode does not run background responses" if websocket else "not supported by the simulator"
        raise _invalid("background", where)
    _check_reasoning(obj.get("reasoning"))
    ptc = obj.get("parallel_tool_calls")
    if ptc is not None and not isinstance(ptc, bool):
        raise _invalid("parallel_tool_calls", f"must be a boolean, got {_json_type(ptc)}", "invalid_type")

    mot = obj.get("max_output_tokens")
    if mot is not None and (not isinstance(mot, int) or isinstance(mot, bool) or mot < 1):
        raise _invalid("max_output_tokens", f"must be an integer >= 1, got {mot!r}"[:120])
    _check_metadata(obj.get("metadata"))
    stream_id = obj.get("stream_id")
    if stream_id is not None and (not isinstance(stream_id, str) or not STREAM_ID_RE.match(stream_id)):
        raise ProtocolError(
            "invalid_stream_id",
            "stream_id: must be 1-256 characters of letters, digits, '_', '-' or '.'",
            "stream_id",
        )
    extra = {k: v for k, v in obj.items() if k in _PASSTHROUGH_FIELDS}
    return CreateRequest(
        model=model,
        input=items,
        instructions=instructions,
        tools=tools,
        previous_response_id=prev,
        store=store,
        max_output_tokens=mot,
        metadata=obj.get("metadata"),
        stream_id=stream_id,
        generate=generate,
        stream=stream,
        extra=extra,
    )


def _check_fields(obj: dict[str, Any], websocket: bool) -> None:
    """Unknown fields, then the table's fields (types, enums, nested objects, tools[*]: labkit.wire.validation)."""
    allowed = _MODELLED_FIELDS | _PASSTHROUGH_FIELDS | _STREAM_FIELDS | (_WS_ONLY_FIELDS if websocket else frozenset())
    for key in obj:
        if key not in allowed:
            # The API's words for an unknown field ("Unknown parameter: 'stop'."); a WebSocket-only one says so.
            message = f"Unknown parameter: '{key[:64]}'."
            if key in _WS_ONLY_FIELDS:
                message = f"{key[:64]}: unknown parameter over HTTP (WebSocket mode only)"
            raise ProtocolError("unknown_parameter", message, key[:64])
    if (bad := check_create(obj)) is not None:
        raise ProtocolError(bad.code, bad.message, bad.param)


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _invalid("metadata", f"must be an object, got {_json_type(metadata)}", "invalid_type")
    if len(metadata) > 16:
        raise _invalid("metadata", "at most 16 keys")
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise _invalid(f"metadata.{k[:64]}", "values must be strings", "invalid_type")


def _parse_common(obj: dict[str, Any], websocket: bool) -> CreateRequest | None:
    """A common create (:data:`_COMMON_HTTP_FIELDS`) checked in one pass, or ``None``: the full check decides.

    ``None`` for any field outside the common ones and for any value the full check might reject, so that
    every error comes from the full check, in its order and words; what this accepts, the full check accepts
    with the same result (``tests/test_protocol_fast_path.py`` compares the two on generated bodies).
    """
    if not obj.keys() <= (_COMMON_WS_FIELDS if websocket else _COMMON_HTTP_FIELDS):
        return None
    model, raw, instructions = obj.get("model"), obj.get("input"), obj.get("instructions")
    prev, metadata, stream_id = obj.get("previous_response_id"), obj.get("metadata"), obj.get("stream_id")
    store, stream, generate = obj.get("store", True), obj.get("stream", False), obj.get("generate", True)
    if not (type(model) is str and model and (instructions is None or type(instructions) is str)):
        return None
    if not (prev is None or (type(prev) is str and prev)):
        return None
    if type(store) is not bool or type(stream) is not bool or type(generate) is not bool:
        return None  # explicit nulls (the API's default) and bad types alike
    if metadata is not None and not (type(metadata) is dict and len(metadata) <= 16 and _all_str(metadata)):
        return None
    if stream_id is not None and not (type(stream_id) is str and STREAM_ID_RE.match(stream_id)):
        return None
    if type(raw) is str:
        items: tuple[dict[str, Any], ...] = (user_message(raw),)
    elif type(raw) is list:
        try:
            items = _parse_input(raw)
        except ProtocolError:
            return None
    elif raw is None and not generate:
        items = ()
    else:
        return None
    # The fields in their order, through tuple.__new__ (C): a named tuple's own __new__ is a Python function.
    tools, max_output_tokens, stream = (), None, stream or websocket
    return _new_request(
        (
            model,
            items,
            instructions,
            tools,
            prev,
            store,
            max_output_tokens,
            metadata,
            stream_id,
            generate,
            stream,
            _NO_EXTRA,
        )
    )


def _all_str(metadata: dict[str, Any]) -> bool:
    return all(type(v) is str for v in metadata.values())


def _optional_bool(obj: Mapping[str, Any], name: str, default: bool) -> bool:
    v = obj.get(name)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise _invalid(name, f"must be a boolean, got {_json_type(v)}", "invalid_type")
    return v


def _parse_tools(tools: Any) -> tuple[dict[str, Any], ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise _invalid("tools", f"must be an array, got {_json_type(tools)}", "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _invalid(where, "must be an object", "invalid_type")
        kind = tool.get("type")
        if not isinstance(kind, str):
            raise _invalid(f"{where}.type", "missing or not a string", "missing_required_parameter")
        if kind == "function":
            name = tool.get("name")
            if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_\-]{1,128}$", name):
                raise _invalid(f"{where}.name", "must be 1-128 letters, digits, '_' or '-'")
            params = tool.get("parameters")
            if params is not None and not isinstance(params, dict):
                raise _invalid(f"{where}.parameters", "must be a JSON Schema object", "invalid_type")
        out.append(tool)
    return tuple(out)


def _parse_input(value: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str):
        return (user_message(value),)
    if not isinstance(value, list):
        raise _invalid("input", f"must be a string or an array of items, got {_json_type(value)}", "invalid_type")
    items = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid(where, "must be an object", "invalid_type")
        kind = item.get("type", "message" if "role" in item else None)
        if not isinstance(kind, str):
            raise _invalid(f"{where}.type", "missing or not a string", "missing_required_parameter")
        if kind not in _INPUT_ITEM_TYPES:
            raise _invalid(f"{where}.type", f"unsupported item type {kind[:64]!r}")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _invalid(f"{where}.role", "must be one of user, assistant, system, developer")
            content = item.get("content")
            if isinstance(content, list):
                for j, part in enumerate(content):
                    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                        raise _invalid(f"{where}.content[{j}]", "must be an object with a type", "invalid_type")
            elif not isinstance(content, str):
                raise _invalid(f"{where}.content", "must be a string or an array of parts", "invalid_type")
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not item["call_id"]:
                raise _invalid(f"{where}.call_id", "missing or not a string", "missing_required_parameter")
            output = item.get("output")
            if not isinstance(output, str | list):
                raise _invalid(f"{where}.output", "must be a string or an array", "invalid_type")
        elif kind == "function_call":
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise _invalid(f"{where}.{name}", "missing or not a string", "missing_required_parameter")
        elif kind == "compaction" and not isinstance(item.get("encrypted_content"), str):
            raise _invalid(f"{where}.encrypted_content", "missing or not a string", "missing_required_parameter")
        items.append(item if "type" in item else {"type": kind, **item})
    return tuple(items)


def parse_input_items(value: Any) -> tuple[dict[str, Any], ...]:
    """Validate an ``input`` (a string or an array of items) as ``response.create`` does."""
    return _parse_input(value)


#: ``reasoning.effort`` values of the API's ``Reasoning`` type (openai 3.57 ``types/shared/reasoning.py``).
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
REASONING_SUMMARIES = ("auto", "concise", "detailed")


def _check_reasoning(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _invalid("reasoning", f"must be an object, got {_json_type(value)}", "invalid_type")
    effort, summary = value.get("effort"), value.get("summary", value.get("generate_summary"))
    if effort is not None and effort not in REASONING_EFFORTS:
        raise _invalid("reasoning.effort", f"must be one of {', '.join(REASONING_EFFORTS)}")
    if summary is not None and summary not in REASONING_SUMMARIES:
        raise _invalid("reasoning.summary", f"must be one of {', '.join(REASONING_SUMMARIES)}")


# -- steering ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SteerRequest:
    """One ``response.steer``: user input queued into the response ``previous_response_id`` while it runs.

    openai 3.57 ``conn.response.steer(input=..., previous_response_id=...)`` sends exactly ``type``,
    ``previous_response_id`` and ``input``; the target response decides the lane.
    """

    previous_response_id: str
    #: The steering input as the client sent it (returned verbatim in ``response.steer.failed``).
    raw_input: Any
    #: Normalised user message items (a string becomes one).
    input: tuple[dict[str, Any], ...]


class SteerError(ProtocolError):
    """A ``response.steer`` the server rejects with ``response.steer.failed`` (when it can name the target)."""

    def __init__(self, message: str, previous_response_id: str | None, raw_input: Any) -> None:
        super().__init__("invalid_input", message, "input")
        self.previous_response_id = previous_response_id
        self.raw_input = raw_input


def _parse_steer(obj: dict[str, Any]) -> SteerRequest:
    prev, raw = obj.get("previous_response_id"), obj.get("input")
    prev_ok = prev if isinstance(prev, str) and prev else None
    for key in obj:
        if key not in ("type", "previous_response_id", "input"):
            # "This event accepts only type, previous_response_id, and input" (openai 3.57 steer docstring).
            raise SteerError(
                f"{key[:64]}: response.steer accepts only type, previous_response_id and input", prev_ok, raw
            )
    if prev_ok is None:
        raise SteerError("previous_response_id: missing or not a non-empty string", None, raw)
    if isinstance(raw, str):
        if not raw:
            raise SteerError("input: must not be empty", prev_ok, raw)
        return SteerRequest(prev_ok, raw, (user_message(raw),))
    if not isinstance(raw, list) or not raw:
        raise SteerError("input: must be a string or a non-empty array of user messages", prev_ok, raw)
    try:
        items = _parse_input(raw)
    except ProtocolError as exc:
        raise SteerError(exc.message, prev_ok, raw) from None
    for i, item in enumerate(items):
        # "Steering accepts only messages with the user role" (ResponseSteerFailedEvent.steer.input).
        if item.get("type") != "message" or item.get("role") != "user":
            raise SteerError(f"input[{i}]: steering accepts only user messages", prev_ok, raw)
    return SteerRequest(prev_ok, raw, items)


# -- token accounting (shared by the server and the clients that build payloads) --------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return ""


def item_tokens(item: Mapping[str, Any]) -> int:
    """Estimated tokens of one input or output item: the text the model would read.

    Message: its text content. Function call: its arguments (what the model generated; the name is
    left out so that a chain's count equals the workload's output tokens). Function call output: its
    output text. Anything else counts zero.
    """
    kind = item.get("type", "message")
    if kind == "message":
        return estimate_tokens(_content_text(item.get("content")))
    if kind == "function_call":
        return estimate_tokens(str(item.get("arguments", "")))
    if kind == "function_call_output":
        return estimate_tokens(_content_text(item.get("output")))
    if kind == "compaction":
        # A compaction item stands for the conversation it compacted: its opaque content is sized to it.
        return estimate_tokens(str(item.get("encrypted_content", "")))
    return 0


def is_model_output(item: Mapping[str, Any]) -> bool:
    """Whether an item was produced by the model (it closes one earlier turn in a full history)."""
    kind = item.get("type", "message")
    return kind in OUTPUT_ITEM_TYPES or (kind == "message" and item.get("role") == "assistant")


def conversation_split(items: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """``(model_turns, context_tokens, new_tokens)`` of a list of input items.

    ``model_turns`` counts the earlier model responses in the items (a run of consecutive model-output
    items is one response); ``new_tokens`` are the items after the last model output (what this request
    adds), ``context_tokens`` everything before.
    """
    if len(items) == 1:  # most requests: a continuation's one tool output, or a first user message
        tokens = item_tokens(items[0])
        return (1, tokens, 0) if is_model_output(items[0]) else (0, 0, tokens)
    turns = 0
    last_out = -1
    previous_was_output = False
    for i, item in enumerate(items):
        out = is_model_output(item)
        if out:
            last_out = i
            if not previous_was_output:
                turns += 1
        previous_was_output = out
    context = sum(item_tokens(it) for it in items[: last_out + 1])
    new = sum(item_tokens(it) for it in items[last_out + 1 :])
    return turns, context, new


def input_tokens(items: Sequence[Mapping[str, Any]], instructions: str | None = None) -> int:
    """Estimated tokens of a request's instructions and input items."""
    return estimate_tokens(instructions or "") + sum(item_tokens(it) for it in items)


def function_arguments(n_tokens: int, text: str) -> str:
    """A JSON arguments string of exactly ``n_tokens`` estimated tokens carrying ``text``.

    ``{"q":"`` and ``"}`` are 8 bytes (2 tokens); ``text`` must be JSON-safe 4-byte words.
    """
    if n_tokens <= 1:
        return "{}"
    return '{"q":"' + text + '"}'


# -- server errors ----------------------------------------------------------------------------------


def error_body(
    code: str | None, message: str, param: str | None = None, *, type: str = "invalid_request_error"
) -> dict[str, Any]:
    """The JSON body of an HTTP error response."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def internal_error() -> ProtocolError:
    """The API's 500 for a request the server failed on (``server_error``); no detail of the failure leaks."""
    return ProtocolError("server_error", "The server had an internal error.", None, status=500, type="server_error")


def no_tool_call_error(call_id: str) -> ProtocolError:
    """The real API's 400 for a ``function_call_output`` whose ``call_id`` matches no call (``code: null``)."""
    return ProtocolError(None, f"No tool call found for function call output with call_id {call_id[:80]}.", "input")


def no_tool_output_error(call_id: str) -> ProtocolError:
    """The real API's 400 for a continuation that leaves a function call without its output (``code: null``)."""
    return ProtocolError(None, f"No tool output found for function call {call_id[:80]}.", "input")
