"""One response's server events, in order: :class:`ResponseEvents`, driven by a transition table.

The table (:data:`TRANSITIONS`) is the response's life as the API streams it, in the manner of h11's
``_state.py``: a call that is not allowed in the current state raises :class:`ResponseStateError` naming the
call and the state, instead of sending ``response.created`` twice or ending ``completed`` after ``failed``.

The clock and the id source are passed in (the server passes the wall clock and random ids; tests pass fixed
ones), so this module touches neither: standard library only, no clock, no ``secrets``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from labkit.wire.events import (
    ContentPartAdded,
    ContentPartDone,
    ErrorEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningSummaryPartAdded,
    ReasoningSummaryPartDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    ResponseCompleted,
    ResponseCreated,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
    ResponseQueued,
    ServerEvent,
    SteerAccepted,
    SteerFailed,
    SteerPending,
)
from labkit.wire.items import echo_tool
from labkit.wire.tokens import estimate_tokens

if TYPE_CHECKING:
    from labkit.wire.protocol import CreateRequest

__all__ = [
    "ITEM_PREFIX",
    "TRANSITIONS",
    "Clock",
    "IdSource",
    "ResponseEvents",
    "ResponseState",
    "ResponseStateError",
    "error_event",
    "output_item",
    "response_object",
    "split_tokens",
    "steer_failed",
    "turn_events",
    "usage_object",
]

#: ``ids("resp")`` -> ``"resp_..."``: a new id with the API's prefix (``resp``, ``msg``, ``fc``, ``call``, ``rs``).
IdSource = Callable[[str], str]
#: Seconds since the epoch (a Response's ``created_at``).
Clock = Callable[[], float]

OutputKind = Literal["message", "function_call", "reasoning"]
#: Item id prefixes, as the API's.
ITEM_PREFIX = {"message": "msg", "function_call": "fc", "reasoning": "rs"}


class ResponseState(enum.Enum):
    # Members are singletons compared by identity: hash them by identity too, in C. Enum's own __hash__ is Python
    # code, and the transition table looks a state up several times per response.
    __hash__ = object.__hash__

    NEW = "new"
    #: A non-streaming answer is being assembled whole (:meth:`ResponseEvents.assemble`): no events go out.
    ASSEMBLING = "assembling"
    #: ``response.queued`` went out: the create waits behind its lane or the active limit.
    QUEUED = "queued"
    #: ``response.created`` went out; no output item is open.
    STREAMING = "streaming"
    ITEM_OPEN = "item_open"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


S = ResponseState
#: state -> {call -> next state}. A call missing from a state's row is out of order. ``failed`` is allowed
#: from every live state (a response can fail before it starts, or mid-item); ``steer_accepted`` while it runs
#: (it may not have started streaming yet); ``steer_pending`` only after it ended for client-owned tool output.
#: ``assemble`` starts a non-streaming answer instead of a stream: it ends whole (or fails), and sends no events.
TRANSITIONS: dict[ResponseState, dict[str, ResponseState]] = {
    S.NEW: {
        "queued": S.QUEUED,
        "start": S.STREAMING,
        "assemble": S.ASSEMBLING,
        "failed": S.FAILED,
        "steer_accepted": S.NEW,
    },
    S.ASSEMBLING: {
        "completed": S.COMPLETED,
        "incomplete": S.INCOMPLETE,
        "failed": S.FAILED,
    },
    S.QUEUED: {"start": S.STREAMING, "failed": S.FAILED, "steer_accepted": S.QUEUED},
    S.STREAMING: {
        "open_item": S.ITEM_OPEN,
        "completed": S.COMPLETED,
        "incomplete": S.INCOMPLETE,
        "failed": S.FAILED,
        "steer_accepted": S.STREAMING,
    },
    S.ITEM_OPEN: {"delta": S.ITEM_OPEN, "close_item": S.STREAMING, "failed": S.FAILED, "steer_accepted": S.ITEM_OPEN},
    S.COMPLETED: {"steer_pending": S.COMPLETED},
    S.INCOMPLETE: {"steer_pending": S.INCOMPLETE},
    S.FAILED: {},
}
_TERMINAL_STATES = frozenset({S.COMPLETED, S.INCOMPLETE, S.FAILED})


class ResponseStateError(ValueError):
    """A :class:`ResponseEvents` call out of order (e.g. a second ``start()``, ``completed()`` after ``failed()``)."""

    def __init__(self, call: str, state: ResponseState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[state])) or "nothing (the response has ended)"
        super().__init__(f"{call}: not allowed in state {state.value!r}; allowed: {allowed}")
        self.call = call
        self.state = state


@dataclass(slots=True)
class _Item:
    kind: OutputKind
    id: str
    output_index: int
    name: str | None = None
    call_id: str | None = None
    #: A reasoning item streams its summary (``reasoning.summary`` was requested).
    summary: bool = False
    encrypted_content: str | None = None
    chunks: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        if len(self.chunks) > 1:
            self.chunks[:] = ["".join(self.chunks)]
        return self.chunks[0] if self.chunks else ""

    def snapshot(self, status: str) -> dict[str, Any]:
        if status != "in_progress":
            return output_item(
                self.kind,
                self.id,
                self.text,
                status,
                name=self.name,
                call_id=self.call_id,
                summary=self.summary,
                encrypted_content=self.encrypted_content,
            )
        if self.kind == "message":
            return {"id": self.id, "type": "message", "status": status, "role": "assistant", "content": []}
        if self.kind == "function_call":
            return {
                "id": self.id,
                "type": "function_call",
                "status": status,
                "arguments": "",
                "call_id": self.call_id,
                "name": self.name,
            }
        item: dict[str, Any] = {"id": self.id, "type": "reasoning", "summary": []}
        if self.encrypted_content is not None:
            item["encrypted_content"] = self.encrypted_content
        return item


def output_item(
    kind: OutputKind,
    item_id: str,
    text: str,
    status: str,
    *,
    name: str | None = None,
    call_id: str | None = None,
    summary: bool = False,
    encrypted_content: str | None = None,
) -> dict[str, Any]:
    """A finished output item as a Response's ``output`` holds it (``status``: ``completed`` or ``incomplete``;
    a reasoning item has none): what a stream's ``response.output_item.done`` carries, and what an answer
    assembled whole holds."""
    if kind == "message":
        content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}
    if kind == "function_call":
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "arguments": text,
            "call_id": call_id,
            "name": name,
        }
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if summary else [],
    }
    if encrypted_content is not None:
        item["encrypted_content"] = encrypted_content
    return item


def usage_object(
    input_tokens: int, output_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """A Response's ``usage`` as the API reports it: ``output_tokens`` include the reasoning tokens."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    req: CreateRequest,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object of ``req`` (what ``response.completed`` carries, and a non-streaming answer is).

    Echoes the request's settings (``req.extra``) where it has them, the API's defaults where not; a request
    without settings (most creates) gets the defaults as constants, without a lookup each
    (``tests/test_wire_response.py`` checks that the two paths agree key for key).
    """
    extra = req.extra
    if extra:
        return _response_echo(req, extra, response_id, created_at, status, output, usage, error, incomplete_details)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": None,
        "metadata": req.metadata or {},
        "model": req.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": req.store,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [echo_tool(t) for t in req.tools] if req.tools else [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
    }


def _response_echo(
    req: CreateRequest,
    extra: Mapping[str, Any],
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None,
    incomplete_details: dict[str, Any] | None,
) -> dict[str, Any]:
    """:func:`response_object` echoing the request's settings (``extra``) where it has them."""
    reasoning = extra.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "max_tool_calls": extra.get("max_tool_calls"),
        "metadata": req.metadata or {},
        "model": req.model,
        "output": output,
        "parallel_tool_calls": extra.get("parallel_tool_calls", True),
        "previous_response_id": req.previous_response_id,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default",
        "store": req.store,
        "temperature": extra.get("temperature", 1.0),
        "text": extra.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": extra.get("tool_choice", "auto"),
        "tools": [echo_tool(t) for t in req.tools],
        "top_p": extra.get("top_p", 1.0),
        "truncation": extra.get("truncation", "disabled"),
        "usage": usage,
        "user": extra.get("user"),
    }


class ResponseEvents:
    """The events of one response, in order, each with the next ``sequence_number``.

    Call :meth:`start` (after :meth:`queued` if the create waited), then for each output item
    :meth:`open_item`, :meth:`delta` per chunk and :meth:`close_item`, then one terminal event:
    :meth:`completed`, :meth:`incomplete` or :meth:`failed` (:data:`TRANSITIONS` is the whole rule). A
    response's output can hold a ``reasoning`` item, then a ``message`` or several ``function_call`` items
    (parallel tool calls). The server interleaves these calls with its clock; :func:`turn_events` calls them
    back to back.
    """

    # One per response: slots make it cheaper to build and every attribute of the hot path cheaper to read.
    __slots__ = (
        "_open",
        "created_at",
        "error",
        "final",
        "id",
        "ids",
        "incomplete_details",
        "items",
        "output",
        "request",
        "sequence_number",
        "state",
        "status",
        "stream_id",
        "usage",
    )

    def __init__(
        self,
        request: CreateRequest,
        *,
        ids: IdSource,
        clock: Clock,
        response_id: str | None = None,
        stream_id: str | None = None,
    ) -> None:
        self.request = request
        self.ids = ids
        self.id = response_id or ids("resp")
        self.stream_id = stream_id
        self.created_at = int(clock())
        self.sequence_number = 0
        self.state = ResponseState.NEW
        self.output: list[dict[str, Any]] = []
        self.items: list[_Item] = []
        self._open: _Item | None = None
        self.usage: dict[str, Any] | None = None
        #: The Response object's ``status``.
        self.status = "in_progress"
        self.error: dict[str, Any] | None = None
        self.incomplete_details: dict[str, Any] | None = None
        #: The Response object as the response ended (its terminal event's, or :meth:`conclude`'s); reused by
        #: whoever needs it afterwards (the store) instead of being built again.
        self.final: dict[str, Any] | None = None

    @property
    def call_ids(self) -> tuple[str, ...]:
        """``call_id`` of every function call this response made (a continuation owes an output for each)."""
        return tuple(i.call_id for i in self.items if i.kind == "function_call" and i.call_id)

    @property
    def has_open_item(self) -> bool:
        return self._open is not None

    @property
    def terminal(self) -> bool:
        return self.state in _TERMINAL_STATES

    def _advance(self, call: str) -> None:
        after = TRANSITIONS[self.state].get(call)
        if after is None:
            raise ResponseStateError(call, self.state)
        self.state = after

    def _seq(self) -> int:
        n = self.sequence_number
        self.sequence_number = n + 1
        return n

    def response(self) -> dict[str, Any]:
        """The Response object in its current state (as ``response.completed`` carries it)."""
        return response_object(
            self.request,
            self.id,
            self.created_at,
            self.status,
            list(self.output),
            self.usage,
            self.error,
            self.incomplete_details,
        )

    # -- the lifecycle --
    def queued(self) -> ResponseQueued:
        """``response.queued``: the create waits behind its lane or the connection's active limit."""
        self._advance("queued")
        self.status = "queued"
        event = ResponseQueued(self._seq(), self.response(), self.stream_id)
        self.status = "in_progress"
        return event

    def start(self) -> list[ServerEvent]:
        """``response.created`` and ``response.in_progress``."""
        self._advance("start")
        snapshot = self.response()
        return [
            ResponseCreated(self._seq(), snapshot, self.stream_id),
            ResponseInProgress(self._seq(), snapshot, self.stream_id),
        ]

    def _new_item(self, kind: OutputKind, name: str | None, summary: bool, encrypted_content: str | None) -> _Item:
        """The next output item: its id, then a function call's ``call_id``, drawn in this order on both paths, so
        that a streamed and an assembled answer of one seed get the same ids."""
        ids = self.ids
        return _Item(
            kind,
            ids(ITEM_PREFIX[kind]),
            len(self.items),
            name=name,
            call_id=ids("call") if kind == "function_call" else None,
            summary=summary,
            encrypted_content=encrypted_content,
        )

    def open_item(
        self,
        kind: OutputKind = "message",
        *,
        name: str | None = None,
        summary: bool = False,
        encrypted_content: str | None = None,
    ) -> list[ServerEvent]:
        """``response.output_item.added`` (and the part's ``.added`` event for a message or a reasoning summary)."""
        if kind == "function_call" and not name:
            raise ValueError("name: a function_call item needs the name of a tool")
        if self._open is not None:
            raise ValueError("open_item: close the current output item first")
        self._advance("open_item")
        item = self._new_item(kind, name, summary, encrypted_content)
        self.items.append(item)
        self._open = item
        lane = self.stream_id
        events: list[ServerEvent] = [
            OutputItemAdded(self._seq(), item.output_index, item.snapshot("in_progress"), lane)
        ]
        if kind == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(ContentPartAdded(self._seq(), item.id, item.output_index, 0, part, lane))
        elif summary:
            part = {"type": "summary_text", "text": ""}
            events.append(ReasoningSummaryPartAdded(self._seq(), item.id, item.output_index, 0, part, lane))
        return events

    def delta(self, chunk: str) -> ServerEvent:
        """One delta of the open item (several tokens when the server coalesces them)."""
        item = self._open
        if item is None:
            # The table's rule (``delta`` only in ``item_open``, which leaves it there), checked through the
            # open item: an item is open exactly in that state. This is the hot path, once per delta.
            raise ResponseStateError("delta", self.state)
        if item.kind == "reasoning" and not item.summary:
            raise ValueError("delta: a reasoning item without a summary has no deltas")
        item.chunks.append(chunk)
        seq = self.sequence_number
        self.sequence_number = seq + 1
        if item.kind == "message":
            return OutputTextDelta(seq, item.id, item.output_index, 0, chunk, [], self.stream_id)
        if item.kind == "function_call":
            return FunctionCallArgumentsDelta(seq, item.id, item.output_index, chunk, self.stream_id)
        return ReasoningSummaryTextDelta(seq, item.id, item.output_index, 0, chunk, self.stream_id)

    def close_item(self, status: Literal["completed", "incomplete"] = "completed") -> list[ServerEvent]:
        """The ``.done`` events of the open item; the item joins the response's output."""
        item = self._open
        if item is None:
            raise ValueError("close_item: no open output item")
        self._advance("close_item")
        self._open = None
        snap = item.snapshot(status)
        self.output.append(snap)
        lane, iid, index = self.stream_id, item.id, item.output_index
        events: list[ServerEvent] = []
        if item.kind == "message":
            text = item.text
            events += [
                OutputTextDone(self._seq(), iid, index, 0, text, [], lane),
                ContentPartDone(self._seq(), iid, index, 0, snap["content"][0], lane),
            ]
        elif item.kind == "function_call":
            events.append(FunctionCallArgumentsDone(self._seq(), iid, index, item.name, item.text, lane))
        elif item.summary:
            text = item.text
            part = {"type": "summary_text", "text": text}
            events += [
                ReasoningSummaryTextDone(self._seq(), iid, index, 0, text, lane),
                ReasoningSummaryPartDone(self._seq(), iid, index, 0, part, lane),
            ]
        events.append(OutputItemDone(self._seq(), index, snap, lane))
        return events

    # -- a non-streaming answer, assembled whole --
    def assemble(self) -> None:
        """Start a non-streaming answer: it ends with :meth:`adopt` (its Response built whole) or :meth:`conclude`.

        No event is built: an answer that is never streamed costs one dict per item, not one object per delta.
        """
        self._advance("assemble")

    def adopt(self, response: dict[str, Any]) -> dict[str, Any]:
        """End an answer being assembled with its Response, built whole from the same request and this response's
        id (:func:`labkit.live.server.assembly.assemble_response`); no event. Returns ``response``."""
        if response.get("id") != self.id:
            raise ValueError(f"adopt: response id {response.get('id')!r} is not this response's {self.id!r}")
        status = response["status"]
        self._advance(status)
        self.status = status
        self.output = response["output"]
        self.usage = response["usage"]
        self.error = response["error"]
        self.incomplete_details = response["incomplete_details"]
        self.final = response
        return response

    def conclude(
        self,
        status: Literal["completed", "incomplete", "failed"],
        *,
        reason: str | None = None,
        error: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """End the response without an event; returns the Response object (as the terminal event would carry it).

        ``reason``: an ``incomplete`` response's (``max_output_tokens``); ``error``: a ``failed`` one's
        ``(code, message)``.
        """
        self._advance(status)
        self._open = None
        self.status = status
        if status == "incomplete":
            self.incomplete_details = {"reason": reason or "max_output_tokens"}
        elif status == "failed":
            code, message = error or ("server_error", "The server had an error.")
            self.error = {"code": code, "message": message}
        self.final = self.response()
        return self.final

    def set_usage(
        self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
    ) -> None:
        """Usage as the API reports it: ``output_tokens`` include the reasoning tokens."""
        if self.terminal:
            raise ResponseStateError("set_usage", self.state)
        self.usage = usage_object(input_tokens, output_tokens, cached_tokens, reasoning_tokens)

    def completed(self) -> ResponseCompleted:
        """``response.completed`` with the full response object (output and usage)."""
        self._advance("completed")
        self.status = "completed"
        self.final = self.response()
        return ResponseCompleted(self._seq(), self.final, self.stream_id)

    def incomplete(self, reason: str) -> ResponseIncomplete:
        """``response.incomplete``: ``reason`` is ``max_output_tokens`` or ``steered`` (and the API's others)."""
        self._advance("incomplete")
        self.status = "incomplete"
        self.incomplete_details = {"reason": reason}
        self.final = self.response()
        return ResponseIncomplete(self._seq(), self.final, self.stream_id)

    def failed(self, code: str = "server_error", message: str = "The server had an error.") -> ResponseFailed:
        """``response.failed``: the response object with ``status: failed`` and its ``error``."""
        self._advance("failed")
        self._open = None
        self.status = "failed"
        self.error = {"code": code, "message": message}
        self.final = self.response()
        return ResponseFailed(self._seq(), self.final, self.stream_id)

    # -- steering (WebSocket mode) --
    def steer_accepted(self, steer_id: str) -> SteerAccepted:
        self._advance("steer_accepted")
        return SteerAccepted(self._seq(), {"id": steer_id, "previous_response_id": self.id}, self.stream_id)

    def steer_pending(self, steer_id: str, required_input: Sequence[Mapping[str, Any]]) -> SteerPending:
        """After ``response.completed``: the steering waits for the tool outputs named in ``required_input``."""
        self._advance("steer_pending")
        return SteerPending(
            self._seq(),
            "waiting_for_required_input",
            [dict(r) for r in required_input],
            {"id": steer_id, "previous_response_id": self.id},
            self.stream_id,
        )

    def required_input(self) -> list[dict[str, Any]]:
        """Stubs of the tool outputs this response's function calls are owed (``response.steer.pending``)."""
        return [
            {"type": "function_call_output", "call_id": i.call_id, "name": i.name}
            for i in self.items
            if i.kind == "function_call"
        ]


def steer_failed(
    code: str,
    message: str,
    previous_response_id: str,
    raw_input: Any,
    *,
    steer_id: str | None = None,
    stream_id: str | None = None,
    sequence_number: int = 0,
) -> SteerFailed:
    """``response.steer.failed``: returns the uncommitted input (``steer.id`` only once one was allocated)."""
    steer: dict[str, Any] = {"input": raw_input, "previous_response_id": previous_response_id}
    if steer_id is not None:
        steer["id"] = steer_id
    error = {"type": "invalid_request_error", "code": code, "message": message}
    return SteerFailed(sequence_number, error, steer, stream_id)


def error_event(
    code: str | None,
    message: str,
    param: str | None = None,
    *,
    type: str = "invalid_request_error",
    status: int | None = None,
    stream_id: str | None = None,
    sequence_number: int | None = None,
) -> ErrorEvent:
    """An ``error`` server event: ``{type: "error", error: {type, code, message, param}, status}``.

    The nested ``error`` object is the WebSocket-mode shape; over SSE the official SDK raises an
    ``APIError`` with its message, which is what a client should see.
    """
    error = {"type": type, "code": code, "message": message, "param": param}
    return ErrorEvent(error, status, sequence_number, stream_id)


def split_tokens(text: str, size: int = 4) -> list[str]:
    """Cut an output text into its tokens (the server sends each as a delta, or coalesces several)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def turn_events(
    request: CreateRequest,
    text: str,
    *,
    ids: IdSource,
    clock: Clock,
    kind: Literal["message", "function_call"] = "message",
    tool_name: str | None = None,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    response_id: str | None = None,
) -> Iterator[ServerEvent]:
    """Every event of one text or tool turn carrying ``text``, back to back, one token per delta."""
    ev = ResponseEvents(request, ids=ids, clock=clock, response_id=response_id, stream_id=request.stream_id)
    yield from ev.start()
    output_tokens = 0
    if request.generate:
        yield from ev.open_item(kind, name=tool_name)
        for chunk in split_tokens(text):
            yield ev.delta(chunk)
        yield from ev.close_item()
        output_tokens = estimate_tokens(text)
    ev.set_usage(input_tokens, output_tokens, cached_tokens)
    yield ev.completed()
