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

import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from labkit.wire.tokens import estimate_tokens, filler_text

__all__ = [
    "OUTPUT_ITEM_TYPES",
    "CreateRequest",
    "ProtocolError",
    "ResponseEvents",
    "build_create",
    "conversation_split",
    "error_body",
    "error_event",
    "function_arguments",
    "function_call_output",
    "input_tokens",
    "item_tokens",
    "new_id",
    "output_text",
    "parse_client_event",
    "parse_create_body",
    "parse_server_event",
    "split_tokens",
    "sse_frame",
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
_HTTP_ONLY_FIELDS = frozenset({"stream", "background"})
_WS_ONLY_FIELDS = frozenset({"type", "stream_id", "generate", "event_id"})

#: Item types that the model produced (they mark the boundaries between turns in a full history).
OUTPUT_ITEM_TYPES = frozenset({"function_call", "reasoning"})
_INPUT_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning", "item_reference"})


#: ``metadata`` key through which a client names the workload seed of its conversation (simulator only).
SEED_METADATA_KEY = "labkit_seed"


class ProtocolError(Exception):
    """A request the server rejects: becomes an ``error`` event (WebSocket) or an HTTP 4xx body."""

    def __init__(
        self,
        code: str,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.status = status
        self.type = type

    def event(self, *, stream_id: str | None = None, sequence_number: int | None = None) -> dict[str, Any]:
        return error_event(
            self.code,
            self.message,
            self.param,
            type=self.type,
            status=self.status,
            stream_id=stream_id,
            sequence_number=sequence_number,
        )

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.param, type=self.type)


def _invalid(param: str, message: str, code: str = "invalid_value") -> ProtocolError:
    # Messages start with the field name, as every labkit error does.
    return ProtocolError(code, f"{param}: {message}", param)


# -- client events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """One validated ``response.create`` (WebSocket) or ``POST /v1/responses`` body."""

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
    #: Accepted fields the simulator does not model (echoed in the Response where it has them).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tool_names(self) -> tuple[str, ...]:
        names = []
        for tool in self.tools:
            name = tool.get("name")
            if isinstance(name, str):
                names.append(name)
        return tuple(names)


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


def _load_json(data: str | bytes, what: str) -> Any:
    """Decode a client's JSON; ``what`` (``message`` or ``body``) leads the error message."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"{what}: not valid JSON ({exc})", None) from None
    except RecursionError:
        # json's decoder recurses per nesting level: a few KB of '[' would otherwise escape as a crash.
        raise ProtocolError("invalid_json", f"{what}: JSON nested too deeply", None) from None


def parse_client_event(data: str | bytes, *, max_bytes: int | None = None) -> CreateRequest:
    """Validate one WebSocket-mode client message; raises :class:`ProtocolError` naming the field."""
    size = len(data) if isinstance(data, bytes) else len(data.encode())
    if max_bytes is not None and size > max_bytes:
        raise ProtocolError("message_too_large", f"message: {size} bytes exceeds the limit of {max_bytes} bytes", None)
    obj = _load_json(data, "message")
    if not isinstance(obj, dict):
        raise _invalid("type", "a client event must be a JSON object", "invalid_type")
    kind = obj.get("type")
    if "type" not in obj:
        raise _invalid("type", "missing; expected 'response.create'", "missing_required_parameter")
    if not isinstance(kind, str):
        raise _invalid("type", f"must be a string, got {_json_type(kind)}", "invalid_type")
    if kind != "response.create":
        raise ProtocolError(
            "unknown_event_type",
            f"type: unsupported client event {kind[:64]!r}; this server accepts 'response.create'",
            "type",
        )
    return _parse_create(obj, websocket=True)


def parse_create_body(body: bytes | str | Mapping[str, Any]) -> CreateRequest:
    """Validate an HTTP ``POST /v1/responses`` body; raises :class:`ProtocolError` naming the field."""
    if isinstance(body, bytes | str):
        obj = _load_json(body, "body")
    else:
        obj = dict(body) if isinstance(body, Mapping) else body
    if not isinstance(obj, dict):
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


def _parse_create(obj: dict[str, Any], *, websocket: bool) -> CreateRequest:
    allowed = _MODELLED_FIELDS | _PASSTHROUGH_FIELDS | (_WS_ONLY_FIELDS if websocket else _HTTP_ONLY_FIELDS)
    for key in obj:
        if key not in allowed:
            where = "in WebSocket mode" if key in _HTTP_ONLY_FIELDS else "for response.create"
            if not websocket and key in _WS_ONLY_FIELDS:
                where = "over HTTP (WebSocket mode only)"
            raise ProtocolError("unknown_parameter", f"{key[:64]}: unknown parameter {where}", key[:64])

    model = obj.get("model")
    if model is None:
        raise _invalid("model", "missing required parameter", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _invalid("model", "must be a non-empty string", "invalid_type")

    if "input" not in obj or obj["input"] is None:
        raise _invalid("input", "missing required parameter", "missing_required_parameter")
    items = _parse_input(obj["input"])

    instructions = obj.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _invalid("instructions", f"must be a string, got {_json_type(instructions)}", "invalid_type")

    tools = _parse_tools(obj.get("tools"))

    prev = obj.get("previous_response_id")
    if prev is not None and (not isinstance(prev, str) or not prev):
        raise _invalid("previous_response_id", "must be a non-empty string", "invalid_type")

    store = _optional_bool(obj, "store", True)
    generate = _optional_bool(obj, "generate", True)
    stream = _optional_bool(obj, "stream", False)
    if obj.get("background"):
        raise _invalid("background", "background responses are not supported by the simulator")

    mot = obj.get("max_output_tokens")
    if mot is not None and (not isinstance(mot, int) or isinstance(mot, bool) or mot < 1):
        raise _invalid("max_output_tokens", f"must be an integer >= 1, got {mot!r}"[:120])

    metadata = obj.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _invalid("metadata", f"must be an object, got {_json_type(metadata)}", "invalid_type")
        if len(metadata) > 16:
            raise _invalid("metadata", "at most 16 keys")
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise _invalid(f"metadata.{k[:64]}", "values must be strings", "invalid_type")

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
        metadata=metadata,
        stream_id=stream_id,
        generate=generate,
        stream=stream,
        extra=extra,
    )


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
        items.append(item if "type" in item else {"type": kind, **item})
    return tuple(items)


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


def split_tokens(text: str, size: int = 4) -> list[str]:
    """Cut an output text into its tokens (the server sends each as a delta, or coalesces several)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


# -- server events ----------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """An id like the API's: ``resp_``, ``msg_``, ``fc_``, ``call_`` followed by 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def error_event(
    code: str,
    message: str,
    param: str | None = None,
    *,
    type: str = "invalid_request_error",
    status: int | None = None,
    stream_id: str | None = None,
    sequence_number: int | None = None,
) -> dict[str, Any]:
    """An ``error`` server event: ``{type: "error", error: {type, code, message, param}, status}``.

    The nested ``error`` object is the WebSocket-mode shape; over SSE the official SDK raises an
    ``APIError`` with its message, which is what a client should see.
    """
    event: dict[str, Any] = {
        "type": "error",
        "error": {"type": type, "code": code, "message": message, "param": param},
    }
    if status is not None:
        event["status"] = status
    if sequence_number is not None:
        event["sequence_number"] = sequence_number
    if stream_id is not None:
        event["stream_id"] = stream_id
    return event


def error_body(code: str, message: str, param: str | None = None, *, type: str = "invalid_request_error") -> dict:
    """The JSON body of an HTTP error response."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


OutputKind = Literal["message", "function_call"]


class ResponseEvents:
    """The events of one response, in order, each with the next ``sequence_number``.

    Call :meth:`start`, then (unless ``generate`` is false) :meth:`open_item`, :meth:`delta` for each
    chunk of output, :meth:`close_item`, then :meth:`completed` (or :meth:`failed` at any point). The
    server interleaves these calls with its clock; :func:`turn_events` calls them back to back.
    """

    def __init__(
        self,
        request: CreateRequest,
        *,
        kind: OutputKind = "message",
        tool_name: str | None = None,
        response_id: str | None = None,
        stream_id: str | None = None,
        created_at: float | None = None,
    ) -> None:
        if kind == "function_call" and not tool_name:
            raise ValueError("tool_name: a function_call response needs the name of a tool")
        self.request = request
        self.kind: OutputKind = kind
        self.tool_name = tool_name
        self.id = response_id or new_id("resp")
        self.stream_id = stream_id
        self.created_at = int(created_at if created_at is not None else time.time())
        self.item_id = new_id("msg" if kind == "message" else "fc")
        self.call_id = new_id("call") if kind == "function_call" else None
        self.sequence_number = 0
        # Deltas are collected in a list and joined once (repeated str += on an attribute is quadratic).
        self._chunks: list[str] = []
        self.output: list[dict[str, Any]] = []
        self.usage: dict[str, Any] | None = None
        self.status = "in_progress"
        self.error: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        """The output so far: the message text or the function-call arguments."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    @text.setter
    def text(self, value: str) -> None:
        self._chunks = [value]

    # -- helpers --
    def _event(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = {"type": type_, "sequence_number": self.sequence_number, **fields}
        self.sequence_number += 1
        if self.stream_id is not None:
            event["stream_id"] = self.stream_id
        return event

    def response(self) -> dict[str, Any]:
        """The Response object in its current state (as ``response.completed`` carries it)."""
        req = self.request
        extra = req.extra
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "background": False,
            "error": self.error,
            "incomplete_details": None,
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "max_tool_calls": extra.get("max_tool_calls"),
            "metadata": req.metadata or {},
            "model": req.model,
            "output": list(self.output),
            "parallel_tool_calls": extra.get("parallel_tool_calls", True),
            "previous_response_id": req.previous_response_id,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": req.store,
            "temperature": extra.get("temperature", 1.0),
            "text": extra.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
            "tool_choice": extra.get("tool_choice", "auto"),
            "tools": [dict(t) for t in req.tools],
            "top_p": extra.get("top_p", 1.0),
            "truncation": extra.get("truncation", "disabled"),
            "usage": self.usage,
            "user": extra.get("user"),
        }

    def _item(self, status: str) -> dict[str, Any]:
        if self.kind == "message":
            content = (
                [{"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}]
                if status == "completed"
                else []
            )
            return {
                "id": self.item_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": content,
            }
        return {
            "id": self.item_id,
            "type": "function_call",
            "status": status,
            "arguments": self.text if status == "completed" else "",
            "call_id": self.call_id,
            "name": self.tool_name,
        }

    # -- the lifecycle --
    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        snapshot = self.response()
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def open_item(self) -> list[dict[str, Any]]:
        """``response.output_item.added`` (and ``content_part.added`` for a message)."""
        events = [self._event("response.output_item.added", output_index=0, item=self._item("in_progress"))]
        if self.kind == "message":
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=self.item_id,
                    output_index=0,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        return events

    def delta(self, chunk: str) -> dict[str, Any]:
        """One output delta (several tokens when the server coalesces them)."""
        self._chunks.append(chunk)
        if self.kind == "message":
            return self._event(
                "response.output_text.delta",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                delta=chunk,
                logprobs=[],
            )
        return self._event("response.function_call_arguments.delta", item_id=self.item_id, output_index=0, delta=chunk)

    def close_item(self) -> list[dict[str, Any]]:
        """The ``.done`` events of the output item; the item joins the response's output."""
        item = self._item("completed")
        self.output = [item]
        if self.kind == "message":
            part = item["content"][0]
            return [
                self._event(
                    "response.output_text.done",
                    item_id=self.item_id,
                    output_index=0,
                    content_index=0,
                    text=self.text,
                    logprobs=[],
                ),
                self._event(
                    "response.content_part.done",
                    item_id=self.item_id,
                    output_index=0,
                    content_index=0,
                    part=part,
                ),
                self._event("response.output_item.done", output_index=0, item=item),
            ]
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=self.item_id,
                output_index=0,
                name=self.tool_name,
                arguments=self.text,
            ),
            self._event("response.output_item.done", output_index=0, item=item),
        ]

    def set_usage(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> None:
        self.usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }

    def completed(self) -> dict[str, Any]:
        """``response.completed`` with the full response object (output and usage)."""
        self.status = "completed"
        return self._event("response.completed", response=self.response())

    def failed(self, code: str = "server_error", message: str = "The server had an error.") -> dict[str, Any]:
        """``response.failed``: the response object with ``status: failed`` and its ``error``."""
        self.status = "failed"
        self.error = {"code": code, "message": message}
        return self._event("response.failed", response=self.response())


def turn_events(
    request: CreateRequest,
    output_tokens: int,
    *,
    kind: OutputKind = "message",
    tool_name: str | None = None,
    salt: int = 0,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    response_id: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every event of one text or tool turn, back to back, one token per delta."""
    ev = ResponseEvents(request, kind=kind, tool_name=tool_name, response_id=response_id, stream_id=request.stream_id)
    text = output_text(kind, output_tokens, salt)
    yield from ev.start()
    if request.generate:
        yield from ev.open_item()
        for chunk in split_tokens(text):
            yield ev.delta(chunk)
        yield from ev.close_item()
    ev.set_usage(input_tokens, output_tokens if request.generate else 0, cached_tokens)
    yield ev.completed()


def output_text(kind: OutputKind, n_tokens: int, salt: int = 0) -> str:
    """The simulated model's output: a message text or function arguments of exactly ``n_tokens``."""
    if kind == "message":
        return filler_text(max(1, n_tokens), salt)
    return function_arguments(n_tokens, filler_text(max(0, n_tokens - 2), salt))


# -- framing ----------------------------------------------------------------------------------------


# One compact encoder, built once: ``json.dumps`` with non-default options builds a new encoder per call,
# which is about half the cost of framing a small delta event.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _dumps(event: Mapping[str, Any]) -> str:
    return _ENCODER.encode(event)


def ws_frame(event: Mapping[str, Any]) -> str:
    """One event as a WebSocket text frame's payload."""
    return _dumps(event)


def sse_frame(event: Mapping[str, Any]) -> bytes:
    """One event as an SSE record: ``event: <type>`` and ``data: <json>`` lines and a blank line."""
    return f"event: {event['type']}\ndata: {_dumps(event)}\n\n".encode()


def parse_server_event(data: str | bytes) -> dict[str, Any]:
    """Parse one server event (a WebSocket frame's payload or an SSE ``data:`` line)."""
    obj = json.loads(data)
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ValueError("event: a server event must be a JSON object with a string 'type'")
    return obj
