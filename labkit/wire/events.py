"""The Responses API's server events as typed, frozen values: one class per event type, one reader.

Every event labkit sends is built as one of these classes (by :class:`labkit.wire.protocol.ResponseEvents` and
the helpers beside it), and every event a labkit client reads comes back from :func:`parse_server_event` as one.
``to_json()`` is the WebSocket frame's payload and ``to_sse()`` the SSE record, with the keys in the order the
API sends them (pinned byte for byte by ``tests/test_wire_bytes.py``).

An event is also a read-only mapping over its JSON object (``event["type"]``, ``event.get("delta")``), because
the object *is* what crosses the wire: readers that only look at a field need no ``isinstance``. Nested objects
(the Response, an output item, a content part) stay JSON objects: their shape is the API's, and the official
SDK's types describe them.

An event parsed from the wire keeps the object it was parsed from (``to_json()`` gives its bytes back, fields
this module does not model included, as the real API's ``obfuscation``); an event type this module does not
know (the real API has more) parses as :class:`OtherEvent`.

Standard library only; no clock, no sockets.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

__all__ = [
    "READER_TERMINAL_EVENT_TYPES",
    "TERMINAL_EVENT_TYPES",
    "ContentPartAdded",
    "ContentPartDone",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "OtherEvent",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningSummaryPartAdded",
    "ReasoningSummaryPartDone",
    "ReasoningSummaryTextDelta",
    "ReasoningSummaryTextDone",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseFailed",
    "ResponseInProgress",
    "ResponseIncomplete",
    "ResponseQueued",
    "ServerEvent",
    "SteerAccepted",
    "SteerFailed",
    "SteerPending",
    "is_terminal",
    "parse_server_event",
    "sse_frame",
    "ws_frame",
]

#: The events that end one create's stream: a response's terminal status, or an ``error`` for a create that
#: never started. The one definition every reader (clients, conformance suite, benchmarks) uses.
TERMINAL_EVENT_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})
#: What a client reading any server accepts as terminal: the above, and ``response.done`` (older servers and
#: examples; its response's ``status`` says how it ended). labkit's server never sends it.
READER_TERMINAL_EVENT_TYPES = TERMINAL_EVENT_TYPES | {"response.done"}

# One compact encoder, built once: ``json.dumps`` with non-default options builds a new encoder per call,
# which is about half the cost of framing a small delta event.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

E = TypeVar("E", bound="ServerEvent")


@dataclass(frozen=True, slots=True, eq=False)
class ServerEvent(Mapping[str, Any]):
    """One server event. Subclasses declare their fields in the API's key order after ``type``;
    ``stream_id`` (WebSocket lanes) comes last and is left out when it is ``None``, as are the fields in
    :attr:`_OMIT_NONE`. Equality is the mapping's: an event equals the JSON object it frames to."""

    type: ClassVar[str] = ""
    #: Fields left out of the JSON object when ``None`` (besides ``stream_id``).
    _OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    # The JSON object, built on first use (or the one parsed from the wire).
    _wire: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        keys = cls.__dict__.get("_KEYS_CACHE")
        if keys is None:
            keys = tuple(f.name for f in dataclasses.fields(cls) if f.name != "_wire")
            cls._KEYS_CACHE = keys  # type: ignore[attr-defined]
        return keys

    def to_dict(self) -> dict[str, Any]:
        """The event's JSON object (shared: do not mutate it)."""
        wire = self._wire
        if wire is None:
            wire = self._build()
            object.__setattr__(self, "_wire", wire)
        return wire

    def _build(self) -> dict[str, Any]:
        # Replaced per event class by _compile_build (one dict display in key order: this is the hot path of
        # every event the server sends).
        raise NotImplementedError

    def to_json(self) -> str:
        """The WebSocket text frame's payload: compact JSON, UTF-8 as is."""
        # Not cached: an event is framed once (the object built for it is kept only when read as a mapping).
        wire = self._wire
        return _ENCODER.encode(self._build() if wire is None else wire)

    def to_sse(self) -> bytes:
        """The SSE record: ``event: <type>`` and ``data: <json>`` lines and a blank line."""
        wire = self._wire
        if wire is None:
            wire = self._build()
        return f"event: {wire['type']}\ndata: {_ENCODER.encode(wire)}\n\n".encode()

    @property
    def terminal(self) -> bool:
        """This event ends its create's stream (:data:`TERMINAL_EVENT_TYPES`)."""
        return self.to_dict()["type"] in TERMINAL_EVENT_TYPES

    @classmethod
    def from_dict(cls: builtins.type[E], obj: dict[str, Any]) -> E:
        """The event of a parsed JSON object of this type (fields it lacks are ``None``); keeps ``obj``."""
        event = cls(**{name: obj.get(name) for name in cls._keys()})
        object.__setattr__(event, "_wire", obj)
        return event

    # -- the read-only mapping over the JSON object --
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)


# -- the response's lifecycle -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _ResponseSnapshot(ServerEvent):
    sequence_number: int
    #: The Response object at this point of its lifecycle.
    response: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ResponseQueued(_ResponseSnapshot):
    """The create waits behind its lane or the connection's active limit (WebSocket mode)."""

    type: ClassVar[str] = "response.queued"


@dataclass(frozen=True, slots=True, eq=False)
class ResponseCreated(_ResponseSnapshot):
    type: ClassVar[str] = "response.created"


@dataclass(frozen=True, slots=True, eq=False)
class ResponseInProgress(_ResponseSnapshot):
    type: ClassVar[str] = "response.in_progress"


@dataclass(frozen=True, slots=True, eq=False)
class ResponseCompleted(_ResponseSnapshot):
    type: ClassVar[str] = "response.completed"


@dataclass(frozen=True, slots=True, eq=False)
class ResponseIncomplete(_ResponseSnapshot):
    type: ClassVar[str] = "response.incomplete"


@dataclass(frozen=True, slots=True, eq=False)
class ResponseFailed(_ResponseSnapshot):
    type: ClassVar[str] = "response.failed"


# -- output items -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _ItemEvent(ServerEvent):
    sequence_number: int
    output_index: int
    item: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class OutputItemAdded(_ItemEvent):
    type: ClassVar[str] = "response.output_item.added"


@dataclass(frozen=True, slots=True, eq=False)
class OutputItemDone(_ItemEvent):
    type: ClassVar[str] = "response.output_item.done"


@dataclass(frozen=True, slots=True, eq=False)
class _ContentPartEvent(ServerEvent):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ContentPartAdded(_ContentPartEvent):
    type: ClassVar[str] = "response.content_part.added"


@dataclass(frozen=True, slots=True, eq=False)
class ContentPartDone(_ContentPartEvent):
    type: ClassVar[str] = "response.content_part.done"


@dataclass(frozen=True, slots=True, eq=False)
class OutputTextDelta(ServerEvent):
    type: ClassVar[str] = "response.output_text.delta"
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class OutputTextDone(ServerEvent):
    type: ClassVar[str] = "response.output_text.done"
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FunctionCallArgumentsDelta(ServerEvent):
    type: ClassVar[str] = "response.function_call_arguments.delta"
    sequence_number: int
    item_id: str
    output_index: int
    delta: str
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class FunctionCallArgumentsDone(ServerEvent):
    type: ClassVar[str] = "response.function_call_arguments.done"
    sequence_number: int
    item_id: str
    output_index: int
    name: str | None
    arguments: str
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class _SummaryPartEvent(ServerEvent):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ReasoningSummaryPartAdded(_SummaryPartEvent):
    type: ClassVar[str] = "response.reasoning_summary_part.added"


@dataclass(frozen=True, slots=True, eq=False)
class ReasoningSummaryPartDone(_SummaryPartEvent):
    type: ClassVar[str] = "response.reasoning_summary_part.done"


@dataclass(frozen=True, slots=True, eq=False)
class ReasoningSummaryTextDelta(ServerEvent):
    type: ClassVar[str] = "response.reasoning_summary_text.delta"
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ReasoningSummaryTextDone(ServerEvent):
    type: ClassVar[str] = "response.reasoning_summary_text.done"
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str
    stream_id: str | None = None


# -- steering (WebSocket mode) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SteerAccepted(ServerEvent):
    type: ClassVar[str] = "response.steer.accepted"
    sequence_number: int
    #: ``{id, previous_response_id}``.
    steer: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SteerPending(ServerEvent):
    """After ``response.completed``: the steering waits for the tool outputs named in ``required_input``."""

    type: ClassVar[str] = "response.steer.pending"
    sequence_number: int
    reason: str
    required_input: list[dict[str, Any]]
    steer: dict[str, Any]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class SteerFailed(ServerEvent):
    """The steering was not committed: ``steer.input`` returns it (``steer.id`` once one was allocated)."""

    type: ClassVar[str] = "response.steer.failed"
    sequence_number: int
    error: dict[str, Any]
    steer: dict[str, Any]
    stream_id: str | None = None


# -- errors -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class ErrorEvent(ServerEvent):
    """``error``: ``{type, code, message, param}`` in ``error``; the HTTP status it stands for in ``status``."""

    type: ClassVar[str] = "error"
    _OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"status", "sequence_number"})
    error: dict[str, Any]
    status: int | None = None
    sequence_number: int | None = None
    stream_id: str | None = None

    @property
    def code(self) -> str | None:
        return self.error.get("code") if isinstance(self.error, Mapping) else None


@dataclass(frozen=True, slots=True, eq=False)
class OtherEvent(ServerEvent):
    """An event type this module does not model (the real API sends more): its JSON object as received,
    read through the mapping (``event["type"]``); only :meth:`from_dict` makes one."""


def _compile_build(cls: builtins.type[ServerEvent]) -> None:
    """Give ``cls`` a ``_build`` that makes its JSON object in one pass, in the class's field order, leaving out
    ``stream_id`` and the ``_OMIT_NONE`` fields when they are ``None`` (the way dataclasses generates
    ``__init__``: the source is built from the fields, so the order is the declaration's)."""
    keys = cls._keys()
    optional = {k for k in keys if k == "stream_id" or k in cls._OMIT_NONE}
    lead = []
    for key in keys:
        if key in optional:
            break
        lead.append(key)
    lines = [
        "def _build(self):",
        f"    d = {{'type': {cls.type!r}, " + ", ".join(f"{k!r}: self.{k}" for k in lead) + "}",
    ]
    for key in keys[len(lead) :]:
        if key in optional:
            lines += [f"    v = self.{key}", "    if v is not None:", f"        d[{key!r}] = v"]
        else:
            lines.append(f"    d[{key!r}] = self.{key}")
    lines.append("    return d")
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)
    cls._build = namespace["_build"]  # type: ignore[method-assign]


_BY_TYPE: dict[str, type[ServerEvent]] = {
    cls.type: cls
    for cls in (
        ResponseQueued,
        ResponseCreated,
        ResponseInProgress,
        ResponseCompleted,
        ResponseIncomplete,
        ResponseFailed,
        OutputItemAdded,
        OutputItemDone,
        ContentPartAdded,
        ContentPartDone,
        OutputTextDelta,
        OutputTextDone,
        FunctionCallArgumentsDelta,
        FunctionCallArgumentsDone,
        ReasoningSummaryPartAdded,
        ReasoningSummaryPartDone,
        ReasoningSummaryTextDelta,
        ReasoningSummaryTextDone,
        SteerAccepted,
        SteerPending,
        SteerFailed,
        ErrorEvent,
    )
}


for _cls in _BY_TYPE.values():
    _compile_build(_cls)


def is_terminal(event: Mapping[str, Any]) -> bool:
    """``event`` ends its create's stream (:data:`TERMINAL_EVENT_TYPES`)."""
    return event.get("type") in TERMINAL_EVENT_TYPES


def server_event(obj: Mapping[str, Any]) -> ServerEvent:
    """One server event's JSON object (already decoded, e.g. read back from a recording) as its class."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        raise ValueError("event: a server event must be a JSON object with a string 'type'")
    return _BY_TYPE.get(obj["type"], OtherEvent).from_dict(obj if type(obj) is dict else dict(obj))


def parse_server_event(data: str | bytes) -> ServerEvent:
    """Parse one server event (a WebSocket frame's payload or an SSE ``data:`` line) into its class."""
    return server_event(json.loads(data))


def ws_frame(event: Mapping[str, Any]) -> str:
    """One event as a WebSocket text frame's payload (a typed event or a plain JSON object)."""
    if type(event) is dict:
        return _ENCODER.encode(event)
    if isinstance(event, ServerEvent):
        return event.to_json()
    return _ENCODER.encode(dict(event))


def sse_frame(event: Mapping[str, Any]) -> bytes:
    """One event as an SSE record: ``event: <type>`` and ``data: <json>`` lines and a blank line."""
    return f"event: {event['type']}\ndata: {ws_frame(event)}\n\n".encode()
