"""labkit.live.server over loopback: text and tool turns on WebSocket, SSE and JSON; the turn model; lifecycle."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from test_server_support import TOOLS, create, sim_server, sse_events, task, tool_output, ws_events

from labkit.live.memory import memory_connect
from labkit.live.server import SimServer
from labkit.model import SERVER_STAGES, load_profile, load_workload, plan_turn
from labkit.wire import protocol as P
from labkit.wire.tokens import estimate_tokens

# Tests that need a socket (HTTP, the upgrade, framing) are marked live; WebSocket mode's rules run in
# memory (labkit.live.memory), in make test-fast.

WL = load_workload("fast_test")
P_PRE = ("validate", "load_state", "render", "config", "safety_in", "hops", "queue", "prefill")


def _types(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def _spec_fields(spec):  # everything but the tool time, which the server never sees
    return (spec.index, spec.context_tokens, spec.new_input_tokens, spec.output_tokens, spec.final)


@pytest.mark.live
async def test_start_in_running_loop_and_urls() -> None:
    server = await SimServer.start(profile="websocket", workload=WL, instant=True)
    try:
        assert server.running
        assert server.base_url == server.url == f"http://127.0.0.1:{server.port}/v1"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/v1/responses"
        assert server.port > 0 and "running" in repr(server)
    finally:
        await server.stop()
    assert not server.running
    await server.stop()  # idempotent


@pytest.mark.live
async def test_taken_port_raises_oserror() -> None:
    async with SimServer(instant=True) as a:
        with pytest.raises(OSError, match="port"):
            await SimServer.start(instant=True, port=a.port)


@pytest.mark.live
def test_bad_options_name_the_field() -> None:
    with pytest.raises(ValueError, match="^profile"):
        SimServer(profile="nope")
    with pytest.raises(ValueError, match="^port"):
        SimServer(port=70000)
    with pytest.raises(ValueError, match="^connection_lifetime_s"):
        SimServer(connection_lifetime_s=0)
    with pytest.raises(ValueError, match="^replicas"):
        SimServer(replicas=0)
    with pytest.raises(ValueError, match="^routing"):
        SimServer(replicas=2, routing="round")
    with pytest.raises(ValueError, match="^spin_s"):
        SimServer(spin_s=-1)


async def test_plain_sleeps_without_the_yield_wait_are_never_early() -> None:
    async with sim_server(workload=WL, tps=4000, spin_s=0) as server, memory_connect(server) as ws:
        await ws_events(ws, create("x"))
        (row,) = server.timing()
        assert row["actual_first_s"] >= row["planned_first_s"] > 0
        assert row["actual_done_s"] >= row["planned_done_s"]
        assert server.engine.active == 0


async def test_ws_text_turn_and_tool_turn() -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        text = await ws_events(ws, create("hello", store=False))
        assert _types(text)[:4] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert _types(text)[-4:] == [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        done = text[-1]["response"]
        deltas = "".join(e["delta"] for e in text if e["type"] == "response.output_text.delta")
        assert done["output"][0]["content"][0]["text"] == deltas
        # No tools: the model answers with a message of the workload's first-turn length.
        assert estimate_tokens(deltas) == WL.turn_specs()[0].output_tokens == done["usage"]["output_tokens"]

        tool = await ws_events(ws, create("hello", tools=TOOLS, store=False))
        item = tool[-1]["response"]["output"][0]
        assert item["type"] == "function_call" and item["name"] == "run_tool"
        assert json.loads(item["arguments"])
        assert "response.function_call_arguments.done" in _types(tool)
        assert [e["sequence_number"] for e in tool] == list(range(len(tool)))


async def test_ws_rollout_reproduces_the_workload_turns() -> None:
    """A chained rollout sending the workload's sizes makes the server plan exactly the workload's turns."""
    specs = WL.turn_specs()
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        events = await ws_events(ws, create(task(specs[0].new_input_tokens), tools=TOOLS, store=False))
        for spec in specs[1:]:
            resp = events[-1]["response"]
            assert resp["output"][0]["type"] == "function_call"
            nxt = create(
                [tool_output(resp["output"][0]["call_id"], spec.new_input_tokens)],
                tools=TOOLS,
                previous_response_id=resp["id"],
                store=False,
            )
            events = await ws_events(ws, nxt)
        assert events[-1]["response"]["output"][0]["type"] == "message"
        log = server.turn_log
        assert [_spec_fields(t.spec) for t in log] == [_spec_fields(s) for s in specs]
        assert [t.source for t in log] == ["none"] + ["connection"] * (len(specs) - 1)
        assert all(t.cache.connection_cache_hit for t in log[1:])
        m = server.metrics
        assert m["cache_hits"] == len(specs) - 1 and m["cache_misses"] == 0
        assert m["responses"] == len(specs)
        assert m["cached_responses"] == 1 and m["cached_bytes"] > 0


async def _http_rollout(client: httpx.AsyncClient, *, chained: bool, stream: bool) -> list[dict]:
    specs = WL.turn_specs()
    history: list[dict] = list(task(specs[0].new_input_tokens))
    body = {"model": "sim", "input": history, "tools": TOOLS, "store": chained}
    finals = []
    for spec in specs:
        if stream:
            events = await sse_events(client, body)
            resp = events[-1]["response"]
        else:
            r = await client.post("/responses", json=body)
            r.raise_for_status()
            resp = r.json()
        finals.append(resp)
        if spec.final:
            break
        call = resp["output"][0]
        out = tool_output(call["call_id"], specs[spec.index + 1].new_input_tokens)
        if chained:
            body = {"model": "sim", "input": [out], "tools": TOOLS, "store": True, "previous_response_id": resp["id"]}
        else:
            history += [call, out]
            body = {"model": "sim", "input": history, "tools": TOOLS, "store": False}
    return finals


@pytest.mark.live
@pytest.mark.parametrize(("chained", "stream"), [(False, True), (True, False), (True, True)])
async def test_http_rollouts_reproduce_the_workload_turns(chained: bool, stream: bool) -> None:
    specs = WL.turn_specs()
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        finals = await _http_rollout(c, chained=chained, stream=stream)
        assert [f["output"][0]["type"] for f in finals] == ["function_call"] * (len(specs) - 1) + ["message"]
        log = server.turn_log
        assert [_spec_fields(t.spec) for t in log] == [_spec_fields(s) for s in specs]
        assert {t.transport for t in log} == {"http"}
        expected = "store" if chained else "none"
        assert [t.source for t in log[1:]] == [expected] * (len(specs) - 1)
        assert server.metrics["store_hits"] == (len(specs) - 1 if chained else 0)


@pytest.mark.live
async def test_sse_and_json_answers_are_the_same_shape() -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        events = await sse_events(c, {"model": "sim", "input": "hi"})
        assert _types(events)[0] == "response.created" and _types(events)[-1] == "response.completed"
        r = await c.post("/responses", json={"model": "sim", "input": "hi", "metadata": {"a": "b"}})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert body["object"] == "response" and body["status"] == "completed"
        assert body["metadata"] == {"a": "b"}
        assert set(body) == set(events[-1]["response"])
        assert body["output"][0]["content"][0]["text"] == events[-1]["response"]["output"][0]["content"][0]["text"]


@pytest.mark.live
async def test_max_output_tokens_caps_the_output() -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", json={"model": "sim", "input": "hi", "max_output_tokens": 7})
        assert r.json()["usage"]["output_tokens"] == 7
        assert estimate_tokens(r.json()["output"][0]["content"][0]["text"]) == 7


async def test_pacing_sends_every_token_and_counts_coalescing() -> None:
    """Paced mode: deltas = tokens - coalesced tokens; nothing is sent before its deadline."""
    profile = load_profile("websocket", decode_tps=4000)
    n = 200
    wl = WL.with_(output_tokens=n, final_output_tokens=n)
    async with sim_server(profile, wl) as server, memory_connect(server) as ws:
        loop = asyncio.get_running_loop()
        t_send = loop.time()
        events = await ws_events(ws, create("hello", store=False))
        t_done = loop.time()
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        m = server.metrics
        assert len(deltas) == n - m["coalesced_tokens"] == m["delta_frames"]
        assert estimate_tokens("".join(d["delta"] for d in deltas)) == n
        (turn,) = server.turn_log
        plan = plan_turn(server.engine.profile_for(turn.source), turn.spec, turn.cache)
        server_stages = {s.name: s.duration_s for s in plan if s.name in SERVER_STAGES}
        pre = sum(v for k, v in server_stages.items() if k in P_PRE)
        # Deadlines are absolute and never early: the first delta is not before the end of prefill, the
        # stream not shorter than the decode time (bounded below, never timed from above).
        assert turn.t_first - turn.t0 >= pre - 1e-6
        assert t_done - t_send >= sum(server_stages.values()) - 1e-6
        assert turn.t_done - turn.t_first >= (n - 1) / 4000 - 1e-6
        # Achieved pacing is reported next to the configured rate (a generous band: a late first delta
        # makes the stream catch up, a loaded machine slows it).
        (row,) = server.timing()
        assert row["configured_tps"] == 4000 and 0.5 <= row["achieved_tps"] / 4000 <= 2


@pytest.mark.live
async def test_stop_closes_open_websockets_promptly() -> None:
    server = await SimServer.start(workload=WL, instant=True)
    ws = await websockets.connect(server.ws_url)
    await ws_events(ws, create("hi"))
    loop = asyncio.get_running_loop()
    t = loop.time()
    await server.stop()
    assert loop.time() - t < 5  # generous bound: without closing them, aiohttp would wait its timeout
    with pytest.raises(websockets.ConnectionClosed) as exc:
        await asyncio.wait_for(ws.recv(), 5)
    assert exc.value.rcvd is not None and exc.value.rcvd.code == 1001


@pytest.mark.live
async def test_stop_during_a_paced_response() -> None:
    profile = load_profile("websocket", decode_tps=100)  # a slow stream still running at stop
    server = await SimServer.start(profile, workload=WL)
    ws = await websockets.connect(server.ws_url)
    await ws.send(json.dumps(create("hi")))
    await ws.recv()
    await server.stop()
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)


async def test_instructions_count_once_per_request() -> None:
    instructions = "x" * 400  # 100 tokens
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        first = await ws_events(ws, create(task(50), instructions=instructions, tools=TOOLS, store=False))
        resp = first[-1]["response"]
        assert resp["instructions"] == instructions
        await ws_events(
            ws,
            create(
                [tool_output(resp["output"][0]["call_id"], 10)],
                instructions=instructions,
                tools=TOOLS,
                previous_response_id=resp["id"],
                store=False,
            ),
        )
        t0, t1 = server.turn_log
        assert (t0.spec.context_tokens, t0.spec.new_input_tokens) == (0, 150)
        assert t1.spec.context_tokens == 150 + t0.spec.output_tokens
        assert t1.spec.new_input_tokens == 10


async def test_protocol_module_is_the_server_vocabulary() -> None:
    # The server's error events are the protocol module's, so clients can parse them with it.
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        (err,) = await ws_events(ws, {"type": "response.create", "input": "x"})
        assert P.parse_server_event(json.dumps(err))["error"]["param"] == "model"


@pytest.mark.live
@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_self_check_reports_lateness_never_earliness(transport: str) -> None:
    from labkit.live.selfcheck import self_check

    report = await self_check("websocket", WL, tps=4000, transport=transport)  # type: ignore[arg-type]
    assert report["turns"] == WL.turns and report["transport"] == transport
    # Deadlines are absolute and waited out in full: the server is never early against its plan.
    assert report["server_first_late_median_s"] >= 0 and report["server_done_late_median_s"] >= 0
    assert report["client_ttft_error_median_s"] >= 0
    assert report["delta_frames"] + report["coalesced_tokens"] == report["output_tokens"]
    assert report["output_tokens"] == sum(s.output_tokens for s in WL.turn_specs())
    with pytest.raises(ValueError, match="^transport"):
        await self_check("websocket", WL, transport="carrier-pigeon")  # type: ignore[arg-type]


async def test_timing_rows_match_the_turn_log() -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        await ws_events(ws, create(task(100), tools=TOOLS, generate=False, store=False))
        await ws_events(ws, create("x"))
        warm, turn = server.timing()
        assert warm["status"] == "warmup" and warm["actual_first_s"] is None
        assert turn["status"] == "completed" and turn["planned_done_s"] == 0.0  # instant: no plan waits
        assert turn["actual_done_s"] >= turn["actual_first_s"] >= 0


@pytest.mark.live
@pytest.mark.parametrize("batch", [True, False])
async def test_both_frame_writers_send_every_event_in_order(monkeypatch, batch: bool) -> None:
    # The batch writer (aiohttp's private fields) and its plain fallback (send_str) send the same stream.
    from labkit.live.server import connection, frames

    used = []

    def pick(ws):
        writer = frames.frame_writer(ws, allow_batch=batch)
        used.append(type(writer).__name__)
        return writer

    monkeypatch.setattr(connection, "frame_writer", pick)
    async with SimServer(workload=WL, tps=4000, spin_s=0) as server, websockets.connect(server.ws_url) as ws:
        events = await ws_events(ws, create(task(50), tools=TOOLS))
    assert used == ["BatchFrameWriter" if batch else "PlainFrameWriter"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed"
    assert sum(e["type"].endswith(".delta") for e in events) == server.metrics["delta_frames"] > 1
