"""One WebSocket-mode connection: the aiohttp edge around :class:`~labkit.live.server.session.WebSocketSession`.

The session decides (lanes, queueing, the active limit, steering, eviction, lifetime); the engine
(:mod:`labkit.live.server.engine`) resolves and streams each create; this module only moves bytes and time
between them: it feeds the session the socket's messages with the loop's clock, performs the actions it
returns (send, start, interrupt, evict, cancel, close), and tells it how each started create ended.

Seams: a catch-all per create is :meth:`Connection._run` (an unexpected exception costs that response only,
:meth:`WebSocketSession.crashed`); per message, :meth:`Connection.serve`; the queue bounds are the session's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from aiohttp import WSMsgType, web

from labkit.live.server.engine import LaneCache, Turn, TurnFailed
from labkit.live.server.faults import DropConnection, EventCounter
from labkit.live.server.frames import frame_writer
from labkit.live.server.ids import new_id, wall_clock
from labkit.live.server.session import (
    MAX_STEERS_PER_RESPONSE,
    Action,
    Cancel,
    Close,
    Evict,
    Interrupt,
    Send,
    Start,
    WebSocketSession,
    Work,
)
from labkit.wire.events import ErrorEvent, ServerEvent, SteerAccepted
from labkit.wire.protocol import ProtocolError, internal_error

if TYPE_CHECKING:
    from labkit.live.server.app import SimServer

__all__ = ["MAX_STEERS_PER_RESPONSE", "AiohttpSink", "Connection", "EventSink", "SessionDriver"]

log = logging.getLogger("labkit.live.server")


class EventSink(Protocol):
    """Where a session's server events go: an aiohttp WebSocket (:class:`AiohttpSink`), or memory
    (:mod:`labkit.live.memory`)."""

    @property
    def closed(self) -> bool: ...

    async def send(self, events: Sequence[ServerEvent]) -> None:
        """Send events due together, in order (raises ``ConnectionError`` once the peer is gone)."""

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None:
        """Cut the connection without a close frame, as a network failure would."""


class SessionDriver:
    """Runs one :class:`WebSocketSession` against the engine: feeds it messages, performs its actions."""

    def __init__(self, server: SimServer, sink: EventSink) -> None:
        self.server = server
        self.engine = server.engine
        self.sink = sink
        self.cache = LaneCache(server.engine.cache_budget)
        self.replica = server.engine.replicas.route(f"ws{id(self)}") if server.engine.replicas.count > 1 else 0
        self.counter = EventCounter()
        loop = asyncio.get_running_loop()
        self.session = WebSocketSession(
            opened_at=loop.time(),
            ids=new_id,
            wall_clock=wall_clock,
            max_active=server.max_active_responses,
            max_lanes=server.max_lanes,
            max_message_bytes=server.max_message_bytes,
            lifetime_s=server.connection_lifetime_s,
            max_queued_per_lane=server.max_queued_per_lane,
            max_queued=server.max_queued,
        )
        #: The engine's turn of each running create (steering interrupts it), and the tasks running them.
        self.turns: dict[str, Turn] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.TimerHandle | None = None
        if math.isfinite(self.session.expires_at):
            self._expiry = loop.call_at(self.session.expires_at, self._expire)
        self._expire_task: asyncio.Task[None] | None = None

    async def receive(self, data: str | bytes) -> None:
        """One client message, now. The edge's catch-all: a bug while handling a message costs that message
        (an ``error`` event, ``server_error``, logged once), not the connection."""
        try:
            actions = self.session.receive(data, asyncio.get_running_loop().time())
        except Exception:
            log.exception("labkit server: a WebSocket message failed (connection %x)", id(self))
            actions = [Send(internal_error().event())]
        await self.perform(actions)

    async def send_event(self, event: ServerEvent) -> None:
        if not self.sink.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.engine.metrics.events_sent += 1
                await self.sink.send((event,))

    async def perform(self, actions: list[Action]) -> None:
        """Carry out the session's actions, in order."""
        for action in actions:
            if isinstance(action, Send):
                event = action.event
                if isinstance(event, ErrorEvent):
                    self.engine.metrics.errors += 1
                elif isinstance(event, SteerAccepted):
                    self.engine.metrics.steers_accepted += 1
                await self.send_event(event)
            elif isinstance(action, Start):
                task = asyncio.create_task(self._run(action.work))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(action, Interrupt):
                turn = self.turns.get(action.work.response_id)
                if turn is not None and turn.pacer.steer():
                    turn.wake()
            elif isinstance(action, Evict):
                self.engine.evict_failed_continuation(self.cache, action.lane, action.response_id)
            elif isinstance(action, Cancel):
                await self._cancel_all()
            elif isinstance(action, Close):
                with contextlib.suppress(Exception):
                    await self.sink.close(action.code, action.reason)

    # -- one create ---------------------------------------------------------------------------------

    async def _run(self, work: Work) -> None:
        loop = asyncio.get_running_loop()
        session, engine = self.session, self.engine
        try:
            turn = engine.prepare(
                work.request,
                transport="websocket",
                t0=work.t0,
                conn_cache=self.cache,
                conn_replica=self.replica,
                events=work.events,
                counter=self.counter,
            )
        except ProtocolError as exc:
            await self.perform(session.rejected(work, exc, loop.time()))
            return
        except Exception:
            # The per-create catch-all covers resolving the create too: the bug costs this create alone.
            log.exception("labkit server: create %s failed before it started", work.response_id)
            await self.perform(session.crashed(work, loop.time(), started=False))
            return
        self.turns[work.response_id] = turn
        if work.steers and turn.pacer.steer():
            turn.wake()  # steering accepted before the engine had the turn
        try:
            await engine.run(turn, self.sink.send)
        except TurnFailed:
            pass  # response.failed already went out; the parent is evicted.
        except DropConnection:
            session.dropped(work)
            self.sink.abort()
            return
        except (ConnectionError, RuntimeError) as exc:
            # The client went away mid-stream: nothing to tell it; the parent stays valid.
            log.debug("websocket send failed: %s", type(exc).__name__)
            await self.perform(session.ended(work, loop.time()))
            return
        except Exception:
            # A bug must cost one response, not the connection or the server.
            log.exception("labkit server: response %s failed", work.response_id)
            await self.perform(session.crashed(work, loop.time(), started=turn.sent > 0))
            return
        finally:
            self.turns.pop(work.response_id, None)
        owes = turn.record is not None and bool(turn.record.call_ids)
        await self.perform(session.finished(work, loop.time(), owes_tool_output=owes))

    # -- lifetime -----------------------------------------------------------------------------------

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        self._expire_task = asyncio.create_task(self.perform(self.session.expire(loop.time())))

    async def _cancel_all(self) -> None:
        tasks = [task for task in self.tasks if not task.done() and task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        # return_exceptions: the creates' own CancelledErrors are collected; a cancellation of the caller
        # still propagates.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self.session.closing = True
        await self._cancel_all()
        # A closed connection's cache is gone: give its bytes back to the server-wide budget.
        self.cache.clear()


class AiohttpSink:
    """An aiohttp WebSocket as an :class:`EventSink` (through :func:`~labkit.live.server.frames.frame_writer`)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.send = frame_writer(ws).send

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code=code, message=reason.encode())

    def abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Connection(SessionDriver):
    """One WebSocket-mode connection over aiohttp: the socket's messages into the session, with the loop's clock."""

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(server, AiohttpSink(ws, request))
        self.ws = ws

    async def serve(self) -> None:
        idle_s = self.server.ws_idle_timeout_s
        try:
            while True:
                try:
                    # A ping restarts the wait (aiohttp answers it and reads on), so a pinging client stays.
                    msg = await self.ws.receive(timeout=idle_s)
                except TimeoutError:
                    if self.tasks:  # a response is still streaming: the client is waiting, not idle
                        continue
                    await self.sink.close(1000, "idle timeout")
                    break
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.receive(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            await self.shutdown()
