"""WebSocket mode's rules for one connection as a pure state machine (sans-I/O, in the manner of h11's
``Connection`` and python-websockets' ``protocol.py``).

A :class:`WebSocketSession` is fed what happens — a client message and the time it arrived
(:meth:`~WebSocketSession.receive`), the engine's word on a create it was told to start (:meth:`~WebSocketSession.
rejected`, :meth:`~WebSocketSession.finished`, :meth:`~WebSocketSession.crashed`, :meth:`~WebSocketSession.ended`),
the connection's lifetime running out (:meth:`~WebSocketSession.expire`) — and answers with :data:`Action` values:
server events to send and work to start, in the order they must happen. It never reads a clock, touches a
socket or awaits: the edge (:mod:`labkit.live.server.connection`, or the in-memory transport of
:mod:`labkit.live.client.memory`) performs the actions.

The rules, as the WebSocket-mode guide documents them (``docs/guides/wire.md``):

- **Lanes** (``stream_id``; ``None`` is the default lane): each runs its creates FIFO without overlap; lanes
  interleave. At most ``max_lanes`` named lanes (``websocket_stream_limit_reached``).
- **The active limit**: at most ``max_active`` responses run at once; a create that has to wait (behind its
  lane or the limit) gets ``response.queued`` at once and ``response.created`` when it starts. Lanes waiting on
  the limit start in the order they began waiting.
- **Steering** (``response.steer``): accepted while the target runs on this connection (at most
  :data:`MAX_STEERS_PER_RESPONSE`), else ``response.steer.failed``; after the steered response, its successor
  runs next on the same lane (before creates queued behind it), or the steering waits for the tool outputs the
  response is owed (``response.steer.pending``), or fails with it.
- **Eviction**: a malformed continuation evicts its parent from its lane (:class:`Evict`), as any failed
  continuation does (the engine evicts those it rejects itself).
- **Queue bounds**: at most ``max_queued_per_lane`` creates wait on one lane and ``max_queued`` on the whole
  connection (each keeps its input); a create past either gets an ``error`` event
  (``websocket_queue_limit_reached``, status 429, labkit's code: the API names none) and the connection goes on.
- **Lifetime**: after ``lifetime_s`` the connection ends with ``websocket_connection_limit_reached``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from labkit.wire.events import ServerEvent
from labkit.wire.protocol import (
    CreateRequest,
    ProtocolError,
    ResponseEvents,
    SteerError,
    SteerRequest,
    internal_error,
    parse_client_event,
    steer_failed,
)
from labkit.wire.response import Clock, IdSource

#: Steering submissions one response accepts before ``too_many_pending_steers``.
MAX_STEERS_PER_RESPONSE = 8
#: Responses of a connection remembered after they end (steering a finished one answers
#: ``response_already_completed`` instead of ``response_not_found``).
FINISHED_REMEMBERED = 256
#: Creates that may wait (queued, not yet started) on one lane, and on one connection in all.
MAX_QUEUED_PER_LANE = 64
MAX_QUEUED = 256


@dataclass(slots=True, eq=False)
class Work:
    """One create on its lane: its response id is allocated on arrival (``response.queued`` names it)."""

    request: CreateRequest
    #: When it arrived (the edge's clock).
    t_recv: float
    events: ResponseEvents
    #: ``response.queued`` went out: the create waited behind its lane or the active limit.
    queued: bool = False
    #: When it left the queue: its clock starts here if it waited, else at its arrival.
    t0: float = math.nan
    #: Accepted steering: (steer id, the steer), in submission order.
    steers: list[tuple[str, SteerRequest]] = field(default_factory=list)

    @property
    def lane(self) -> str | None:
        return self.events.stream_id

    @property
    def response_id(self) -> str:
        return self.events.id


@dataclass(frozen=True, slots=True)
class Send:
    """Send this server event now."""

    event: ServerEvent


@dataclass(frozen=True, slots=True)
class Start:
    """Start running this create now (the engine resolves, plans and streams it), from ``work.t0``."""

    work: Work


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Steering was accepted: stop the running response's decoding at its next wake-up."""

    work: Work


@dataclass(frozen=True, slots=True)
class Evict:
    """Evict ``response_id`` from lane ``lane`` of the connection's cache (a malformed continuation)."""

    lane: str | None
    response_id: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop every running create now; nothing more is sent for them."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection with ``code`` and ``reason`` (after the events before this action went out)."""

    code: int
    reason: str


Action = Send | Start | Interrupt | Evict | Cancel | Close


class _Lane:
    __slots__ = ("queue", "running")

    def __init__(self) -> None:
        self.queue: deque[Work] = deque()
        self.running: Work | None = None


class WebSocketSession:
    """One WebSocket-mode connection's state: lanes, queueing, the active limit, steering, lifetime."""

    def __init__(
        self,
        *,
        opened_at: float,
        ids: IdSource,
        wall_clock: Clock,
        max_active: int = 16,
        max_lanes: int = 32,
        max_message_bytes: int | None = None,
        lifetime_s: float = 3600.0,
        max_queued_per_lane: int = MAX_QUEUED_PER_LANE,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.ids = ids
        self.wall_clock = wall_clock
        self.max_active = max_active
        self.max_lanes = max_lanes
        self.max_message_bytes = max_message_bytes
        self.lifetime_s = lifetime_s
        self.max_queued_per_lane = max_queued_per_lane
        self.max_queued = max_queued
        #: Creates waiting in all lanes' queues (not started yet).
        self.queued_count = 0
        #: When the connection's lifetime runs out (the edge's clock); ``inf`` without a limit.
        self.expires_at = opened_at + lifetime_s
        self.lanes: dict[str | None, _Lane] = {}
        #: Lanes whose head waits for the active limit, in the order they began waiting.
        self._ready: deque[_Lane] = deque()
        self.active = 0
        #: Responses running now, by id, and the latest finished ones (steering looks here).
        self.inflight: dict[str, Work] = {}
        self.finished_ids: deque[str] = deque(maxlen=FINISHED_REMEMBERED)
        #: Accepted steering waiting for a tool output: parent id -> its input items, in submission order.
        self.pending_steers: dict[str, list[dict[str, Any]]] = {}
        self.closing = False

    # -- client messages ----------------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> list[Action]:
        """One client message (a text or binary frame's payload) that arrived at ``now``."""
        if self.closing:
            return []
        try:
            message = parse_client_event(data, max_bytes=self.max_message_bytes)
        except SteerError as exc:
            return [Send(self._steer_rejected(exc))]
        except ProtocolError as exc:
            # A rejected continuation evicts its parent from its lane, as any failed continuation does.
            evict: list[Action] = []
            if exc.previous_response_id is not None:
                evict.append(Evict(exc.stream_id, exc.previous_response_id))
            return [*evict, Send(exc.event())]
        if isinstance(message, SteerRequest):
            return self._steer(message)
        return self._create(message, now)

    def _create(self, request: CreateRequest, now: float) -> list[Action]:
        key = request.stream_id
        lane = self.lanes.get(key)
        if lane is None:
            named = sum(1 for k in self.lanes if k is not None)
            if key is not None and named >= self.max_lanes:
                exc = ProtocolError(
                    "websocket_stream_limit_reached",
                    f"stream_id: this connection already has {named} lanes (the limit)",
                    "stream_id",
                )
                return [Send(exc.event(stream_id=key))]
        full = self._queue_full(lane, key)
        if full is not None:
            return [Send(full.event(stream_id=key))]
        if lane is None:
            lane = self.lanes[key] = _Lane()
        work = Work(request, now, self._events(request, key))
        actions: list[Action] = []
        if lane.running is not None or lane.queue or self.active >= self.max_active:
            actions.append(self._queued(work))
        lane.queue.append(work)
        self.queued_count += 1
        if lane.running is None and len(lane.queue) == 1:
            self._ready.append(lane)
        actions += self._pump(now)
        return actions

    def _queue_full(self, lane: _Lane | None, key: str | None) -> ProtocolError | None:
        """The error for a create that would have to wait and would overfill its lane's queue or the
        connection's, else ``None``.

        Each waiting create keeps its whole input, so without these bounds one connection could pin memory
        at will. A create that would start at once is never refused: the bounds count waiting creates.
        """
        waiting_here = len(lane.queue) if lane is not None else 0
        busy = lane is not None and (lane.running is not None or waiting_here > 0)
        if not busy and self.active < self.max_active:
            return None
        if waiting_here >= self.max_queued_per_lane:
            where, count, param = "this lane", waiting_here, "stream_id" if key is not None else None
        elif self.queued_count >= self.max_queued:
            where, count, param = "this connection", self.queued_count, None
        else:
            return None
        message = (
            f"{count} requests already wait on {where} (the limit); wait for a response to end before sending more"
        )
        return ProtocolError("websocket_queue_limit_reached", message, param, status=429)

    def _events(self, request: CreateRequest, lane: str | None) -> ResponseEvents:
        return ResponseEvents(request, ids=self.ids, clock=self.wall_clock, stream_id=lane)

    @staticmethod
    def _queued(work: Work) -> Send:
        work.queued = True
        return Send(work.events.queued())

    def _pump(self, now: float) -> list[Action]:
        """Start the heads of waiting lanes while the active limit allows, in the order they began waiting."""
        actions: list[Action] = []
        while self._ready and self.active < self.max_active and not self.closing:
            lane = self._ready.popleft()
            work = lane.queue.popleft()
            self.queued_count -= 1
            lane.running = work
            self.active += 1
            actions += self._start(work, now)
        return actions

    def _start(self, work: Work, now: float) -> list[Action]:
        # A create that waited (behind its lane or the active limit) starts its clock when it leaves the
        # queue; otherwise at its arrival.
        work.t0 = now if work.queued else work.t_recv
        steering = self.pending_steers.pop(work.request.previous_response_id or "", None)
        if steering:
            # Queued steering input is prepended, in submission order, to the explicit continuation's input.
            work.request = work.request._replace(input=(*steering, *work.request.input))
            work.events.request = work.request
        self.inflight[work.response_id] = work
        return [Start(work)]

    # -- the engine's word on a started create ------------------------------------------------------

    def rejected(self, work: Work, exc: ProtocolError, now: float) -> list[Action]:
        """The engine refused the create before it started (an ``error`` event; the lane moves on)."""
        self.inflight.pop(work.response_id, None)
        return [Send(exc.event(stream_id=work.request.stream_id)), *self._release(work, now)]

    def finished(self, work: Work, now: float, *, owes_tool_output: bool = False) -> list[Action]:
        """The create's response ended (its terminal event went out). ``owes_tool_output``: it stopped for
        client-owned tool output (steering then waits for the next create)."""
        self._forget(work)
        actions, successor = self._after_steering(work, now, owes_tool_output)
        return actions + self._release(work, now, successor)

    def crashed(self, work: Work, now: float, *, started: bool) -> list[Action]:
        """A bug cost this create (not the connection): a started response ends ``response.failed`` as the API
        ends one that fails mid-stream; one that never started gets an ``error`` event."""
        self._forget(work)
        ev = work.events
        if started and not ev.terminal:
            event: ServerEvent = ev.failed("server_error", "The server had an internal error.")
        else:
            event = internal_error().event(stream_id=work.request.stream_id)
        return [Send(event), *self._release(work, now)]

    def ended(self, work: Work, now: float) -> list[Action]:
        """The create stopped without an answer due (the client went away mid-stream)."""
        self._forget(work)
        return self._release(work, now)

    def dropped(self, work: Work) -> None:
        """The connection was cut while ``work`` ran (an injected network failure): nothing more starts."""
        self._forget(work)
        self.closing = True

    def _forget(self, work: Work) -> None:
        self.inflight.pop(work.response_id, None)
        self.finished_ids.append(work.response_id)

    def _release(self, work: Work, now: float, successor: Work | None = None) -> list[Action]:
        """``work`` no longer runs: its lane and its slot of the active limit go to the next in line."""
        lane = self.lanes[work.request.stream_id]
        actions: list[Action] = []
        if lane.running is work:
            lane.running = None
            self.active -= 1
            if successor is not None:
                # Steering's successor runs next on the same lane, before the creates queued behind it.
                lane.queue.appendleft(successor)
                self.queued_count += 1
            if lane.queue:
                self._ready.append(lane)
                if successor is not None and self._ready[0] is not lane:
                    # Other lanes were waiting for the active limit: they go first, the successor waits.
                    actions.append(self._queued(successor))
        return actions + self._pump(now)

    # -- steering -----------------------------------------------------------------------------------

    def _steer(self, steer: SteerRequest) -> list[Action]:
        """``response.steer``: accepted while the target runs on this connection, else ``.failed``."""
        target = steer.previous_response_id
        work = self.inflight.get(target)
        if work is None or work.events.terminal:
            if target in self.finished_ids:
                code, message = (
                    "response_already_completed",
                    "The response completed and is no longer accepting steering input.",
                )
            else:
                code, message = "response_not_found", "The target response is not available on this connection."
            return [Send(steer_failed(code, message, target, steer.raw_input, stream_id=None))]
        ev = work.events
        if len(work.steers) >= MAX_STEERS_PER_RESPONSE:
            event = steer_failed(
                "too_many_pending_steers",
                f"At most {MAX_STEERS_PER_RESPONSE} steering submissions may be pending for a response.",
                target,
                steer.raw_input,
                stream_id=ev.stream_id,
                sequence_number=ev.sequence_number,
            )
            return [Send(event)]
        steer_id = self.ids("steer")
        work.steers.append((steer_id, steer))
        return [Send(ev.steer_accepted(steer_id)), Interrupt(work)]

    def _after_steering(self, work: Work, now: float, owes_tool_output: bool) -> tuple[list[Action], Work | None]:
        """After a steered response: its successor (to run next on its lane), or ``.pending`` / ``.failed``."""
        if not work.steers:
            return [], None
        ev = work.events
        if ev.status == "failed":
            failed: list[Action] = [
                Send(
                    steer_failed(
                        "successor_creation_failed",
                        "The steered response failed; its successor could not be created.",
                        ev.id,
                        steer.raw_input,
                        steer_id=steer_id,
                        stream_id=ev.stream_id,
                        sequence_number=ev.sequence_number,
                    )
                )
                for steer_id, steer in work.steers
            ]
            return failed, None
        items = [item for _, steer in work.steers for item in steer.input]
        if owes_tool_output:
            # The response stopped for client-owned tool output: the steering waits for the next create.
            self.pending_steers[ev.id] = items
            required = ev.required_input()
            return [Send(ev.steer_pending(steer_id, required)) for steer_id, _ in work.steers], None
        # The successor inherits the response's settings and continues from it with the steering input.
        request = work.request._replace(input=tuple(items), previous_response_id=ev.id, generate=True)
        return [], Work(request, now, self._events(request, work.lane))

    def _steer_rejected(self, exc: SteerError) -> ServerEvent:
        if exc.previous_response_id is None:
            return exc.event()
        target = self.inflight.get(exc.previous_response_id)
        return steer_failed(
            "invalid_input",
            exc.message,
            exc.previous_response_id,
            exc.raw_input,
            stream_id=target.events.stream_id if target is not None else None,
        )

    # -- lifetime -----------------------------------------------------------------------------------

    def expire(self, now: float) -> list[Action]:
        """The connection reached its lifetime (``now >= expires_at``): it ends with
        ``websocket_connection_limit_reached``; running creates stop, queued ones never start."""
        if self.closing or now < self.expires_at:
            return []
        self.closing = True
        exc = ProtocolError(
            "websocket_connection_limit_reached",
            f"connection: reached its lifetime limit of {self.lifetime_s:g} s; open a new connection to continue",
            None,
        )
        return [Cancel(), Send(exc.event()), Close(1000, "connection lifetime limit reached")]
