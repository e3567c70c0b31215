"""Writing server events to an aiohttp WebSocket: aiohttp's public ``send_str``, or one fast path.

Events due together (an item opening with its first delta, the last delta with the item's ``.done`` events)
can go out as back-to-back frames in one socket write: the same bytes, one system call instead of one per event.
Under many paced streams those calls were most of the server's CPU (``labkit bench server``). That path writes
RFC 6455 frames itself and uses aiohttp's private writer fields, so it lives here alone:
:func:`frame_writer` picks it only for an aiohttp release it was checked against and when every field it uses
is there (uncompressed, unmasked), and falls back to :class:`PlainFrameWriter` otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

from labkit.wire.events import ServerEvent

#: aiohttp releases whose WebSocket writer :class:`BatchFrameWriter` was checked against (major, minor).
BATCH_WRITER_AIOHTTP = ((3, 10), (3, 14))
_WRITER_FIELDS = ("transport", "protocol", "_output_size", "_limit", "_closing")


def _aiohttp_version() -> tuple[int, int]:
    try:
        major, minor = aiohttp.__version__.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


class PlainFrameWriter:
    """Each event through aiohttp's public ``send_str``."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def send(self, events: Sequence[ServerEvent]) -> None:
        send = self.ws.send_str
        for event in events:
            await send(event.to_json())


def text_frame(payload: bytes) -> bytes:
    """An unmasked, uncompressed, final WebSocket text frame (RFC 6455 section 5.2), as a server sends it."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class BatchFrameWriter(PlainFrameWriter):
    """Several events as back-to-back frames in one transport write, with aiohttp's own flow control."""

    def __init__(self, ws: web.WebSocketResponse, writer: Any) -> None:
        super().__init__(ws)
        self._writer = writer

    async def send(self, events: Sequence[ServerEvent]) -> None:
        if len(events) < 2:
            await super().send(events)
            return
        writer = self._writer
        transport = writer.transport
        if self.ws.closed or writer._closing or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        data = b"".join([text_frame(event.to_json().encode()) for event in events])
        transport.write(data)
        # aiohttp's own flow control: past its limit, wait while the transport is paused.
        writer._output_size += len(data)
        if writer._output_size > writer._limit:
            writer._output_size = 0
            if writer.protocol._paused:
                await writer.protocol._drain_helper()


def frame_writer(ws: web.WebSocketResponse, *, allow_batch: bool = True) -> PlainFrameWriter:
    """The batch writer when this aiohttp is one it was checked against and its writer has every field the
    batch path uses (uncompressed, unmasked); otherwise the plain one. Call after ``ws.prepare()``."""
    if not allow_batch:
        return PlainFrameWriter(ws)
    low, high = BATCH_WRITER_AIOHTTP
    writer = getattr(ws, "_writer", None)
    protocol = getattr(writer, "protocol", None)
    usable = (
        low <= _aiohttp_version() <= high
        and all(hasattr(writer, name) for name in _WRITER_FIELDS)
        and hasattr(protocol, "_paused")
        and callable(getattr(protocol, "_drain_helper", None))
        and not getattr(writer, "compress", 1)
        and not getattr(writer, "use_mask", True)
    )
    return BatchFrameWriter(ws, writer) if usable else PlainFrameWriter(ws)
