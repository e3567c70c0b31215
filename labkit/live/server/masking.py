"""RFC 6455 section 5.1: "The server MUST close the connection upon receiving a frame that is not masked."

aiohttp 3.14's reader parses unmasked client frames as if they were masked (it has no option to refuse them),
so :class:`MaskCheckingWebSocketResponse` puts :class:`MaskedFramesOnly` in front of it: a frame-boundary
tracker that reads only frame headers (payload bytes are skipped by count, never copied) and, on a client frame
without the mask bit, fails the WebSocket with close code 1002 (protocol error) exactly as aiohttp fails it for
its own protocol errors (the exception goes to the message queue; ``receive()`` closes with its code).

It uses three private names of aiohttp's (the handler's ``_message_tail`` and ``_payload_parser``, the
response's ``_reader``); where one is missing (another aiohttp release) the check is skipped, logged once.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSCloseCode, web
from aiohttp.http_websocket import WebSocketError

log = logging.getLogger("labkit.live.server")

_warned = False


class MaskedFramesOnly:
    """In front of aiohttp's ``WebSocketReader``: passes bytes through while every frame is masked."""

    __slots__ = ("_failed", "_head", "_parser", "_queue", "_skip")

    def __init__(self, parser: Any, queue: Any) -> None:
        self._parser = parser
        self._queue = queue
        #: Bytes of the current frame's header read so far (at most 14), and payload bytes still to skip.
        self._head = bytearray()
        self._skip = 0
        self._failed = False

    def feed_eof(self) -> None:
        self._parser.feed_eof()

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[bool, bytes]:
        if self._failed:
            return True, b""
        data = bytes(data)
        bad = self._scan(data)
        if bad < 0:
            return self._parser.feed_data(data)
        # The frames before the unmasked one are delivered; then the connection fails with 1002.
        if bad > 0:
            self._parser.feed_data(data[:bad])
        self._failed = True
        self._queue.set_exception(WebSocketError(WSCloseCode.PROTOCOL_ERROR, "Received an unmasked client frame"))
        return True, b""

    def _scan(self, data: bytes) -> int:
        """Advance over ``data``; the offset where an unmasked frame starts (0 if it began earlier), else -1."""
        pos, n = 0, len(data)
        while pos < n:
            if self._skip:
                step = min(self._skip, n - pos)
                self._skip -= step
                pos += step
                continue
            start = pos - len(self._head)
            need = self._header_length()
            take = min(need - len(self._head), n - pos)
            self._head += data[pos : pos + take]
            pos += take
            if len(self._head) >= 2 and not self._head[1] & 0x80:
                return max(start, 0)
            if len(self._head) == self._header_length():
                self._skip = self._payload_length()
                self._head.clear()
        return -1

    def _header_length(self) -> int:
        """Bytes of the current header: 2 until its second byte is known, then with length and mask key."""
        if len(self._head) < 2:
            return 2
        flag = self._head[1] & 0x7F
        return 2 + (2 if flag == 126 else 8 if flag == 127 else 0) + 4

    def _payload_length(self) -> int:
        head = self._head
        flag = head[1] & 0x7F
        if flag == 126:
            return int.from_bytes(head[2:4], "big")
        if flag == 127:
            return int.from_bytes(head[2:10], "big")
        return flag


class MaskCheckingWebSocketResponse(web.WebSocketResponse):
    """aiohttp's ``WebSocketResponse`` that closes with 1002 on an unmasked client frame (RFC 6455 5.1)."""

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        handler = request.protocol
        tail = getattr(handler, "_message_tail", None)
        if not isinstance(tail, bytes) or not hasattr(handler, "_payload_parser"):
            _skip_check()
            super()._post_start(request, protocol, writer)
            return
        # Bytes that came with the handshake are fed through the check, not straight to aiohttp's reader, so
        # that the tracker starts at the first frame's first byte.
        handler._message_tail = b""
        super()._post_start(request, protocol, writer)
        queue = getattr(self, "_reader", None)
        parser = handler._payload_parser
        if queue is None or not hasattr(queue, "set_exception") or parser is None:
            _skip_check()
            if tail:
                parser.feed_data(tail)
            return
        guard = MaskedFramesOnly(parser, queue)
        handler._payload_parser = guard
        if tail and guard.feed_data(tail)[0]:
            handler.close()


def _skip_check() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("labkit server: this aiohttp release is not checked; unmasked client frames are not refused")
