"""RFC 6455 section 5.1: a client frame without the mask bit closes the connection with 1002.

Over a raw socket (no client library would send such a frame), and the tracker itself on frames split at every
byte boundary, with each payload-length form (7-bit, 16-bit, 64-bit)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

import pytest

from labkit.live.server import SimServer
from labkit.live.server.masking import MaskedFramesOnly


def _frame(payload: bytes, *, masked: bool = True, opcode: int = 0x1) -> bytes:
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, mask_bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, mask_bit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _handshake() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        "GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


async def _until_close(reader: asyncio.StreamReader) -> tuple[list[str], int]:
    """Server events (types) until the close frame, and its code."""
    types: list[str] = []
    while True:
        opcode, payload = await asyncio.wait_for(_read_frame(reader), 10)
        if opcode == 0x8:
            return types, struct.unpack("!H", payload[:2])[0]
        types.append(json.loads(payload)["type"])


CREATE = json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi"}).encode()


@pytest.mark.parametrize("with_handshake", [False, True], ids=["after", "in-the-handshake-packet"])
async def test_an_unmasked_client_frame_closes_with_1002(with_handshake: bool) -> None:
    async with SimServer(instant=True) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            if with_handshake:
                writer.write(_handshake() + _frame(CREATE, masked=False))
                await reader.readuntil(b"\r\n\r\n")
            else:
                writer.write(_handshake())
                status = await reader.readuntil(b"\r\n\r\n")
                assert status.startswith(b"HTTP/1.1 101")
                writer.write(_frame(CREATE, masked=False))
            types, code = await _until_close(reader)
            assert code == 1002 and types == []
            assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server hangs up
        finally:
            writer.close()


async def test_masked_frames_split_at_odd_places_are_served_then_an_unmasked_one_closes() -> None:
    async with SimServer(instant=True) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            masked = _frame(CREATE)
            writer.write(_handshake() + masked[:3])  # part of a header rides with the handshake
            await reader.readuntil(b"\r\n\r\n")
            for i in range(3, len(masked), 7):
                writer.write(masked[i : i + 7])
                await writer.drain()
            types: list[str] = []
            while "response.completed" not in types:
                _, payload = await asyncio.wait_for(_read_frame(reader), 10)
                types.append(json.loads(payload)["type"])
            writer.write(_frame(b'{"type":"ping"}', masked=False, opcode=0x1))
            _, code = await _until_close(reader)
            assert code == 1002
        finally:
            writer.close()


class _Parser:
    def __init__(self) -> None:
        self.fed = bytearray()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.fed += data
        return False, b""

    def feed_eof(self) -> None: ...


class _Queue:
    def __init__(self) -> None:
        self.exc: BaseException | None = None

    def set_exception(self, exc: BaseException) -> None:
        self.exc = exc


def _feed(chunks: list[bytes]) -> tuple[_Parser, _Queue, list[Any]]:
    parser, queue = _Parser(), _Queue()
    guard = MaskedFramesOnly(parser, queue)
    return parser, queue, [guard.feed_data(c) for c in chunks]


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 65535, 65536, 70_000])
def test_the_tracker_follows_every_length_form_split_at_every_step(size: int) -> None:
    stream = _frame(b"a" * size) + _frame(b"\x00", opcode=0x9) + _frame(b"b" * 3)
    for step in (1, 2, 3, 5, 13, len(stream)):
        if step == 1 and size > 300:
            continue  # byte by byte over 64 KiB: slow, and the 2/3/5-byte splits cover every boundary
        chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
        parser, queue, results = _feed(chunks)
        assert bytes(parser.fed) == stream and queue.exc is None
        assert all(r == (False, b"") for r in results)
    bad = stream + _frame(b"x", masked=False)
    for step in (1, 4, len(bad)):
        if step == 1 and size > 300:
            continue
        chunks = [bad[i : i + step] for i in range(0, len(bad), step)]
        parser, queue, results = _feed(chunks)
        assert queue.exc is not None and getattr(queue.exc, "code", None) == 1002
        # Every frame before the unmasked one went through; of the unmasked one, at most its first byte (fed
        # in an earlier chunk, before its second byte showed the missing mask bit).
        assert bytes(parser.fed) == bad[: len(parser.fed)] and len(stream) <= len(parser.fed) <= len(stream) + 1
        assert results[-1] == (True, b"")
