"""WebSocket mode in memory: a client transport wired to a simulated server's session and engine in this
process, with no sockets (:class:`MemoryTransport`).

It is :class:`~labkit.live.client.ws.WebSocketClient` with its connection replaced by an in-memory pipe: the
client's logic (creates, pipelines, steering, following a successor, timeouts) is the one that runs against a
real socket, and the server side is the same :class:`~labkit.live.server.connection.SessionDriver` that serves
an aiohttp WebSocket, so WebSocket mode's state rules run and are tested without the network. Events still go
through their JSON (``to_json`` on the server side, :func:`~labkit.wire.events.parse_server_event` on the
client side). What it does not exercise: HTTP upgrade and authentication, framing, flow control, pings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from labkit.live.client.ws import WebSocketClient
from labkit.live.server.connection import SessionDriver
from labkit.wire.events import ServerEvent

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from labkit.live.server.app import SimServer

__all__ = ["MemoryConnection", "MemoryTransport", "memory_connect"]

#: What the client's inbox holds: a frame's payload, or how the connection ended (``None``: cut, no frame).
_Item = bytes | Close | None


class _MemorySink:
    """The server side of the pipe: events into the client's inbox."""

    def __init__(self, inbox: asyncio.Queue[_Item]) -> None:
        self.inbox = inbox
        self.closed = False

    async def send(self, events: Sequence[ServerEvent]) -> None:
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        for event in events:
            self.inbox.put_nowait(event.to_json().encode())

    async def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(Close(code, reason))

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(None)


class MemoryConnection:
    """The client side of the pipe: the part of websockets' ``ClientConnection`` a client uses (``send``,
    ``recv``, ``close``; a closed connection raises websockets' ``ConnectionClosed``), so code written for a
    socket runs unchanged."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self.sink = _MemorySink(self.inbox)
        self.driver = SessionDriver(server, self.sink)
        server.attach(self.driver)
        #: Set once the connection ended: how (a close frame, or ``None`` for a cut).
        self._ended = False
        self._end: Close | None = None

    def _closed_error(self) -> Exception:
        end = self._end
        if end is not None:
            ok = end.code in (1000, 1001)
            return (ConnectionClosedOK if ok else ConnectionClosedError)(end, None)
        return ConnectionClosedError(None, None)

    async def send(self, message: str | bytes) -> None:
        if self.sink.closed:
            raise self._closed_error()
        await self.driver.receive(message)

    async def recv(self, decode: bool | None = None) -> str | bytes:
        if self._ended:
            raise self._closed_error()
        item = await self.inbox.get()
        if isinstance(item, bytes):
            # websockets' rule: a text frame is a str unless decode=False.
            return item if decode is False else item.decode()
        self._ended, self._end = True, item
        await self._release()
        raise self._closed_error()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if not self._ended:
            self._ended, self._end = True, Close(code, reason)
        self.sink.closed = True
        await self._release()

    async def _release(self) -> None:
        await self.driver.shutdown()
        self.server.detach(self.driver)


class MemoryTransport(WebSocketClient):
    """WebSocket mode against ``server``'s session and engine in this process: no sockets, same client.

    ``server`` need not be started (its engine and limits are used directly). Each connection (the first
    create, and after :meth:`reconnect`) is a new session with its own cache, as a new socket would be.
    """

    def __init__(self, server: SimServer, *, timeout: float | None = 300.0) -> None:
        super().__init__(server.base_url if server.running else "http://127.0.0.1/v1", "memory", timeout=timeout)
        self.server = server

    async def _open(self) -> None:
        self._ws = cast("ClientConnection", MemoryConnection(self.server))
        self.connections += 1


class memory_connect:
    """A new in-memory WebSocket-mode connection to ``server``: ``async with memory_connect(server) as ws`` or
    ``ws = await memory_connect(server)``, as ``websockets.connect(server.ws_url)`` would be."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.connection: MemoryConnection | None = None

    async def _open(self) -> MemoryConnection:
        self.connection = MemoryConnection(self.server)
        return self.connection

    def __await__(self) -> Generator[Any, None, MemoryConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> MemoryConnection:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()
