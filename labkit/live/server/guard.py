"""Bounds on what a connection can hold: a connection cap and a deadline for the first request.

aiohttp bounds a request's size but not how many connections a server holds nor how long a client may take
to send its headers (a "slowloris" trickles one header byte at a time), and its keep-alive timer, which also
closes a connection that never sent a request, defaults to an hour. So the server adds:

- a **connection cap**: past ``max_connections`` open connections, a new one is answered at once with
  ``503`` and the API's error body, then closed, instead of holding a descriptor (and, at the process's
  descriptor limit, starving ``accept()`` for everyone: see :mod:`labkit.live.server.descriptors`);
- a **header deadline**: a connection whose first request has not arrived whole within
  ``header_timeout_s`` is closed. Later requests on a kept-alive connection are bounded by aiohttp's own
  keep-alive timer (``keepalive_timeout``, the server's HTTP idle timeout), which closes a connection that
  is idle or halfway through a request's headers when it fires.

How: :class:`ConnectionGuard` wraps the ``connection_made`` / ``connection_lost`` callbacks that aiohttp's
request handlers call on their :class:`aiohttp.web.Server` (public methods of that class) and its
``request_factory`` (a public attribute: the handlers call it once per request whose headers arrived whole),
which marks the request's connection. Not a middleware: an application with one runs two more coroutines per
request (aiohttp adds its own), a few microseconds of a non-streaming create's budget. Nothing here reads
aiohttp's private state.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from labkit.wire.protocol import error_body


def _overloaded_response() -> bytes:
    body = json.dumps(
        error_body(None, "The server is at its connection limit; retry later.", None, type="server_error")
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


_OVERLOADED = _overloaded_response()


@dataclass(slots=True)
class GuardCounters:
    """What the guard did, for the server's metrics."""

    open_connections: int = 0
    refused_connections: int = 0
    header_timeouts: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "open_connections": self.open_connections,
            "refused_connections": self.refused_connections,
            "header_timeouts": self.header_timeouts,
        }


class ConnectionGuard:
    """The connection cap and the first-request deadline of one server."""

    def __init__(self, *, max_connections: int, header_timeout_s: float) -> None:
        if not (isinstance(max_connections, int) and max_connections >= 1):
            raise ValueError(f"max_connections: must be an integer >= 1, got {max_connections!r}")
        if not (isinstance(header_timeout_s, int | float) and header_timeout_s > 0):
            raise ValueError(f"header_timeout_s: must be > 0, got {header_timeout_s!r}")
        self.max_connections = max_connections
        self.header_timeout_s = float(header_timeout_s)
        self.counters = GuardCounters()
        self._open: dict[Any, asyncio.TimerHandle | None] = {}

    def attach(self, server: web.Server) -> None:
        """Wrap ``server``'s connection callbacks and its request factory (call once, after the runner's
        ``setup()`` and before any connection)."""
        made, lost, factory = server.connection_made, server.connection_lost, server.request_factory

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._opened(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._closed(handler)
            lost(handler, exc)

        def request_factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
            self.request_started(protocol)
            return factory(message, payload, protocol, writer, task)

        # Instance attributes shadow the methods: aiohttp's handlers call them through the instance.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory

    def _opened(self, handler: Any, transport: asyncio.Transport) -> None:
        if len(self._open) >= self.max_connections:
            self.counters.refused_connections += 1
            self._open[handler] = None
            transport.write(_OVERLOADED)
            transport.close()
            return
        loop = asyncio.get_running_loop()
        self._open[handler] = loop.call_later(self.header_timeout_s, self._header_deadline, handler, transport)
        self.counters.open_connections = len(self._open)

    def _closed(self, handler: Any) -> None:
        timer = self._open.pop(handler, None)
        if timer is not None:
            timer.cancel()
        self.counters.open_connections = len(self._open)

    def _header_deadline(self, handler: Any, transport: asyncio.Transport) -> None:
        if self._open.get(handler) is None:
            return  # already served or closed
        self._open[handler] = None
        self.counters.header_timeouts += 1
        transport.close()

    def request_started(self, handler: Any) -> None:
        """A request's headers arrived whole on ``handler``'s connection: it met the header deadline."""
        timer = self._open.get(handler)
        if timer is not None:
            timer.cancel()
            self._open[handler] = None
