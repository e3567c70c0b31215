"""labkit.live.memory: the clients against a server in this process, with no socket."""

from __future__ import annotations

import pytest
from aiohttp import web

from labkit.live.memory import MemoryHttpTransport, MemoryTransport
from labkit.live.server import Faults, SimServer

BODY = {"model": "m", "input": [{"type": "message", "role": "user", "content": "tok abc "}], "store": False}


def test_a_memory_transport_needs_exactly_one_server_side():
    with pytest.raises(ValueError, match="^server"):
        MemoryTransport()
    with pytest.raises(ValueError, match="^server"):
        MemoryTransport(SimServer(instant=True), peer=lambda sink: None)  # type: ignore[arg-type,return-value]


async def test_http_in_memory_cut_mid_stream_is_a_dropped_exchange():
    # The server's abort of the connection reaches the client as a cut stream, as a TCP reset would.
    server = SimServer(profile="http_optimized", workload="fast_test", instant=True, faults=Faults(drop_after_events=4))
    async with MemoryHttpTransport(server) as client:
        ex = await client.create(BODY)
        again = await client.create(BODY)
    assert ex.status == "dropped" and ex.error_code == "connection_closed" and len(ex.events) == 4
    # The next request opened a new connection (the cut one left the pool).
    assert again.t_connected is not None and client.connections == 2


async def test_http_in_memory_serves_any_aiohttp_app_and_its_headers():
    seen = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"id": "resp_1", "object": "response", "status": "completed", "output": []})

    app = web.Application()
    app.router.add_post("/v1/responses", echo)
    async with MemoryHttpTransport(app, api_key="sk-test", stream=False) as client:
        ex = await client.create(BODY)
    assert ex.ok and ex.response_id == "resp_1" and ex.http_status == 200
    assert seen == ["Bearer sk-test"]


async def test_the_server_bounds_hold_in_memory():
    # The server's own application runs, so its message bound answers 413 with the API's error body.
    server = SimServer(instant=True, max_message_bytes=1024)
    async with MemoryHttpTransport(server) as client:
        ex = await client.create({**BODY, "input": "x" * 4096})
    assert ex.status == "error" and ex.http_status == 413 and ex.error_code == "request_too_large"
