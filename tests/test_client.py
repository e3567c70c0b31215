"""labkit.live.client: both clients against the in-process simulator (instant unless timing matters).

The rules (what is recorded, chaining, errors, steering, queueing) run in memory, with no socket:
``MemoryTransport`` and ``MemoryHttpTransport`` (labkit.live.memory) are the same clients with their network
replaced by a pipe into the server in this process. The tests marked ``live`` test the transport itself over
loopback sockets, each with the reason.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from scripted_api import Item, Script, ScriptedApi

from labkit.live.client import HttpClient, Steer, WebSocketClient, websocket_url
from labkit.live.client.config import is_loopback, resolve_api_key, resolve_base_url
from labkit.live.memory import MemoryHttpTransport, MemoryTransport
from labkit.live.runner import TOOLS
from labkit.live.server import Faults, SimServer
from labkit.model import CacheState, TurnSpec, load_profile, load_workload, plan_ttft_s, plan_turn
from labkit.model.spans import LIVE_STAGES, SpanColumns

WORKLOAD = load_workload("fast_test")


def body(**kw):
    b = {"model": "m", "input": [{"type": "message", "role": "user", "content": "tok abc xyz foo "}], "store": False}
    b.update(kw)
    return b


@pytest.fixture
async def server():
    """A listening server, for the transport tests."""
    async with SimServer(profile="websocket", workload=WORKLOAD, instant=True) as s:
        yield s


@pytest.fixture
async def sim():
    """The same server, never listening: reached in memory."""
    s = SimServer(profile="websocket", workload=WORKLOAD, instant=True)
    yield s
    await s.stop()


# -- configuration ------------------------------------------------------------------------------------


def test_websocket_url_follows_the_sdk_rule():
    assert websocket_url("http://127.0.0.1:8765/v1") == "ws://127.0.0.1:8765/v1/responses"
    assert websocket_url("https://api.openai.com/v1") == "wss://api.openai.com/v1/responses"


def test_base_url_and_key_come_from_arguments_then_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    assert resolve_base_url(None) == "http://127.0.0.1:1/v1"
    assert resolve_base_url("http://localhost:2/v1") == "http://localhost:2/v1"
    assert resolve_api_key(None) == "env-key"
    assert resolve_api_key("arg") == "arg"
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    assert resolve_base_url(None) == "https://api.openai.com/v1"
    assert resolve_api_key(None) is None
    with pytest.raises(ValueError, match="^base_url"):
        resolve_base_url("ftp://x")
    assert is_loopback("http://127.0.0.1:1/v1") and is_loopback("http://localhost/v1")
    assert not is_loopback("https://api.openai.com/v1")


async def test_websocket_client_rejects_http_only_fields():
    client = WebSocketClient("http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="^body"):
        await client.create(body(stream=True))


# -- WebSocket mode -----------------------------------------------------------------------------------


async def test_ws_tool_turn_records_every_event_in_order(sim):
    async with MemoryTransport(sim) as client:
        ex = await client.create(body(tools=list(TOOLS)))
    assert ex.ok and ex.status == "completed"
    types = [t for _, t in ex.events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in types
    times = [t for t, _ in ex.events]
    assert times == sorted(times) and ex.t_start <= ex.t_sent <= times[0]
    # The simulated model sizes its output from the workload: the deltas' estimate is turn 0's output.
    assert ex.output_tokens == WORKLOAD.turn_specs()[0].output_tokens
    assert ex.output[0]["type"] == "function_call" and ex.output[0]["name"] in {t["name"] for t in TOOLS}
    assert ex.response_id and ex.response_id.startswith("resp_")
    assert ex.ttft_s is not None and 0 < ex.ttft_s <= ex.latency_s
    assert len(ex.inter_token_gaps()) == len(ex.delta_t) - 1


async def test_ws_spans_are_contiguous_and_use_the_live_stages(sim):
    client = MemoryTransport(sim)  # not entered: the first create opens the connection
    try:
        first = await client.create(body(tools=list(TOOLS)))
        second = await client.create(
            body(
                tools=list(TOOLS),
                previous_response_id=first.response_id,
                input=[{"type": "function_call_output", "call_id": first.output[0]["call_id"], "output": "x"}],
            )
        )
    finally:
        await client.close()
    cols = SpanColumns()
    first.add_spans(cols, t0=first.t_start, source="live", scenario="s", rollout=0, turn=0, attempt=0)
    second.add_spans(cols, t0=first.t_start, source="live", scenario="s", rollout=0, turn=1, attempt=0)
    df = cols.frame()
    assert list(df["stage"]) == ["connect", "request", "decode", "complete"] * 2
    assert set(df["stage"]) <= set(LIVE_STAGES)
    for _, turn in df.groupby("turn"):
        assert np.allclose(turn["start_s"].to_numpy()[1:], turn["end_s"].to_numpy()[:-1])
    # Turn 0 opened the socket; turn 1 reused it and continued the chain from the connection cache.
    connect = df[df["stage"] == "connect"]
    assert list(connect["cache_hit"]) == [False, True]
    assert connect["end_s"].iloc[1] == connect["start_s"].iloc[1]
    decode = df[df["stage"] == "decode"]
    assert list(decode["tokens"]) == [first.output_tokens - 1, second.output_tokens - 1]
    assert second.chained and sim.metrics["cache_hits"] == 1


async def test_ws_unknown_parent_is_an_error_and_the_socket_stays_usable(sim):
    async with MemoryTransport(sim) as client:
        ex = await client.create(body(previous_response_id="resp_unknown"))
        assert ex.status == "error" and not ex.ok
        assert ex.error_code == "previous_response_not_found"
        assert ex.error["param"] == "previous_response_id"
        again = await client.create(body())
        assert again.ok and client.connections == 1


async def test_ws_generate_false_warms_up_without_output(sim):
    async with MemoryTransport(sim) as client:
        warm = await client.create(body(tools=list(TOOLS), generate=False))
        assert warm.ok and warm.delta_t == [] and warm.output == []
        nxt = await client.create(body(tools=list(TOOLS), previous_response_id=warm.response_id, input=[]))
        assert nxt.ok and nxt.output
    cols = SpanColumns()
    warm.add_spans(cols, t0=warm.t_start, source="live", scenario="s", rollout=0, turn=0, attempt=0)
    assert list(cols.frame()["stage"]) == ["connect", "request", "decode", "complete"]


@pytest.mark.live  # transport: a real TCP connection cut mid-stream, and a new handshake after it
async def test_ws_dropped_connection_is_reported_and_the_next_create_reconnects():
    async with SimServer(
        profile="websocket", workload=WORKLOAD, instant=True, faults=Faults(drop_after_events=5)
    ) as server:
        client = WebSocketClient(server.base_url)
        ex = await client.create(body(tools=list(TOOLS)))
        assert ex.status == "dropped" and ex.error_code == "connection_closed"
        assert len(ex.events) == 5 and not client.connected
        again = await client.create(body())
        assert again.t_connected is not None and client.connections == 2
        await client.close()


async def test_ws_timeout_closes_the_socket():
    server = SimServer(profile="websocket", workload=WORKLOAD, instant=True, faults=Faults(stall_rate=1.0, stall_s=5.0))
    # In memory: the client's timeout closes its connection whatever carries it.
    client = MemoryTransport(server, timeout=0.2)
    ex = await client.create(body())
    assert ex.status == "timeout" and ex.error_code == "timeout" and not client.connected
    await client.close()


@pytest.mark.live  # transport: the HTTP upgrade refused (401) before any WebSocket frame
async def test_ws_refused_handshake_is_a_failed_exchange():
    async with SimServer(profile="websocket", workload=WORKLOAD, instant=True, api_key="secret") as server:
        bad = WebSocketClient(server.base_url, "wrong")
        ex = await bad.create(body())
        assert not ex.ok and ex.status == "dropped"
        good = WebSocketClient(server.base_url, "secret")
        assert (await good.create(body())).ok
        await good.close()


# -- HTTP ---------------------------------------------------------------------------------------------


@pytest.mark.live  # transport: one pooled TCP connection, SSE parsed off a real socket
async def test_http_sse_keep_alive_reuses_one_connection(server):
    async with HttpClient(server.base_url, keep_alive=True) as client:
        a = await client.create(body(tools=list(TOOLS)))
        b = await client.create(body(tools=list(TOOLS)))
    assert a.ok and b.ok and a.http_status == 200
    assert a.t_connected is not None and b.t_connected is None
    assert client.connections == 1
    assert "response.function_call_arguments.delta" in {t for _, t in a.events}


@pytest.mark.live  # transport: a TCP handshake per request when the pool keeps none
async def test_http_new_connection_per_request(server):
    async with HttpClient(server.base_url, keep_alive=False) as client:
        a = await client.create(body())
        b = await client.create(body())
    assert a.ok and b.ok and a.t_connected is not None and b.t_connected is not None
    assert client.connections == 2


async def test_http_json_answer_without_streaming(sim):
    async with MemoryHttpTransport(sim, stream=False) as client:
        ex = await client.create(body(tools=list(TOOLS)))
    assert ex.ok and ex.delta_t == [] and ex.output[0]["type"] == "function_call"
    assert ex.output_tokens == WORKLOAD.turn_specs()[0].output_tokens
    cols = SpanColumns()
    ex.add_spans(cols, t0=ex.t_start, source="live", scenario="s", rollout=0, turn=0, attempt=0)
    decode = cols.frame().query("stage == 'decode'").iloc[0]
    assert decode["start_s"] == decode["end_s"] and decode["tokens"] == ex.output_tokens - 1


async def test_http_chained_continuation_uses_the_store(sim):
    async with MemoryHttpTransport(sim) as client:
        a = await client.create(body(store=True, tools=list(TOOLS)))
        answer = [{"type": "function_call_output", "call_id": a.output[0]["call_id"], "output": "ok "}]
        b = await client.create(body(store=True, tools=list(TOOLS), previous_response_id=a.response_id, input=answer))
        c = await client.create(body(store=False, previous_response_id="resp_nope"))
    assert a.ok and b.ok and b.chained and sim.metrics["store_hits"] == 1
    assert c.status == "error" and c.http_status == 400 and c.error_code == "previous_response_not_found"


async def test_http_errors_keep_the_server_message(sim):
    async with MemoryHttpTransport(sim) as client:
        ex = await client.create({"input": "hi"})
    assert ex.status == "error" and ex.http_status == 400 and ex.error_code == "missing_required_parameter"
    assert ex.error["param"] == "model" and ex.error["message"].startswith("model")


async def test_http_injected_5xx_and_failed_stream():
    server = SimServer(profile="http_optimized", workload=WORKLOAD, instant=True, faults=Faults(fail_rate=1.0))
    async with MemoryHttpTransport(server) as client:
        streamed = await client.create(body())
        plain = await client.create(body(), stream=False)
    assert streamed.status == "failed" and streamed.error_code == "server_error"
    assert plain.status == "error" and plain.http_status == 500


@pytest.mark.live  # transport: the server aborts the TCP connection mid-stream
async def test_http_dropped_stream_is_reported():
    async with (
        SimServer(
            profile="http_optimized", workload=WORKLOAD, instant=True, faults=Faults(drop_after_events=4)
        ) as server,
        HttpClient(server.base_url) as client,
    ):
        ex = await client.create(body())
    assert ex.status == "dropped" and len(ex.events) == 4


async def test_http_api_key_is_sent_as_bearer(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    # In memory, the request's headers still go through the server's HTTP parser and its key check.
    server = SimServer(profile="http_optimized", workload=WORKLOAD, instant=True, api_key="secret")
    async with MemoryHttpTransport(server) as client:
        assert (await client.create(body())).ok
    async with MemoryHttpTransport(server, api_key="wrong") as client:
        ex = await client.create(body())
    assert ex.http_status == 401 and ex.status == "error"


# -- timing against the wall clock (bounded: the paced server never runs ahead of its plan) ---------


async def test_paced_stream_is_never_earlier_than_the_plan():
    profile = load_profile("websocket", decode_tps=2000.0)
    async with MemoryTransport(SimServer(profile=profile, workload=WORKLOAD)) as client:
        ex = await client.create(body(tools=list(TOOLS)))
    spec = WORKLOAD.turn_specs()[0]
    n_in = ex.request_tokens
    plan = plan_turn(profile.loopback(), TurnSpec(0, 0, n_in, spec.output_tokens, 0.0, False), CacheState())
    assert ex.ok
    assert ex.delta_t[0] - ex.t_sent >= plan_ttft_s(plan) - 1e-4
    # Token k is due (n - 1) / 2000 s after the first token's deadline (absolute deadlines: a late first
    # delta does not push the last one back, so the bound is on the last delta, not on the spacing).
    assert ex.delta_t[-1] - ex.t_sent >= plan_ttft_s(plan) + (ex.output_tokens - 1) / 2000.0 - 1e-4


@pytest.mark.live  # transport: what websockets and httpx log of a real handshake and request
async def test_the_key_never_reaches_a_debug_log(caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    async with SimServer(profile="websocket", workload=WORKLOAD, instant=True, api_key="sk-secret-key") as server:
        async with WebSocketClient(server.base_url, "sk-secret-key") as ws:
            assert (await ws.create(body())).ok
        async with HttpClient(server.base_url, "sk-secret-key") as http:
            assert (await http.create(body())).ok
    assert "> GET /v1/responses" in caplog.text  # websockets did log the handshake
    assert "sk-secret-key" not in caplog.text and "[redacted]" in caplog.text


async def test_ws_concurrent_creates_on_one_client_take_turns(sim):
    import asyncio

    async with MemoryTransport(sim) as client:
        a, b, c = await asyncio.gather(*(client.create(body()) for _ in range(3)))
    assert a.ok and b.ok and c.ok and client.connections == 1
    # One response in flight at a time: each exchange starts after the previous one ended.
    ordered = sorted((a, b, c), key=lambda ex: ex.t_start)
    assert ordered[1].t_start >= ordered[0].t_end and ordered[2].t_start >= ordered[1].t_end


def test_loopback_hosts():
    from labkit.live.netaddr import is_loopback_host

    assert all(is_loopback_host(h) for h in ("localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"))
    assert not any(is_loopback_host(h) for h in ("0.0.0.0", "10.0.0.1", "example.com", ""))


# -- what the real API may send: scripted responses (tests/scripted_api.py) ---------------------------


def _frame(ex):
    cols = SpanColumns()
    ex.add_spans(cols, t0=ex.t_start, source="live", scenario="s", rollout=0, turn=0, attempt=0)
    return cols.frame()


def _contiguous(df):
    return np.allclose(df["start_s"].to_numpy()[1:], df["end_s"].to_numpy()[:-1])


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_response_done_is_a_terminal_event(transport):
    scripts = iter([Script([Item("message", 5)], terminal="response.done"), Script(terminal="response.done")])
    api = ScriptedApi(lambda body: next(scripts))
    client = api.ws_client() if transport == "ws" else api.http_client()
    try:
        first = await client.create(body())
        second = await client.create(body())
    finally:
        await client.close()
    assert first.ok and first.status == "completed" and first.output_tokens == 5
    assert [t for _, t in first.events][-1] == "response.done"
    # The next response on the same socket is read as its own exchange: nothing of the first leaks into it.
    assert second.ok and second.events[0][1] == "response.created"


async def test_response_done_takes_its_outcome_from_the_response_status():
    scripts = iter(
        [
            Script(terminal="response.done", status="incomplete", incomplete_reason="max_output_tokens"),
            Script(terminal="response.done", status="failed"),
        ]
    )
    async with ScriptedApi(lambda b: next(scripts)).ws_client() as client:
        cut = await client.create(body())
        failed = await client.create(body())
    assert cut.status == "incomplete" and cut.ok and cut.incomplete_reason == "max_output_tokens"
    assert failed.status == "failed" and not failed.ok and failed.error_code == "response_failed"


async def test_queued_response_gets_a_queue_span():
    async with ScriptedApi(lambda b: Script(queued_s=0.03)).ws_client() as client:
        ex = await client.create(body())
    assert ex.ok and ex.queued and ex.t_queued < ex.t_dequeued <= ex.t_first_delta
    df = _frame(ex)
    assert list(df["stage"]) == ["connect", "queue", "request", "decode", "complete"]
    assert _contiguous(df)
    queue = df[df["stage"] == "queue"].iloc[0]
    assert queue["end_s"] - queue["start_s"] >= 0.03 - 1e-3
    assert set(df["stage"]) <= set(LIVE_STAGES)


async def test_reasoning_item_becomes_a_reasoning_span_with_the_usage_tokens():
    script = Script([Item("reasoning"), Item("function_call", 6)], reasoning_tokens=37, pace_s=0.002)
    async with ScriptedApi(lambda b: script).ws_client() as client:
        ex = await client.create(body())
    assert ex.ok and ex.reasoning_tokens == 37 and ex.output_tokens == 6
    df = _frame(ex)
    assert list(df["stage"]) == ["connect", "request", "reasoning", "decode", "complete"] and _contiguous(df)
    reasoning = df[df["stage"] == "reasoning"].iloc[0]
    assert reasoning["tokens"] == 37 and reasoning["end_s"] > reasoning["start_s"]
    # The reasoning item is not visible output: TTFT is still the first argument delta.
    assert df[df["stage"] == "decode"]["start_s"].iloc[0] == pytest.approx(ex.delta_t[0] - ex.t_start)


async def test_reasoning_tokens_without_a_streamed_item_are_kept_at_the_first_output():
    from labkit.live.client import Exchange

    ex = Exchange(t_start=1.0, t_sent=1.0)
    response = {"id": "resp_1", "output": [], "usage": {"output_tokens_details": {"reasoning_tokens": 12}}}
    ex.finish(2.0, response, "completed")
    df = _frame(ex)
    row = df[df["stage"] == "reasoning"].iloc[0]
    assert row["tokens"] == 12 and row["start_s"] == row["end_s"] == 1.0


async def test_parallel_function_calls_are_all_recorded():
    items = [Item("function_call", 6), Item("function_call", 10, "read_file"), Item("function_call", 3)]
    async with ScriptedApi(lambda b: Script(items)).http_client() as client:
        ex = await client.create(body())
    assert ex.ok and [c["name"] for c in ex.function_calls] == ["run_shell", "read_file", "run_shell"]
    assert len({c["call_id"] for c in ex.function_calls}) == 3
    # Counted item by item (the deltas of three items are three texts, not one).
    assert ex.output_tokens == 6 + 10 + 3 and set(ex.delta_index) == {0, 1, 2}
    assert ex.summary()["function_calls"] == 3


async def test_ws_steer_is_accepted_and_the_successor_is_followed():
    steering = ({"type": "message", "role": "user", "content": "stop that, try this"},)
    api = ScriptedApi(lambda b: Script([Item("message", 200)]), successor=Script([Item("message", 7)]))
    async with api.ws_client() as client:
        ex = await client.create(body(), steer=Steer(steering, after_tokens=3))
        nxt = await client.follow(input=steering)
        sent = [m for m in api.received if m["type"] == "response.steer"]
    assert ex.ok and ex.steered and ex.steer_outcome == "accepted" and ex.t_steer_sent is not None
    assert 3 <= ex.output_tokens < 200
    assert sent == [{"type": "response.steer", "previous_response_id": ex.response_id, "input": list(steering)}]
    assert nxt.ok and nxt.output_tokens == 7 and nxt.chained and nxt.response["previous_response_id"] == ex.response_id
    assert nxt.request_tokens == 5 and nxt.t_sent == nxt.t_start
    with pytest.raises(ValueError, match="^input"):
        Steer(())


async def test_a_steer_the_response_outran_is_answered_before_the_exchange_ends():
    # One token, unpaced: the response is over before the steer reaches the server, which refuses it.
    steering = ({"type": "message", "role": "user", "content": "late"},)
    async with ScriptedApi(lambda b: Script([Item("message", 1)])).ws_client() as client:
        ex = await client.create(body(), steer=Steer(steering, after_tokens=1))
        t = time.perf_counter()
        plain = await client.create(body())
        elapsed = time.perf_counter() - t
    # The answer was awaited, so the outcome is known (never "unanswered"), and it is not the next exchange's.
    assert ex.steer_outcome in ("failed", "accepted") and ex.t_steer_sent is not None
    assert plain.steer_outcome is None and plain.steer_events == []
    # An exchange without a steer never waits for one.
    assert plain.ok and elapsed < 1.0


async def test_follow_without_a_socket_is_a_dropped_exchange():
    ex = await WebSocketClient("http://127.0.0.1:9/v1").follow()
    assert ex.status == "dropped" and ex.error_code == "connection_closed"


async def test_ws_pipelined_creates_queue_on_the_default_lane():
    profile = load_profile("websocket", decode_tps=4000.0)
    async with MemoryTransport(SimServer(profile=profile, workload=WORKLOAD)) as client:
        exs = await client.pipeline([body(), body(), body(model=""), body()])
    first, second, bad, fourth = exs
    assert [ex.status for ex in exs] == ["completed", "completed", "error", "completed"]
    assert bad.error_code is not None and bad.error["param"] == "model" and bad.response is None
    # FIFO: the first ran at once, the others waited in the lane's queue behind the ones before them.
    assert not first.queued and second.queued and fourth.queued
    assert first.t_end <= second.t_dequeued + 1e-3 and second.t_end <= fourth.t_dequeued + 1e-3
    assert len({ex.response_id for ex in (first, second, fourth)}) == 3
    # Each exchange got its own whole output (the sizes of the same first turn).
    assert all(ex.output_tokens == first.output_tokens for ex in (second, fourth))
    cols = SpanColumns()
    second.add_spans(cols, t0=second.t_start, source="live", scenario="s", rollout=0, turn=1, attempt=0)
    df = cols.frame()
    assert list(df["stage"]) == ["connect", "queue", "request", "decode", "complete"] and _contiguous(df)
    queue = df[df["stage"] == "queue"].iloc[0]
    # It waited about as long as the first response took.
    assert queue["end_s"] - queue["start_s"] >= 0.5 * first.latency_s
