"""A recorded session against a Responses API: every request and event with its time, and its spans.

``labkit record`` (:mod:`labkit.live.proxy`) writes a directory; ``labkit serve --replay DIR``
(:mod:`labkit.live.server.replay`) answers from it; ``labkit replay DIR`` and ``labkit fit DIR`` read its spans:

- ``recording.ndjson``: a header line (``{"labkit_recording": 1, ...}``), then one :class:`Exchange` per line: a
  request (a WebSocket ``response.create``, an HTTP body, or a bare ``GET``) and what came back (events with their
  times, or one JSON body), times in seconds since the recording began. No header of any request is kept, so the
  API key never reaches the disk. (The suffix keeps trace loaders, which read ``.jsonl``, off this file.)
- ``spans.csv``: labkit's live spans (:mod:`labkit.model.spans`, ``source=api``), one rollout per conversation
  (a chain of ``previous_response_id``, or a full history), computed by :class:`labkit.live.client.record.Exchange`
  from the recorded event times, with the client's time between a response and the next request as ``tool``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from labkit.live.client.record import Exchange as ClientExchange
from labkit.live.client.record import request_input_tokens
from labkit.model.spans import SpanColumns
from labkit.wire.events import server_event
from labkit.wire.protocol import conversation_split

RECORDING_FILE = "recording.ndjson"
SPANS_FILE = "spans.csv"
FORMAT_VERSION = 1
#: Request fields that do not change what the model is asked (left out when matching a replayed request).
_UNMATCHED_FIELDS = frozenset({"type", "stream", "stream_id", "event_id", "background"})

Transport = Literal["websocket", "http"]

__all__ = ["Event", "Exchange", "Recording", "RecordingError", "match_key", "write_spans"]


class RecordingError(ValueError):
    """A recording directory or line that cannot be read (names the file and line)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One server event as it arrived: seconds since the recording began, and the event."""

    t: float
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "data": self.data}


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer as the proxy saw them."""

    seq: int
    transport: Transport
    method: str
    #: Below the API root, e.g. ``/responses`` or ``/responses/resp_1/input_items`` (query included).
    path: str
    t_sent: float
    t_end: float
    #: The request body (a WebSocket ``response.create`` without headers); ``None`` for a body-less request.
    request: dict[str, Any] | None
    status: int = 200
    #: Streamed events (SSE or WebSocket), in order.
    events: tuple[Event, ...] = ()
    #: A JSON answer (non-streaming HTTP).
    body: Any = None
    #: The WebSocket connection it used (numbered in the order they opened); ``None`` over HTTP.
    connection: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "transport": self.transport,
            "method": self.method,
            "path": self.path,
            "connection": self.connection,
            "t_sent": round(self.t_sent, 6),
            "t_end": round(self.t_end, 6),
            "status": self.status,
            "request": self.request,
            "events": [e.to_dict() for e in self.events],
            "body": self.body,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Exchange:
        return cls(
            seq=int(obj["seq"]),
            transport=obj["transport"],
            method=str(obj["method"]),
            path=str(obj["path"]),
            t_sent=float(obj["t_sent"]),
            t_end=float(obj["t_end"]),
            request=obj.get("request"),
            status=int(obj.get("status", 200)),
            events=tuple(Event(float(e["t"]), dict(e["data"])) for e in obj.get("events") or ()),
            body=obj.get("body"),
            connection=obj.get("connection"),
        )

    @property
    def is_create(self) -> bool:
        return self.method == "POST" and self.path.split("?")[0] == "/responses" and self.request is not None

    @property
    def response(self) -> dict[str, Any] | None:
        """The final response object: the terminal event's, or the JSON body."""
        for e in reversed(self.events):
            if isinstance(e.data.get("response"), dict):
                return dict(e.data["response"])
        return self.body if isinstance(self.body, dict) and self.body.get("object") == "response" else None


def match_key(method: str, path: str, request: Mapping[str, Any] | None) -> str:
    """What a replayed request must equal: method, path and the body without its transport-only fields."""
    body = None if request is None else {k: v for k, v in request.items() if k not in _UNMATCHED_FIELDS}
    return json.dumps([method, path.split("?")[0], body], sort_keys=True, separators=(",", ":"))


@dataclass(slots=True)
class Recording:
    """A recording directory's exchanges, in the order their requests were sent."""

    exchanges: list[Exchange] = field(default_factory=list)
    upstream: str = ""

    @classmethod
    def read(cls, directory: str | Path) -> Recording:
        path = Path(directory) / RECORDING_FILE
        if not path.is_file():
            raise RecordingError(f"{directory}: no {RECORDING_FILE} (not a directory written by 'labkit record')")
        rec = cls()
        for n, obj in _lines(path):
            if "labkit_recording" in obj:
                rec.upstream = str(obj.get("upstream", ""))
                continue
            try:
                rec.exchanges.append(Exchange.from_dict(obj))
            except (KeyError, TypeError, ValueError) as exc:
                raise RecordingError(f"{path}:{n}: not a recorded exchange ({exc})") from None
        rec.exchanges.sort(key=lambda e: e.t_sent)
        return rec


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for n, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RecordingError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise RecordingError(f"{path}:{n}: expected a JSON object")
            yield n, obj


def header(upstream: str) -> dict[str, Any]:
    return {"labkit_recording": FORMAT_VERSION, "upstream": upstream}


# -- spans ----------------------------------------------------------------------------------------------------


def _client_exchange(ex: Exchange, new_connection: bool) -> ClientExchange:
    """The recorded exchange replayed into the clients' record, which derives the live spans."""
    rec = ClientExchange(t_start=ex.t_sent, t_connected=ex.t_sent if new_connection else None, t_sent=ex.t_sent)
    request = ex.request or {}
    rec.request_bytes = len(json.dumps(request, separators=(",", ":")).encode())
    rec.request_tokens = request_input_tokens(dict(request))
    rec.chained = isinstance(request.get("previous_response_id"), str)
    for e in ex.events:
        if rec.on_event(e.t, server_event(e.data)):
            break
    if rec.status == "pending":
        if ex.status < 400 and isinstance(ex.body, dict):
            rec.finish(ex.t_end, ex.body, str(ex.body.get("status", "completed")))
        else:
            rec.fail(ex.t_end, "failed", "http_error", f"HTTP {ex.status}", ex.status)
    return rec


def _rollouts(creates: Iterable[Exchange]) -> Iterator[tuple[int, int, Exchange]]:
    """``(rollout, turn, exchange)``: a chain of ``previous_response_id``, or a full history, is one rollout."""
    by_response: dict[str, tuple[int, int]] = {}
    by_first_item: dict[str, int] = {}
    n_rollouts = 0
    for ex in creates:
        request = ex.request or {}
        prev = request.get("previous_response_id")
        items = request.get("input")
        items = [{"type": "message", "role": "user", "content": items}] if isinstance(items, str) else items or []
        items = [i for i in items if isinstance(i, dict)]
        if isinstance(prev, str) and prev in by_response:
            rollout, turn = by_response[prev][0], by_response[prev][1] + 1
        else:
            first = json.dumps(items[:1], sort_keys=True)
            turns_in = conversation_split(items)[0]
            if turns_in and first in by_first_item:
                rollout = by_first_item[first]
            else:
                rollout, n_rollouts = n_rollouts, n_rollouts + 1
                by_first_item[first] = rollout
            turn = turns_in
        rid = (ex.response or {}).get("id")
        if isinstance(rid, str):
            by_response[rid] = (rollout, turn)
        yield rollout, turn, ex


def write_spans(recording: Recording, path: str | Path, scenario: str = "recording") -> int:
    """Write the recording's live spans (labkit's spans CSV) to ``path``; returns the number of rows."""
    cols = SpanColumns()
    seen_connections: set[int | None] = set()
    last_end: dict[int, float] = {}
    for rollout, turn, ex in _rollouts(e for e in recording.exchanges if e.is_create):
        fresh = ex.transport == "http" or ex.connection not in seen_connections
        seen_connections.add(ex.connection)
        rec = _client_exchange(ex, fresh)
        if rollout in last_end and turn > 0:
            t_prev = last_end[rollout]
            cols.add("api", scenario, rollout, turn - 1, "tool", t_prev, max(t_prev, ex.t_sent))
        rec.add_spans(cols, t0=0.0, source="api", scenario=scenario, rollout=rollout, turn=turn, attempt=0)
        last_end[rollout] = rec.t_end
    frame = cols.frame().sort_values(["rollout", "turn", "start_s"], kind="stable")
    frame.to_csv(path, index=False)
    return len(frame)
