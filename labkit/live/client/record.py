"""What a client saw of one request: a timestamp for every event, and the spans derived from them.

Both clients (WebSocket mode and HTTP) fill one :class:`Exchange` per ``response.create`` or POST. Times are
``time.perf_counter()`` seconds taken the moment the client got each event out of its transport, so the
same record yields TTFT, inter-token gaps and turn latency, and the live coarse spans of
:mod:`labkit.model.spans`:

- ``connect``: a connection opened for this request (a zero-length span with ``cache_hit=True`` when an open
  connection was reused, so every turn has the same shape as the simulator's);
- ``queue`` (only when the server sent ``response.queued``): request sent until the response left the queue
  (the first event after the last ``response.queued``);
- ``request``: request sent (or dequeued) until the first output delta (text or function-call arguments), or
  until a ``reasoning`` item began;
- ``reasoning`` (only for a response with reasoning): the reasoning item's ``output_item.added`` until its
  ``output_item.done`` (or the first output delta), ``tokens`` =
  ``usage.output_tokens_details.reasoning_tokens``; zero-length at the first delta when the stream showed no
  reasoning item but the usage counts reasoning tokens (a JSON answer);
- ``decode``: first to last output delta, ``tokens`` = the deltas' token estimate - 1 (the first token is
  TTFT's, as in the latency model); several output items (parallel function calls) are estimated item by item;
- ``complete``: last delta until the terminal event.

Terminal events are ``response.completed``, ``response.incomplete``, ``response.failed``, ``error`` and
``response.done`` (older servers and examples; its response's ``status`` says how it ended). A failed attempt
(error event, HTTP error status, dropped connection, timeout) keeps only ``connect`` and a ``request`` span up
to the moment the failure was seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from labkit.model.spans import SpanColumns
from labkit.wire.events import READER_TERMINAL_EVENT_TYPES, ServerEvent
from labkit.wire.protocol import input_tokens, user_message
from labkit.wire.tokens import estimate_tokens

#: Output delta events: the first one is TTFT, their spacing the inter-token gaps.
DELTA_TYPES = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})
#: Events that end a response on the wire (``response.done``: older servers; its ``response.status`` decides).
TERMINAL_TYPES = READER_TERMINAL_EVENT_TYPES
#: Events of a steering submission (WebSocket mode): recorded, never terminal.
STEER_TYPES = frozenset({"response.steer.accepted", "response.steer.pending", "response.steer.failed"})
_OUTCOMES = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}

Status = Literal["pending", "completed", "incomplete", "failed", "error", "dropped", "timeout"]


@dataclass(slots=True)
class Exchange:
    """One request and everything received for it, with ``perf_counter`` timestamps."""

    #: When the client began the exchange (before any connection handshake).
    t_start: float
    #: End of a connection handshake done for this exchange; ``None`` when an open connection was reused.
    t_connected: float | None = None
    #: When the request was written.
    t_sent: float = 0.0
    #: When the exchange ended (terminal event, error, drop or timeout).
    t_end: float = 0.0
    status: Status = "pending"
    #: ``(time, type)`` of every event received, in order.
    events: list[tuple[float, str]] = field(default_factory=list)
    #: Time, text and ``output_index`` of every output delta.
    delta_t: list[float] = field(default_factory=list)
    delta_text: list[str] = field(default_factory=list)
    delta_index: list[int] = field(default_factory=list)
    #: The final response object (``response.completed`` / ``failed`` / ``incomplete``, or the JSON body).
    response: dict[str, Any] | None = None
    #: ``{type, code, message, param}`` of a failure, as the server sent it (or built for a drop/timeout).
    error: dict[str, Any] | None = None
    http_status: int | None = None
    request_bytes: int = 0
    request_tokens: int = 0
    received_bytes: int = 0
    #: The request continued a chain (``previous_response_id``).
    chained: bool = False
    #: First ``response.queued`` (the server held the request behind another response of its lane), and the
    #: first event after the last one (the response left the queue).
    t_queued: float | None = None
    t_dequeued: float | None = None
    #: A ``reasoning`` output item's ``output_item.added`` and ``output_item.done``.
    t_reasoning_start: float | None = None
    t_reasoning_end: float | None = None
    #: When a ``response.steer`` for this response was sent, and the ``response.steer.*`` events received
    #: during this exchange, whole.
    t_steer_sent: float | None = None
    steer_events: list[ServerEvent] = field(default_factory=list)

    # -- recording (called by the clients) ------------------------------------------------------------

    def on_event(self, t: float, event: ServerEvent, nbytes: int = 0) -> bool:
        """Record one parsed server event; returns True when it ends the response."""
        etype = event.get("type")
        if not isinstance(etype, str):
            etype = "?"
        self.events.append((t, etype))
        self.received_bytes += nbytes
        if self.t_queued is not None and self.t_dequeued is None and etype != "response.queued":
            self.t_dequeued = t
        if etype in DELTA_TYPES:
            delta = event.get("delta")
            index = event.get("output_index")
            self.delta_t.append(t)
            self.delta_text.append(delta if isinstance(delta, str) else "")
            self.delta_index.append(index if isinstance(index, int) else 0)
            return False
        if etype not in TERMINAL_TYPES:
            self._on_other(t, etype, event)
            return False
        self.t_end = t
        if etype == "error":
            err = event.get("error")
            # The documented shape nests the fields under "error"; accept them flat as well.
            self.error = (
                dict(err) if isinstance(err, dict) else {k: event.get(k) for k in ("type", "code", "message", "param")}
            )
            self.status = "error"
            return True
        response = event.get("response")
        if etype == "response.done":
            # No outcome in the event type: the response object's status says it.
            status = response.get("status") if isinstance(response, dict) else None
            outcome = status if isinstance(status, str) else "completed"
        else:
            outcome = _OUTCOMES[etype]
        self.finish(t, response, outcome)
        return True

    def _on_other(self, t: float, etype: str, event: ServerEvent) -> None:
        if etype == "response.queued":
            if self.t_queued is None:
                self.t_queued = t
            # Queued again (re-queued behind another response): it leaves the queue at the next event.
            self.t_dequeued = None
        elif etype in ("response.output_item.added", "response.output_item.done"):
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "reasoning":
                if etype == "response.output_item.added" and self.t_reasoning_start is None:
                    self.t_reasoning_start = t
                elif etype == "response.output_item.done":
                    self.t_reasoning_end = t
        elif etype in STEER_TYPES:
            self.steer_events.append(event)

    def finish(self, t: float, response: Any, outcome: str | None) -> None:
        """End the exchange with a final response object (a terminal stream event's, or an HTTP JSON body).

        ``outcome`` ``completed`` or ``incomplete`` is kept; anything else means failed, with the response's
        own ``error`` or one naming the outcome.
        """
        self.t_end = t
        self.response = response if isinstance(response, dict) else None
        if outcome == "completed":
            self.status = "completed"
            return
        if outcome == "incomplete":
            self.status = "incomplete"
            return
        self.status = "failed"
        err = self.response.get("error") if self.response else None
        self.error = dict(err) if isinstance(err, dict) else {"code": "response_failed", "message": str(outcome)}

    def fail(self, t: float, status: Status, code: str, message: str, http_status: int | None = None) -> None:
        """End the exchange without a terminal event (a drop, a timeout, an HTTP error)."""
        self.t_end = t
        self.status = status
        self.error = {
            "type": "client_error" if status in ("dropped", "timeout") else "server_error",
            "code": code,
            "message": message,
            "param": None,
        }
        if http_status is not None:
            self.http_status = http_status

    # -- derived ---------------------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """A usable response arrived (completed, or incomplete with its output)."""
        return self.status in ("completed", "incomplete") and self.response is not None

    @property
    def error_code(self) -> str | None:
        if self.error is None:
            return None
        code = self.error.get("code")
        return str(code) if code is not None else None

    @property
    def response_id(self) -> str | None:
        rid = self.response.get("id") if self.response else None
        return rid if isinstance(rid, str) else None

    @property
    def output(self) -> list[dict[str, Any]]:
        out = self.response.get("output") if self.response else None
        return [item for item in out if isinstance(item, dict)] if isinstance(out, list) else []

    @property
    def request_start(self) -> float:
        """Where the ``request`` span begins: after a handshake, else at the start (serialising included)."""
        return self.t_connected if self.t_connected is not None else self.t_start

    @property
    def t_first_delta(self) -> float | None:
        return self.delta_t[0] if self.delta_t else None

    @property
    def t_last_delta(self) -> float | None:
        return self.delta_t[-1] if self.delta_t else None

    @property
    def ttft_s(self) -> float | None:
        """First output delta minus the start of the exchange (handshake included)."""
        return self.delta_t[0] - self.t_start if self.delta_t else None

    @property
    def latency_s(self) -> float:
        return self.t_end - self.t_start

    @property
    def output_text(self) -> str:
        return "".join(self.delta_text)

    @property
    def output_tokens(self) -> int:
        """Token estimate of the streamed visible output, item by item (the whole output items when nothing
        was streamed); reasoning is not visible output (see :attr:`reasoning_tokens`)."""
        if self.delta_text:
            texts: dict[int, list[str]] = {}
            for index, text in zip(self.delta_index, self.delta_text, strict=True):
                texts.setdefault(index, []).append(text)
            return sum(estimate_tokens("".join(parts)) for parts in texts.values())
        return sum(estimate_tokens(_item_text(item)) for item in self.output if item.get("type") != "reasoning")

    @property
    def reasoning_tokens(self) -> int:
        """``usage.output_tokens_details.reasoning_tokens`` of the final response (0 when absent)."""
        usage = self.response.get("usage") if self.response else None
        details = usage.get("output_tokens_details") if isinstance(usage, dict) else None
        n = details.get("reasoning_tokens") if isinstance(details, dict) else None
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        """The response's ``function_call`` items, in output order (several: parallel tool calls)."""
        return [item for item in self.output if item.get("type") == "function_call"]

    @property
    def incomplete_reason(self) -> str | None:
        """``incomplete_details.reason`` of an incomplete response (``max_output_tokens``, ``steered``, ...)."""
        details = self.response.get("incomplete_details") if self.response else None
        reason = details.get("reason") if isinstance(details, dict) else None
        return reason if isinstance(reason, str) else None

    @property
    def queued(self) -> bool:
        return self.t_queued is not None

    @property
    def steer_outcome(self) -> str | None:
        """What became of this exchange's steering: ``accepted``, ``pending``, ``failed`` (the last
        ``response.steer.*`` event about this response), ``unanswered`` (sent, no answer) or ``None`` (none
        sent)."""
        if self.t_steer_sent is None:
            return None
        rid = self.response_id
        for event in reversed(self.steer_events):
            steer = event.get("steer")
            target = steer.get("previous_response_id") if isinstance(steer, dict) else None
            # An answer about another response (a late one for an earlier steer) says nothing of this one.
            if target is None or rid is None or target == rid:
                return str(event.get("type", "")).removeprefix("response.steer.")
        return "unanswered"

    @property
    def steered(self) -> bool:
        """The response ended at a steering boundary: a successor follows on its own (WebSocket mode)."""
        return self.status == "incomplete" and self.incomplete_reason == "steered"

    def summary(self) -> dict[str, Any]:
        """The exchange in plain data (no events): status, ids, sizes, the times that matter."""
        return {
            "status": self.status,
            "response_id": self.response_id,
            "error_code": self.error_code,
            "http_status": self.http_status,
            "chained": self.chained,
            "queued": self.queued,
            "request_tokens": self.request_tokens,
            "request_bytes": self.request_bytes,
            "received_bytes": self.received_bytes,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "function_calls": len(self.function_calls),
            "ttft_s": self.ttft_s,
            "latency_s": self.latency_s,
            "events": len(self.events),
        }

    def inter_token_gaps(self) -> np.ndarray:
        """Seconds between consecutive output deltas."""
        return np.diff(np.asarray(self.delta_t, dtype=float))

    # -- spans -----------------------------------------------------------------------------------------

    def add_spans(
        self,
        cols: SpanColumns,
        *,
        t0: float,
        source: str,
        scenario: str,
        rollout: int,
        turn: int,
        attempt: int,
    ) -> None:
        """Append this exchange's coarse live spans, times relative to ``t0``."""

        def add(stage: str, a: float, b: float, tokens: int = 0, nbytes: int = 0, hit: bool = False) -> None:
            cols.add(source, scenario, rollout, turn, stage, a - t0, max(a, b) - t0, tokens, nbytes, hit, attempt)

        reused = self.t_connected is None
        add("connect", self.t_start, self.request_start, 0, 0, reused)
        start = self.request_start
        if self.t_queued is not None:
            # Held behind another response of its lane: the wait is the server's queue, not this request's work.
            left = self.t_dequeued if self.t_dequeued is not None else self.t_end
            add("queue", start, left)
            start = max(start, left)
        first_visible = self.delta_t[0] if self.delta_t else self.t_end
        r0 = self.t_reasoning_start
        reasoning = self.ok and r0 is not None and start <= r0 <= first_visible
        add("request", start, r0 if reasoning and r0 is not None else first_visible, self.request_tokens,
            self.request_bytes, self.chained)  # fmt: skip
        if not self.ok:
            return
        if reasoning and r0 is not None:
            # Up to the first visible delta: the next item's opening events belong to no other stage.
            add("reasoning", r0, first_visible, self.reasoning_tokens)
        elif self.reasoning_tokens:
            # Reasoning happened but the stream showed no item (a JSON answer): its tokens, at the first output.
            add("reasoning", first_visible, first_visible, self.reasoning_tokens)
        if self.delta_t:
            nbytes = sum(len(s.encode()) for s in self.delta_text)
            add("decode", self.delta_t[0], self.delta_t[-1], max(0, self.output_tokens - 1), nbytes)
            add("complete", self.delta_t[-1], self.t_end)
        else:
            # Nothing streamed (a JSON answer, or a generate=false warm-up): all output arrived at the end.
            add("decode", self.t_end, self.t_end, max(0, self.output_tokens - 1))
            add("complete", self.t_end, self.t_end)

    def event_rows(self) -> dict[str, list[Any]]:
        """The raw event timestamps as columns ``seq, type, t``."""
        return {
            "seq": list(range(len(self.events))),
            "type": [e[1] for e in self.events],
            "t": [e[0] for e in self.events],
        }


def _item_text(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind in ("function_call", "custom_tool_call"):
        args = item.get("arguments" if kind == "function_call" else "input")
        return args if isinstance(args, str) else ""
    parts = item.get("content")
    if isinstance(parts, list):
        return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def events_frame(exchanges: list[tuple[dict[str, Any], Exchange]], t0: float) -> pd.DataFrame:
    """A DataFrame of raw event timestamps: key columns, then ``seq, type, t_s`` (relative to ``t0``)."""
    cols: dict[str, list[Any]] = {"seq": [], "type": [], "t_s": []}
    keys: dict[str, list[Any]] = {}
    for key, ex in exchanges:
        n = len(ex.events)
        for k, v in key.items():
            keys.setdefault(k, []).extend([v] * n)
        cols["seq"].extend(range(n))
        cols["type"].extend(e[1] for e in ex.events)
        cols["t_s"].extend(e[0] - t0 for e in ex.events)
    if not keys:
        keys = {k: [] for k in ("rollout", "turn", "attempt")}
    return pd.DataFrame({**keys, **cols})


def dumps(obj: Any) -> str:
    """Compact JSON, as SDKs send it (fewer bytes on the wire than the default separators)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def request_input_tokens(body: dict[str, Any]) -> int:
    """Token estimate of what a request carries: its instructions and input items (the server's count)."""
    items = body.get("input")
    if isinstance(items, str):
        items = [user_message(items)]
    if not isinstance(items, list):
        return 0
    instructions = body.get("instructions")
    return input_tokens(
        [i for i in items if isinstance(i, dict)], instructions if isinstance(instructions, str) else None
    )
