"""Bad input never kills the server or other connections; the bearer check; upgrade and size limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from test_server_support import create, sim_server, sse_events, ws_events

from labkit.live.memory import memory_connect
from labkit.live.server import SimServer
from labkit.model import load_profile, load_workload

# Tests that need a socket (HTTP, the upgrade, framing) are marked live; WebSocket mode's rules run in
# memory (labkit.live.memory), in make test-fast.

WL = load_workload("fast_test")
KEY = "sk-test-not-a-real-key-7f3a"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        ("[]", "invalid_type"),
        (json.dumps({"type": "response.append"}), "unknown_event_type"),
        (json.dumps({"type": "response.create", "input": "x"}), "missing_required_parameter"),
        (json.dumps({"type": "response.create", "model": "m"}), "missing_required_parameter"),
        (json.dumps({"type": "response.create", "model": "m", "input": {"a": 1}}), "invalid_type"),
        (json.dumps({"type": "response.create", "model": "m", "input": "x", "store": 1}), "invalid_type"),
    ],
)
async def test_ws_bad_messages_get_an_error_event_and_the_socket_stays_usable(message, code) -> None:
    async with sim_server(workload=WL, instant=True) as server:
        async with memory_connect(server) as bystander, memory_connect(server) as ws:
            await ws.send(message)
            (err,) = await ws_events(ws)
            assert err["type"] == "error" and err["error"]["code"] == code
            assert err["status"] == 400 and err["error"]["message"]
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"
            assert (await ws_events(bystander, create("x")))[-1]["type"] == "response.completed"
        assert server.metrics["errors"] == 1


@pytest.mark.live
async def test_ws_oversize_message() -> None:
    async with SimServer(workload=WL, instant=True, max_message_bytes=4096) as server:
        async with websockets.connect(server.ws_url) as ws:
            (err,) = await ws_events(ws, create("x" * 8000))
            assert err["error"]["code"] == "message_too_large"
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"
            # Far beyond the limit, the WebSocket layer itself refuses the frame (close code 1009).
            await ws.send("x" * (4096 * 4 + (1 << 20) + 10))
            with pytest.raises(websockets.ConnectionClosed) as exc:
                await ws.recv()
            assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009
        async with websockets.connect(server.ws_url) as ws:
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"


@pytest.mark.live
@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{nope", 400, "invalid_json"),
        (b"[1]", 400, "invalid_type"),
        (b'{"input": "x"}', 400, "missing_required_parameter"),
        (b'{"model": "m", "input": "x", "stream": "yes"}', 400, "invalid_type"),
        (b'{"model": "m", "input": "x", "generate": false}', 400, "unknown_parameter"),
        (b'{"model": "m", "input": "x", "background": true}', 400, "invalid_value"),
    ],
)
async def test_http_bad_bodies(content: bytes, status: int, code: str) -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == status
        err = r.json()["error"]
        assert err["code"] == code and err["type"] == "invalid_request_error" and err["message"]
        assert (await c.post("/responses", json={"model": "m", "input": "x"})).status_code == 200


@pytest.mark.live
async def test_http_oversize_body_and_plain_get() -> None:
    async with (
        SimServer(workload=WL, instant=True, max_message_bytes=4096) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        r = await c.post("/responses", json={"model": "m", "input": "x" * 10_000})
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        r = await c.get("/responses")
        assert r.status_code == 426 and r.json()["error"]["code"] == "websocket_upgrade_required"
        assert (await c.post("/responses", json={"model": "m", "input": "x"})).status_code == 200


@pytest.mark.live
@pytest.mark.parametrize("arrival", ["whole", "in pieces"])
async def test_the_body_limit_is_the_same_however_the_body_arrives(arrival: str) -> None:
    # A body that came in with its headers is taken from the buffer at once; one still arriving is read in a loop.
    limit = 4096

    def body(size: int) -> bytes:
        head = b'{"model":"m","input":"'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    async def pieces(data: bytes):
        for at in range(0, len(data), 1000):
            yield data[at : at + 1000]
            await asyncio.sleep(0.01)

    async with (
        SimServer(workload=WL, instant=True, max_message_bytes=limit) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        for size, status in ((limit, 200), (limit + 1, 413)):
            data = body(size)
            content = data if arrival == "whole" else pieces(data)
            r = await c.post("/responses", content=content, headers={"Content-Type": "application/json"})
            assert r.status_code == status, (size, r.text[:200])
            if status == 413:
                assert r.json()["error"]["code"] == "request_too_large"


@pytest.mark.live
async def test_http_bearer_check_and_key_never_echoed() -> None:
    async with (
        SimServer(workload=WL, instant=True, api_key=KEY) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = await c.post("/responses", json={"model": "m", "input": "x"}, headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "invalid_api_key"
            assert r.json()["error"]["type"] == "invalid_request_error"
            assert KEY not in r.text and "wrong" not in r.text
        r = await c.post("/responses", json={"model": "m", "input": "x"}, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200


@pytest.mark.live
async def test_ws_bearer_check_refuses_the_upgrade_with_401() -> None:
    async with SimServer(workload=WL, instant=True, api_key=KEY) as server:
        with pytest.raises(websockets.InvalidStatus) as exc:
            await websockets.connect(server.ws_url, additional_headers={"Authorization": "Bearer nope"})
        response = exc.value.response
        assert response.status_code == 401
        body = json.loads(response.body)
        # The real API's shape: invalid_request_error with code invalid_api_key; the key is never echoed.
        assert body["error"] == {
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "message": "Incorrect API key provided.",
            "param": None,
        }
        async with websockets.connect(server.ws_url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"


@pytest.mark.live
async def test_no_permessage_deflate() -> None:
    # The client offers compression; the server must decline it (latency work wants raw frames).
    async with SimServer(workload=WL, instant=True) as server:
        ws = await websockets.connect(server.ws_url, compression="deflate")
        try:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
        finally:
            await ws.close()


@pytest.mark.live
async def test_client_disconnect_mid_stream_does_not_hurt_the_server() -> None:
    from labkit.model import load_profile

    async with SimServer(load_profile("websocket", decode_tps=500), WL) as server:
        ws = await websockets.connect(server.ws_url)
        await ws.send(json.dumps(create("x")))
        await ws.recv()
        await ws.close()
        body = {"model": "m", "input": "x", "stream": True}
        async with httpx.AsyncClient(base_url=server.base_url) as c, c.stream("POST", "/responses", json=body) as r:
            async for _ in r.aiter_bytes():
                break  # hang up after the first chunk
        async with websockets.connect(server.ws_url) as ws2:
            assert (await ws_events(ws2, create("x")))[-1]["type"] == "response.completed"


async def test_an_internal_bug_costs_one_response_not_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        real = server.engine.run
        calls = []

        async def broken(turn, emit):
            calls.append(turn)
            if len(calls) == 1:
                raise KeyError("simulated bug")
            return await real(turn, emit)

        monkeypatch.setattr(server.engine, "run", broken)
        (err,) = await ws_events(ws, create("x"))
        assert err["status"] == 500 and err["error"]["code"] == "server_error"
        assert "simulated bug" not in err["error"]["message"]
        assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"


@pytest.mark.live
async def test_an_internal_bug_mid_stream_ends_the_response_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.wire.protocol import ResponseEvents

    real = ResponseEvents.close_item
    calls = []

    def broken(self, status="completed"):
        calls.append(self)
        if len(calls) == 1:
            raise KeyError("simulated bug")
        return real(self, status)

    monkeypatch.setattr(ResponseEvents, "close_item", broken)
    # A non-streaming answer is assembled whole (no close_item): the same bug in its item builder.
    from labkit.live.server import assembly

    real_item = assembly.output_item

    def broken_item(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise KeyError("simulated bug")
        return real_item(*args, **kwargs)

    monkeypatch.setattr(assembly, "output_item", broken_item)
    profile = load_profile("websocket", decode_tps=4000)
    async with SimServer(profile, WL) as server, websockets.connect(server.ws_url) as ws:
        events = await ws_events(ws, create("x"))
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.failed"
        assert events[-1]["response"]["error"]["code"] == "server_error"
        numbers = [e["sequence_number"] for e in events]
        assert numbers == sorted(set(numbers))  # increasing (the batch the bug broke never went out)
        assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"
    # Over SSE the same; without streaming a 500 with the API's error body.
    calls.clear()
    async with SimServer(profile, WL) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        events = await sse_events(c, {"model": "m", "input": "x"})
        assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.failed"
        calls.clear()
        r = await c.post("/responses", json={"model": "m", "input": "x"})
        assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
    # An instant answer is assembled the moment it is resolved (no turn): the same 500, and the server goes on.
    calls.clear()
    async with SimServer(profile, WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", json={"model": "m", "input": "x"})
        assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
        r = await c.post("/responses", json={"model": "m", "input": "x"})
        assert r.status_code == 200 and r.json()["status"] == "completed"


@pytest.mark.live
async def test_stop_during_an_sse_stream() -> None:
    from labkit.model import load_profile

    server = await SimServer.start(load_profile("websocket", decode_tps=100), workload=WL)
    async with httpx.AsyncClient(base_url=server.base_url) as c:
        body = {"model": "m", "input": "x", "stream": True}
        async with c.stream("POST", "/responses", json=body) as r:
            chunks = r.aiter_bytes()
            await chunks.__anext__()
            await asyncio.wait_for(server.stop(), 10)
            with pytest.raises(httpx.HTTPError):
                async for _ in chunks:
                    pass


# A lone UTF-16 surrogate escape in any string field (JSON allows the escape; it is not Unicode text).
LONE = "\\ud800"
SURROGATE_BODIES = [
    '{"model":"gpt-5","input":"hi LONE"}',
    '{"model":"gpt-5","input":"x","instructions":"LONE"}',
    '{"model":"gptLONE","input":"x"}',
    '{"model":"gpt-5","input":[{"type":"message","role":"user","content":"\\udc00 LONE"}]}',
    '{"model":"gpt-5","input":"x","metadata":{"k":"LONE"}}',
]


@pytest.mark.parametrize("body", SURROGATE_BODIES)
async def test_a_lone_surrogate_gets_an_error_event_and_the_socket_stays_usable(body: str) -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        await ws.send('{"type":"response.create",' + body.replace("LONE", LONE)[1:])
        (err,) = await ws_events(ws)
        assert err["type"] == "error" and err["error"]["code"] == "invalid_json"
        assert "surrogate" in err["error"]["message"]
        assert (await ws_events(ws, create("hi \U0001f600")))[-1]["type"] == "response.completed"


@pytest.mark.live
@pytest.mark.parametrize("body", SURROGATE_BODIES)
async def test_a_lone_surrogate_gets_a_400_over_http(body: str) -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", content=body.replace("LONE", LONE), headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["code"] == "invalid_json" and "surrogate" in r.json()["error"]["message"]
        # Non-BMP text written as a surrogate pair is one character, and is served.
        ok = await c.post("/responses", json={"model": "gpt-5", "input": "hi \U0001f600"})
        assert ok.status_code == 200


async def test_the_websocket_edge_turns_a_bug_into_server_error_for_that_message(monkeypatch) -> None:
    from labkit.live.server.session import WebSocketSession

    real = WebSocketSession.receive
    calls = []

    def broken(self, data, now):
        calls.append(data)
        if len(calls) == 1:
            raise KeyError("simulated bug")
        return real(self, data, now)

    monkeypatch.setattr(WebSocketSession, "receive", broken)
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        (err,) = await ws_events(ws, create("x"))
        assert err["status"] == 500 and err["error"]["code"] == "server_error"
        assert "simulated bug" not in err["error"]["message"]
        assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"


@pytest.mark.live
async def test_the_http_edge_turns_a_bug_into_a_500_json_body(monkeypatch) -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:

        def broken(*args, **kwargs):
            raise KeyError("simulated bug")

        monkeypatch.setattr(server.engine, "resolve", broken)
        for stream in (False, True):
            r = await c.post("/responses", json={"model": "m", "input": "x", "stream": stream})
            assert r.status_code == 500 and r.json()["error"]["code"] == "server_error"
            assert "simulated bug" not in r.text


async def test_a_bug_while_resolving_a_create_costs_that_create_alone(monkeypatch) -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        real = server.engine.prepare
        calls = []

        def broken(*args, **kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "simulated bug")
            return real(*args, **kwargs)

        monkeypatch.setattr(server.engine, "prepare", broken)
        (err,) = await ws_events(ws, create("x"))
        assert err["status"] == 500 and err["error"]["code"] == "server_error"
        assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"
