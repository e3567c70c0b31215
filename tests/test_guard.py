"""The connection guard on a bare aiohttp app: the cap answers 503 and closes, slow headers are cut off."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from labkit.live.server.guard import ConnectionGuard

pytestmark = pytest.mark.live


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _serve(guard: ConnectionGuard) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/", _ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    guard.attach(runner.server)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def _get(port: int) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


async def test_cap_refuses_with_the_api_error_shape_and_recovers() -> None:
    guard = ConnectionGuard(max_connections=3, header_timeout_s=30)
    runner, port = await _serve(guard)
    try:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        status, body = await _get(port)
        assert status == 503
        assert json.loads(body)["error"]["type"] == "server_error"
        assert guard.counters.refused_connections == 1
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.1)
        assert (await _get(port))[0] == 200
    finally:
        await runner.cleanup()


async def test_slow_headers_are_cut_off_at_the_deadline() -> None:
    guard = ConnectionGuard(max_connections=100, header_timeout_s=0.3)
    runner, port = await _serve(guard)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        data = await asyncio.wait_for(reader.read(), 5)  # the server closes: EOF
        assert data == b""
        assert guard.counters.header_timeouts == 1
        writer.close()
        # A kept-alive connection that sent its request in time is not cut by the header deadline.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b'{"ok": true}'), 5)
        assert first.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.5)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        second = await asyncio.wait_for(reader.readuntil(b'{"ok": true}'), 5)
        assert second.startswith(b"HTTP/1.1 200")
        assert guard.counters.header_timeouts == 1
        writer.close()
    finally:
        await runner.cleanup()


def test_guard_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        ConnectionGuard(max_connections=0, header_timeout_s=1)
    with pytest.raises(ValueError, match="header_timeout_s"):
        ConnectionGuard(max_connections=1, header_timeout_s=0)
