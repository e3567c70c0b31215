"""The one seam between an agent loop and the wire: the :class:`Transport` protocol.

:class:`~labkit.live.client.ws.WebSocketClient` (WebSocket mode), :class:`~labkit.live.client.http.HttpClient`
(HTTP, SSE or JSON) and :class:`~labkit.live.memory.MemoryTransport` (WebSocket mode against the simulator's
session and engine in this process, no sockets) implement it, so :mod:`labkit.live.runner` drives any of them
without asking which it has. What differs is said by two attributes: :attr:`Transport.mode` and
:attr:`Transport.steering`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from labkit.live.client.record import Exchange

__all__ = ["Mode", "Steer", "Transport"]

Mode = Literal["websocket", "http"]


@dataclass(frozen=True, slots=True)
class Steer:
    """User input to steer a streaming response with (``response.steer``), sent once ``after_tokens`` visible
    output tokens of it have arrived (estimated from the deltas' text; 0: at ``response.created``). The server
    answers ``response.steer.accepted`` (or ``.failed``); an accepted steer ends the response ``incomplete``
    (reason ``steered``) and a successor starts by itself: read it with :meth:`Transport.follow`."""

    input: tuple[dict[str, Any], ...]
    after_tokens: int = 1

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError("input: steering needs at least one input item")
        if not isinstance(self.after_tokens, int) or self.after_tokens < 0:
            raise ValueError(f"after_tokens: must be an integer >= 0, got {self.after_tokens!r}")


@runtime_checkable
class Transport(Protocol):
    """A Responses API client as an agent loop uses it: one create at a time, every event timestamped."""

    #: ``websocket`` (WebSocket mode: a connection-scoped state, lanes, steering) or ``http``.
    mode: Mode
    #: The server answers ``response.steer`` here (WebSocket mode): :meth:`create` takes a ``steer`` and
    #: :meth:`follow` reads the successor the server starts by itself.
    steering: bool

    async def create(
        self, body: dict[str, Any], *, timeout: float | None = None, steer: Steer | None = None
    ) -> Exchange:
        """Send one create (``body``: the HTTP create body's fields, as :func:`labkit.wire.protocol.build_create`
        makes with ``websocket=False``) and read its events until the response ends. Never raises on a
        server-side failure: the :class:`Exchange` says what happened."""
        ...

    async def follow(self, *, timeout: float | None = None, input: Sequence[dict[str, Any]] = ()) -> Exchange:
        """Read the response the server started by itself (a steered response's successor)."""
        ...

    async def reconnect(self) -> None:
        """Drop the connection and its server-side state: the next create opens a new one."""
        ...

    async def close(self) -> None: ...
