"""One WebSocket-mode connection: its lanes (FIFO, ``response.queued``), its cache, its steering, its lifetime.

The server (:mod:`labkit.live.server.app`) accepts the upgrade and hands the socket here; every decision about
a request is the engine's (:mod:`labkit.live.server.engine`); this module orders requests on their lanes,
frames events and handles ``response.steer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import struct
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from labkit.live.server.engine import LaneCache, Turn, TurnFailed
from labkit.live.server.faults import DropConnection, EventCounter
from labkit.live.server.ids import new_id, wall_clock
from labkit.wire.protocol import (
    CreateRequest,
    ProtocolError,
    ResponseEvents,
    ServerEvent,
    SteerError,
    SteerRequest,
    parse_client_event,
    steer_failed,
    ws_frame,
)

if TYPE_CHECKING:
    from labkit.live.server.app import SimServer

log = logging.getLogger("labkit.live.server")


@dataclass(slots=True)
class _Pending:
    """A create waiting on its lane: its response id is allocated on arrival (``response.queued`` names it)."""

    request: CreateRequest
    t_recv: float
    events: ResponseEvents
    #: ``response.queued`` went out: the create waited behind its lane or the active limit.
    queued: bool = False


class _Lane:
    __slots__ = ("busy", "queue", "task")

    def __init__(self) -> None:
        self.queue: deque[_Pending] = deque()
        self.task: asyncio.Task[None] | None = None
        self.busy = False


def _text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final WebSocket text frame (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


#: Steering submissions one response accepts before ``too_many_pending_steers``.
MAX_STEERS_PER_RESPONSE = 8


class Connection:
    """One WebSocket-mode connection: its lanes, its cache, its steering, its lifetime.

    Lanes as the WebSocket-mode guide documents them: each lane (the default one included) runs its creates
    FIFO without overlap, lanes interleave; a create that has to wait (behind its lane or the connection's
    active limit) gets ``response.queued`` at once and ``response.created`` when it starts.
    """

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server = server
        self.engine = server.engine
        self.ws = ws
        self.request = request
        self.cache = LaneCache(server.engine.cache_budget)
        self.lanes: dict[str | None, _Lane] = {}
        self.active = asyncio.Semaphore(server.max_active_responses)
        self.replica = server.engine.replicas.route(f"ws{id(self)}") if server.engine.replicas.count > 1 else 0
        self.counter = EventCounter()
        #: Responses of this connection running now, and the latest finished ones (steering looks here).
        self.inflight: dict[str, Turn] = {}
        self.finished: deque[str] = deque(maxlen=256)
        #: Accepted steering waiting for a tool output: parent id -> its input items, in submission order.
        self.pending_steers: dict[str, list[dict[str, Any]]] = {}
        self.closing = False
        self._expiry: asyncio.TimerHandle | None = None
        self._expire_task: asyncio.Task[None] | None = None
        # aiohttp's frame writer, when it is the one this module knows (uncompressed, unmasked, with its
        # flow-control fields): :meth:`emit` writes a batch of frames through its transport in one call.
        writer = getattr(ws, "_writer", None)
        known = all(hasattr(writer, a) for a in ("transport", "protocol", "_output_size", "_limit", "_closing"))
        self._batch_writer: Any = (
            writer if known and not getattr(writer, "compress", 1) and not getattr(writer, "use_mask", True) else None
        )

    async def emit(self, events: list[ServerEvent]) -> None:
        if len(events) > 1 and self._batch_writer is not None:
            await self._write_batch(events)
            return
        send = self.ws.send_str
        for event in events:
            await send(ws_frame(event))

    async def _write_batch(self, events: list[ServerEvent]) -> None:
        """Events due together (an item opening with its first delta, the last delta with the item's
        ``.done`` events) as back-to-back frames in one socket write: the same bytes, one system call
        instead of one per event; under many paced streams those calls were most of the server's CPU.
        The frames are what aiohttp writes for an uncompressed server text frame (FIN, no mask)."""
        writer = self._batch_writer
        assert writer is not None
        transport = writer.transport
        if self.ws.closed or writer._closing or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        data = b"".join([_text_frame(ws_frame(event).encode()) for event in events])
        transport.write(data)
        # aiohttp's own flow control: past its limit, wait while the transport is paused.
        writer._output_size += len(data)
        if writer._output_size > writer._limit:
            writer._output_size = 0
            if writer.protocol._paused:
                await writer.protocol._drain_helper()

    async def send_event(self, event: ServerEvent) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.engine.metrics["events_sent"] += 1
                await self.ws.send_str(ws_frame(event))

    async def send_error(self, exc: ProtocolError, stream_id: str | None = None) -> None:
        self.engine.metrics["errors"] += 1
        await self.send_event(exc.event(stream_id=stream_id))

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        lifetime = self.server.connection_lifetime_s
        if math.isfinite(lifetime):
            self._expiry = loop.call_later(lifetime, self._expire)
        try:
            async for msg in self.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.on_message(msg.data, loop.time())
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            await self.shutdown()

    async def on_message(self, data: str | bytes, t_recv: float) -> None:
        if self.closing:
            return
        try:
            request = parse_client_event(data, max_bytes=self.server.max_message_bytes)
        except SteerError as exc:
            await self._steer_rejected(exc)
            return
        except ProtocolError as exc:
            # A rejected continuation evicts its parent from its lane, as any failed continuation does.
            self.engine.evict_failed_continuation(self.cache, exc.stream_id, exc.previous_response_id)
            await self.send_error(exc)
            return
        if isinstance(request, SteerRequest):
            await self.on_steer(request)
            return
        key = request.stream_id
        lane = self.lanes.get(key)
        if lane is None:
            named = sum(1 for k in self.lanes if k is not None)
            if key is not None and named >= self.server.max_lanes:
                await self.send_error(
                    ProtocolError(
                        "websocket_stream_limit_reached",
                        f"stream_id: this connection already has {named} lanes (the limit)",
                        "stream_id",
                    ),
                    stream_id=key,
                )
                return
            lane = self.lanes[key] = _Lane()
        pending = _Pending(request, t_recv, ResponseEvents(request, ids=new_id, clock=wall_clock, stream_id=key))
        if lane.busy or lane.queue or self.active.locked():
            await self._queued(pending)
        lane.queue.append(pending)
        if lane.task is None or lane.task.done():
            lane.task = asyncio.create_task(self._drain(lane))

    async def _queued(self, pending: _Pending) -> None:
        if not pending.queued:
            pending.queued = True
            await self.send_event(pending.events.queued())

    async def _drain(self, lane: _Lane) -> None:
        loop = asyncio.get_running_loop()
        while lane.queue and not self.closing:
            pending = lane.queue.popleft()
            lane.busy = True
            try:
                if self.active.locked():
                    await self._queued(pending)
                async with self.active:
                    # A create that waited (behind its lane or the active limit) starts its clock when it
                    # leaves the queue; otherwise at its arrival.
                    t0 = loop.time() if pending.queued else pending.t_recv
                    successor = await self._run(pending, t0)
                if successor is not None:
                    # Steering's successor runs next on the same lane, before creates queued behind it.
                    lane.queue.appendleft(successor)
            finally:
                lane.busy = False

    async def _run(self, pending: _Pending, t0: float) -> _Pending | None:
        engine = self.engine
        request = pending.request
        steering = self.pending_steers.pop(request.previous_response_id or "", None)
        if steering:
            # Queued steering input is prepended, in submission order, to the explicit continuation's input.
            request = dataclasses.replace(request, input=(*steering, *request.input))
            pending.events.request = request
        try:
            turn = engine.prepare(
                request,
                transport="websocket",
                t0=t0,
                conn_cache=self.cache,
                conn_replica=self.replica,
                events=pending.events,
                counter=self.counter,
            )
        except ProtocolError as exc:
            await self.send_error(exc, stream_id=request.stream_id)
            return None
        ev = turn.events
        self.inflight[ev.id] = turn
        try:
            await engine.run(turn, self.emit)
        except TurnFailed:
            pass  # response.failed already went out; the parent is evicted.
        except DropConnection:
            self.abort()
            return None
        except (ConnectionError, RuntimeError) as exc:
            # The client went away mid-stream: nothing to tell it; the parent stays valid.
            log.debug("websocket send failed: %s", type(exc).__name__)
            return None
        except Exception:
            # A bug must cost one response, not the connection or the server. A started response ends as the
            # API ends one that fails mid-stream (response.failed); one that never started gets an error event.
            log.exception("labkit server: response failed")
            if turn.sent and not ev.terminal:
                await self.send_event(ev.failed("server_error", "The server had an internal error."))
            else:
                await self.send_error(
                    ProtocolError(
                        "server_error", "The server had an internal error.", None, status=500, type="server_error"
                    ),
                    stream_id=request.stream_id,
                )
            return None
        finally:
            self.inflight.pop(ev.id, None)
            self.finished.append(ev.id)
        return await self._after_steering(turn)

    # -- steering -----------------------------------------------------------------------------------

    async def on_steer(self, steer: SteerRequest) -> None:
        """``response.steer``: accepted while the target runs on this connection, else ``.failed``.

        Accepted steering stops the target's decoding at the next wake-up (the rest of the output is never
        decoded); :meth:`_after_steering` then starts the successor or reports ``.pending``.
        """
        turn = self.inflight.get(steer.previous_response_id)
        if turn is None or turn.events.terminal:
            done = steer.previous_response_id in self.finished
            code = "response_already_completed" if done else "response_not_found"
            message = (
                "The response completed and is no longer accepting steering input."
                if done
                else "The target response is not available on this connection."
            )
            await self.send_event(
                steer_failed(code, message, steer.previous_response_id, steer.raw_input, stream_id=None)
            )
            return
        ev = turn.events
        if len(turn.steers) >= MAX_STEERS_PER_RESPONSE:
            await self.send_event(
                steer_failed(
                    "too_many_pending_steers",
                    f"At most {MAX_STEERS_PER_RESPONSE} steering submissions may be pending for a response.",
                    steer.previous_response_id,
                    steer.raw_input,
                    stream_id=ev.stream_id,
                    sequence_number=ev.sequence_number,
                )
            )
            return
        steer_id = new_id("steer")
        turn.steers.append((steer_id, steer))
        self.engine.metrics["steers_accepted"] += 1
        await self.send_event(ev.steer_accepted(steer_id))
        if turn.pacer.steer():
            turn.wake()

    async def _after_steering(self, turn: Turn) -> _Pending | None:
        """After a steered response: its successor (returned, to run next), or ``.pending`` / ``.failed``."""
        if not turn.steers:
            return None
        ev = turn.events
        items = [item for _, steer in turn.steers for item in steer.input]
        if ev.status == "failed":
            for steer_id, steer in turn.steers:
                await self.send_event(
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
            return None
        if turn.record is not None and turn.record.call_ids:
            # The response stopped for client-owned tool output: the steering waits for the next create.
            required = ev.required_input()
            for steer_id, _ in turn.steers:
                await self.send_event(ev.steer_pending(steer_id, required))
            self.pending_steers[ev.id] = items
            return None
        # The successor inherits the response's settings and continues from it with the steering input.
        request = dataclasses.replace(turn.request, input=tuple(items), previous_response_id=ev.id, generate=True)
        loop = asyncio.get_running_loop()
        return _Pending(
            request, loop.time(), ResponseEvents(request, ids=new_id, clock=wall_clock, stream_id=turn.lane)
        )

    async def _steer_rejected(self, exc: SteerError) -> None:
        if exc.previous_response_id is None:
            await self.send_error(exc)
            return
        target = self.inflight.get(exc.previous_response_id)
        await self.send_event(
            steer_failed(
                "invalid_input",
                exc.message,
                exc.previous_response_id,
                exc.raw_input,
                stream_id=target.events.stream_id if target is not None else None,
            )
        )

    # -- lifetime -----------------------------------------------------------------------------------

    def abort(self) -> None:
        """Cut the connection without a close frame, as a network failure would."""
        self.closing = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    def _expire(self) -> None:
        self._expire_task = asyncio.create_task(self._close_expired())

    async def _close_expired(self) -> None:
        await self._cancel_lanes()
        await self.send_error(
            ProtocolError(
                "websocket_connection_limit_reached",
                f"connection: reached its lifetime limit of {self.server.connection_lifetime_s:g} s; "
                "open a new connection to continue",
                None,
            )
        )
        with contextlib.suppress(Exception):
            await self.ws.close(code=1000, message=b"connection lifetime limit reached")

    async def _cancel_lanes(self) -> None:
        self.closing = True
        tasks = [lane.task for lane in self.lanes.values() if lane.task is not None and not lane.task.done()]
        for task in tasks:
            task.cancel()
        # return_exceptions: the lanes' own CancelledErrors are collected; a cancellation of the caller
        # still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        await self._cancel_lanes()
        # A closed connection's cache is gone: give its bytes back to the server-wide budget.
        self.cache.clear()
