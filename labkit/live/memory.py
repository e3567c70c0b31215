"""The simulated server in memory: client transports wired to a server in this process, with no sockets.

:class:`MemoryTransport` is WebSocket mode: :class:`~labkit.live.client.ws.WebSocketClient` with its connection
replaced by an in-memory pipe. The client's logic (creates, pipelines, steering, following a successor,
timeouts) is the one that runs against a real socket, and the server side is the same
:class:`~labkit.live.server.connection.SessionDriver` that serves an aiohttp WebSocket, so WebSocket mode's
state rules run and are tested without the network. Events still go through their JSON (``to_json`` on the
server side, :func:`~labkit.wire.events.parse_server_event` on the client side). What it does not exercise:
HTTP upgrade and authentication, framing, flow control, pings. Another server side (a test's scripted API)
plugs in as a :class:`MemoryPeer`.

:class:`MemoryHttpTransport` is HTTP: :class:`~labkit.live.client.http.HttpClient` with httpx's network
replaced by in-memory pipes into the server's own aiohttp application (:meth:`SimServer.web_app`), one request
handler per connection, as a listening server would make. HTTP/1.1 and SSE are written and parsed on both
sides as over a socket; what it does not exercise is TCP itself (the kernel, Nagle, a peer's reset)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import httpcore
import httpx
from aiohttp import web
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from labkit.live.client.http import HttpClient
from labkit.live.client.ws import WebSocketClient
from labkit.live.server.connection import SessionDriver
from labkit.live.server.guard import ConnectionGuard
from labkit.wire.events import ServerEvent

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from labkit.live.server.app import SimServer

__all__ = [
    "MemoryConnection",
    "MemoryHttp",
    "MemoryHttpTransport",
    "MemoryPeer",
    "MemorySink",
    "MemoryTransport",
    "memory_connect",
]

#: A base URL for a client of a server that does not listen (no request goes to it).
_NOWHERE = "http://127.0.0.1/v1"

#: What the client's inbox holds: a frame's payload, or how the connection ended (``None``: cut, no frame).
_Item = bytes | Close | None


class MemorySink:
    """The server side of the pipe: events into the client's inbox."""

    def __init__(self, inbox: asyncio.Queue[_Item]) -> None:
        self.inbox = inbox
        self.closed = False

    async def send(self, events: Sequence[ServerEvent]) -> None:
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        for event in events:
            self.inbox.put_nowait(event.to_json().encode())

    async def send_text(self, text: str) -> None:
        """One text frame as it is (a peer that writes its own JSON)."""
        if self.closed:
            raise ConnectionResetError("Cannot write to closing transport")
        self.inbox.put_nowait(text.encode())

    async def close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(Close(code, reason))

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(None)


class MemoryPeer(Protocol):
    """The server side of one in-memory WebSocket: gets each client message, and a shutdown when it ends.
    :class:`~labkit.live.server.connection.SessionDriver` is one; it answers through its :class:`MemorySink`."""

    async def receive(self, data: str | bytes) -> None: ...

    async def shutdown(self) -> None: ...


#: Makes the server side of a new connection, given where its events go.
PeerFactory = Callable[[MemorySink], MemoryPeer]


class MemoryConnection:
    """The client side of the pipe: the part of websockets' ``ClientConnection`` a client uses (``send``,
    ``recv``, ``close``; a closed connection raises websockets' ``ConnectionClosed``), so code written for a
    socket runs unchanged. The server side is a session of ``server``, or what ``peer`` makes."""

    def __init__(self, server: SimServer | None = None, *, peer: PeerFactory | None = None) -> None:
        if (server is None) == (peer is None):
            raise ValueError("server: give a SimServer or a peer factory, not both")
        self.server = server
        self.inbox: asyncio.Queue[_Item] = asyncio.Queue()
        self.sink = MemorySink(self.inbox)
        if server is not None:
            driver = SessionDriver(server, self.sink)
            server.attach(driver)
            self.driver: MemoryPeer = driver
        else:
            assert peer is not None
            self.driver = peer(self.sink)
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
        if self.server is not None:
            self.server.detach(cast(SessionDriver, self.driver))


class MemoryTransport(WebSocketClient):
    """WebSocket mode against ``server``'s session and engine in this process: no sockets, same client.

    ``server`` need not be started (its engine and limits are used directly). Each connection (the first
    create, and after :meth:`reconnect`) is a new session with its own cache, as a new socket would be.
    ``peer`` (instead of ``server``) makes the server side of each connection: a test's scripted API.
    """

    def __init__(
        self, server: SimServer | None = None, *, peer: PeerFactory | None = None, timeout: float | None = 300.0
    ) -> None:
        if (server is None) == (peer is None):
            raise ValueError("server: give a SimServer or a peer factory, not both")
        base_url = server.base_url if server is not None and server.running else _NOWHERE
        super().__init__(base_url, "memory", timeout=timeout)
        self.server = server
        self.peer = peer

    async def _open(self) -> None:
        self._ws = cast("ClientConnection", MemoryConnection(self.server, peer=self.peer))
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


# -- HTTP ----------------------------------------------------------------------------------------------------

#: What the client reads: bytes the server wrote, or ``None`` once the server closed its end.
_Chunk = bytes | None


class _ServerEnd(asyncio.Transport):
    """The server's end of one in-memory HTTP connection, as aiohttp's request handler sees its socket."""

    def __init__(self, protocol: asyncio.Protocol, to_client: asyncio.Queue[_Chunk]) -> None:
        super().__init__()
        self._protocol = protocol
        self._to_client = to_client
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._closing:
            self._to_client.put_nowait(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        # The client reads to the end of what was written, then end of file; the server learns it is gone.
        if not self._closing:
            self._closing = True
            self._to_client.put_nowait(None)
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 0), "sockname": ("127.0.0.1", 0)}.get(name, default)

    def pause_reading(self) -> None:
        """Flow control has nothing to do: the client writes whole requests into the parser."""

    def resume_reading(self) -> None:
        """As :meth:`pause_reading`."""

    def is_reading(self) -> bool:
        return not self._closing

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


class _ClientEnd(httpcore.AsyncNetworkStream):
    """The client's end of one in-memory HTTP connection, as httpcore sees its socket."""

    def __init__(self, protocol: asyncio.Protocol, server_end: _ServerEnd, inbox: asyncio.Queue[_Chunk]) -> None:
        self._protocol = protocol
        self._server_end = server_end
        self._inbox = inbox
        self._pending = b""
        self._eof = False

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._pending and not self._eof:
            try:
                chunk = await asyncio.wait_for(self._inbox.get(), timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no bytes within {timeout} s") from None
            self._eof = chunk is None
            self._pending = chunk or b""
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._server_end.is_closing():
            raise httpcore.WriteError("the server closed the connection")
        if buffer:
            self._protocol.data_received(buffer)

    async def aclose(self) -> None:
        self._server_end.close()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("an in-memory connection has no TLS")

    def get_extra_info(self, info: str) -> Any:
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's network: each "TCP connection" is a new request handler of ``memory``'s aiohttp server."""

    def __init__(self, memory: MemoryHttp) -> None:
        self._memory = memory

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        server = await self._memory.server()
        inbox: asyncio.Queue[_Chunk] = asyncio.Queue()
        protocol = server()
        server_end = _ServerEnd(protocol, inbox)
        protocol.connection_made(server_end)
        return _ClientEnd(protocol, server_end, inbox)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("an in-memory server has no Unix socket")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class MemoryHttp:
    """An aiohttp application served over in-memory connections: :meth:`transport` is an httpx transport to it.

    For a :class:`SimServer`, :meth:`for_server` serves the server's own application behind its connection guard
    (the connection cap and header deadline apply per in-memory connection as per socket) with its HTTP idle
    timeout. Started on the first connection; :meth:`close` stops it.
    """

    def __init__(self, app: web.Application, *, keepalive_timeout: float = 75.0, shutdown_timeout: float = 2.0) -> None:
        self.app = app
        self.keepalive_timeout = keepalive_timeout
        self.shutdown_timeout = shutdown_timeout
        self.guard: ConnectionGuard | None = None
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_server(cls, server: SimServer) -> MemoryHttp:
        # A socket's bound, not the process's descriptors: an in-memory connection holds none.
        guard = ConnectionGuard(
            max_connections=server.max_connections or 1024, header_timeout_s=server.header_timeout_s
        )
        memory = cls(
            server.web_app(),
            keepalive_timeout=server.http_idle_timeout_s,
            shutdown_timeout=server.bounds.shutdown_timeout_s,
        )
        memory.guard = guard
        return memory

    async def server(self) -> web.Server:
        """aiohttp's protocol factory: one request handler per connection."""
        async with self._lock:
            if self._runner is None:
                runner = web.AppRunner(
                    self.app,
                    access_log=None,
                    keepalive_timeout=self.keepalive_timeout,
                    shutdown_timeout=self.shutdown_timeout,
                )
                await runner.setup()
                assert runner.server is not None
                if self.guard is not None:
                    self.guard.attach(runner.server)
                self._runner = runner
        assert self._runner.server is not None
        return self._runner.server

    def transport(self, *, keep_alive: bool = True) -> httpx.AsyncBaseTransport:
        """An httpx transport whose connections are in memory (pooled as ``HttpClient`` pools them)."""
        pool = httpcore.AsyncConnectionPool(
            max_connections=64, max_keepalive_connections=8 if keep_alive else 0, network_backend=_Backend(self)
        )
        return _PoolTransport(pool)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class _PoolTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its request mapping and its exception mapping) over a given connection pool."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        super().__init__(trust_env=False)
        # httpx builds its pool from options with no network backend among them: the one attribute replaced.
        self._pool = pool


class MemoryHttpTransport(HttpClient):
    """HTTP (SSE or JSON) against ``server`` in this process: no sockets, same client.

    ``server`` is a :class:`SimServer` (need not be started: its own application is served in memory) or any
    aiohttp application (a test's scripted API). Each new connection is a new request handler, so
    ``keep_alive`` and the ``connect`` span behave as over a socket.
    """

    def __init__(
        self,
        server: SimServer | web.Application,
        api_key: str | None = None,
        *,
        keep_alive: bool = True,
        stream: bool = True,
        timeout: float | None = 300.0,
    ) -> None:
        if isinstance(server, web.Application):
            self.memory = MemoryHttp(server)
        else:
            self.memory = MemoryHttp.for_server(server)
        super().__init__(_NOWHERE, api_key, keep_alive=keep_alive, stream=stream, timeout=timeout)
        self._client = httpx.AsyncClient(
            transport=self.memory.transport(keep_alive=keep_alive),
            timeout=httpx.Timeout(timeout, connect=10.0),
            trust_env=False,
        )

    async def close(self) -> None:
        await super().close()
        await self.memory.close()
