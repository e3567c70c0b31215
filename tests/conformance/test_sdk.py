"""The official ``openai`` SDK, unmodified, against the simulator: sync and async, HTTP and WebSocket mode, with
and without the session/lanes helper; steering, warm-ups, errors and the stored-response surface."""

from __future__ import annotations

from typing import Any

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("websockets")

from openai import AsyncOpenAI, OpenAI  # noqa: E402
from openai.lib.responses_websocket import (  # noqa: E402
    AsyncResponsesWebSocketSession,
    ResponsesWebSocketLimits,
    ResponsesWebSocketSession,
)

from labkit.live.server.conformance import SIMULATOR_KEY, TIME, WEATHER, simulator, simulator_workload  # noqa: E402

pytestmark = pytest.mark.live

TOOLS = [WEATHER, TIME]
TURNS = simulator_workload().turns
LIMITS = ResponsesWebSocketLimits(
    max_lanes=8, max_events_per_lane=4096, max_events=8192, max_bytes_per_lane=16 << 20, max_bytes=32 << 20
)
TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


def outputs(response: Any) -> list[dict[str, Any]]:
    """One function_call_output per call of the response (parallel calls answered together)."""
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": f"ok {item.arguments}"}
        for item in response.output
        if item.type == "function_call"
    ]


def final_text(response: Any) -> str:
    return "".join(i.content[0].text for i in response.output if i.type == "message")


# -- HTTP ----------------------------------------------------------------------------------------------


async def test_async_http_tool_loop_with_store_and_sse(sim) -> None:
    client = AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY, max_retries=0)
    async with client:
        stream = await client.responses.create(model="m", input="Fix the bug.", tools=TOOLS, stream=True, store=True)
        response = None
        async for event in stream:
            if event.type == "response.completed":
                response = event.response
        turns = 1
        while outputs(response):
            response = await client.responses.create(
                model="m", input=outputs(response), tools=TOOLS, previous_response_id=response.id, store=True
            )
            turns += 1
        assert turns == TURNS and final_text(response)
        # The stored-response surface, through the SDK's own methods.
        got = await client.responses.retrieve(response.id)
        assert got.id == response.id and got.output_text == response.output_text
        items = await client.responses.input_items.list(response.id)
        assert [i.type for i in items.data] and all(i.type == "function_call_output" for i in items.data)
        count = await client.responses.input_tokens.count(model="m", input="four byte words!")
        assert count.input_tokens == 4
        compacted = await client.responses.compact(model="m", previous_response_id=response.id)
        assert compacted.output[-1].type == "compaction"
        restarted = await client.responses.create(model="m", input=[i.model_dump() for i in compacted.output])
        assert restarted.status == "completed"
        with pytest.raises(openai.BadRequestError):
            await client.responses.cancel(response.id)
        await client.responses.delete(response.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(response.id)


def test_sync_http_tool_loop_and_errors(sync_sim) -> None:
    with OpenAI(base_url=sync_sim.base_url, api_key=SIMULATOR_KEY, max_retries=0) as client:
        response = client.responses.create(model="m", input="Fix the bug.", tools=TOOLS, store=True)
        calls = outputs(response)
        assert calls
        # A continuation that leaves the call unanswered: the real API's 400, raised as BadRequestError.
        with pytest.raises(openai.BadRequestError) as missing:
            client.responses.create(model="m", input="never mind", previous_response_id=response.id, store=True)
        assert "No tool output found for function call" in missing.value.message
        with pytest.raises(openai.BadRequestError) as unknown:
            client.responses.create(
                model="m",
                input=[{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
                previous_response_id=response.id,
            )
        assert "No tool call found for function call output with call_id call_nope" in unknown.value.message
        turns = 1
        while calls:
            response = client.responses.create(
                model="m", input=calls, tools=TOOLS, previous_response_id=response.id, store=True
            )
            calls = outputs(response)
            turns += 1
        assert turns == TURNS and final_text(response)
    with OpenAI(base_url=sync_sim.base_url, api_key="sk-wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as auth:
            bad.responses.create(model="m", input="x")
        assert auth.value.code == "invalid_api_key"


# -- WebSocket mode ------------------------------------------------------------------------------------


async def _async_until_done(conn) -> tuple[list[str], Any]:
    types = []
    async for event in conn:
        types.append(event.type)
        if event.type in TERMINAL:
            return types, event
    raise AssertionError("connection closed before the response ended")


@pytest.mark.parametrize("store", [False, True])
async def test_async_ws_tool_loop_as_openais_example(sim, store: bool) -> None:
    # openai-python's examples/responses/websocket.py passes stream=True to create(): accepted.
    async with AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY, max_retries=0) as client:  # noqa: SIM117 (the SDK connection is opened from the client of the line above)
        async with client.responses.connect() as conn:
            await conn.response.create(model="m", tools=TOOLS, store=store, generate=False)  # warm-up, no input
            _, warm = await _async_until_done(conn)
            assert warm.type == "response.completed" and warm.response.output == []
            await conn.response.create(
                model="m",
                input="Fix the bug.",
                tools=TOOLS,
                stream=True,
                store=store,
                previous_response_id=warm.response.id,
            )
            turns = 0
            while True:
                types, done = await _async_until_done(conn)
                assert done.type == "response.completed", types
                turns += 1
                if not outputs(done.response):
                    break
                await conn.response.create(
                    model="m",
                    input=outputs(done.response),
                    tools=TOOLS,
                    stream=True,
                    store=store,
                    previous_response_id=done.response.id,
                )
    assert turns == TURNS and final_text(done.response)
    assert sim.metrics["cache_hits"] == TURNS  # every continuation (and the first, after the warm-up) hit


async def test_async_ws_default_lane_back_to_back_and_steer() -> None:
    # 500 tokens/s, not the scenarios' 2,000: the 400-token answer streams for 0.8 s, so a client slowed by a
    # busy machine still steers it mid-stream (at 2,000 a steer 0.2 s late found it fully decoded: accepted,
    # and the response completed, as the API does).
    async with simulator(tps=500.0) as sim, AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY) as client:  # noqa: SIM117 (the SDK connection is opened from the client of the line above)
        async with client.responses.connect() as conn:
            # Two creates back to back on the default lane: queued, then run in order.
            await conn.response.create(model="m", input="one")
            await conn.response.create(model="m", input="two")
            seen: list[str] = []
            while seen.count("response.completed") < 2:
                seen.append((await conn.recv()).type)
            assert "error" not in seen and "response.queued" in seen
            # Steering while the (400-token) answer streams.
            await conn.response.create(model="m", input="Write an essay.")
            steered_id = None
            events = []
            async for event in conn:
                events.append(event)
                if event.type == "response.created" and steered_id is None:
                    steered_id = event.response.id
                if event.type == "response.output_text.delta" and len(events) < 6:
                    await conn.response.steer(previous_response_id=steered_id, input="Stop; summarise.")
                if event.type == "response.completed":
                    break
    types = [e.type for e in events]
    assert "response.steer.accepted" in types
    incomplete = next(e for e in events if e.type == "response.incomplete")
    assert incomplete.response.incomplete_details.reason == "steered"
    successor = [e.response for e in events if e.type == "response.created"][1]
    assert successor.previous_response_id == steered_id
    # The steered response stopped decoding where the steer arrived: far fewer than its 400 planned tokens.
    assert incomplete.response.usage.output_tokens < 200


async def test_async_ws_session_lanes(sim) -> None:
    async with AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY) as client:  # noqa: SIM117 (the SDK connection is opened from the client of the line above)
        async with client.responses.connect(websocket_connection_options={"max_size": None}) as conn:
            async with AsyncResponsesWebSocketSession(conn, limits=LIMITS) as session:
                lanes = [session.lane("a"), session.lane("b")]
                for lane in lanes:
                    await lane.send(
                        {"type": "response.create", "model": "m", "input": "Fix it.", "tools": TOOLS, "store": False}
                    )
                finals = [await lane.get_final_response() for lane in lanes]
                assert all(r.status == "completed" and outputs(r) for r in finals)
                # Continue lane a; lane b forks from lane a's parent (a fork keeps the parent on lane a).
                await lanes[0].send(
                    {
                        "type": "response.create",
                        "model": "m",
                        "input": outputs(finals[0]),
                        "tools": TOOLS,
                        "previous_response_id": finals[0].id,
                        "store": False,
                    }
                )
                assert (await lanes[0].get_final_response()).status == "completed"
                # The default lane (no stream_id): an error from a bad continuation arrives there.
                await session.default.send(
                    {
                        "type": "response.create",
                        "model": "m",
                        "input": "x",
                        "previous_response_id": "resp_gone",
                        "store": False,
                    }
                )
                with pytest.raises(openai.lib.responses_websocket.ResponsesWebSocketError) as err:
                    await session.default.get_final_response()
                assert err.value.event.error.code == "previous_response_not_found"


def test_sync_ws_with_and_without_session(sync_sim) -> None:
    with OpenAI(base_url=sync_sim.base_url, api_key=SIMULATOR_KEY) as client:
        with client.responses.connect() as conn:
            conn.response.create(model="m", input="Fix the bug.", tools=TOOLS, stream=True, store=False)
            for event in conn:
                if event.type in TERMINAL:
                    break
            assert event.type == "response.completed" and outputs(event.response)
            conn.response.create(model="m", input="stop", previous_response_id=event.response.id, store=False)
            for err in conn:
                if err.type in TERMINAL:
                    break
            assert err.type == "error" and err.error.message.startswith("No tool output found for function call")
        with client.responses.connect() as conn, ResponsesWebSocketSession(conn, limits=LIMITS) as session:
            lane = session.lane("agent")
            lane.send(
                {"type": "response.create", "model": "m", "input": "Fix the bug.", "tools": TOOLS, "store": False}
            )
            response = lane.get_final_response(timeout=10)
            turns = 1
            while outputs(response):
                lane.send(
                    {
                        "type": "response.create",
                        "model": "m",
                        "input": outputs(response),
                        "tools": TOOLS,
                        "previous_response_id": response.id,
                        "store": False,
                    }
                )
                response = lane.get_final_response(timeout=10)
                turns += 1
            assert turns == TURNS and final_text(response)


async def test_ws_failure_and_max_output_tokens_end_like_sse() -> None:
    from labkit.live.server import Faults

    async with simulator(faults=Faults(fail_rate=1.0), instant=True) as sim:  # noqa: SIM117 (the SDK connection is opened from the client of the line above)
        async with AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY, max_retries=0) as client:
            async with client.responses.connect() as conn:
                await conn.response.create(model="m", input="x")
                _, failed = await _async_until_done(conn)
            stream = await client.responses.create(model="m", input="x", stream=True)
            sse = [e async for e in stream]
    assert failed.type == "response.failed" == sse[-1].type
    assert failed.response.error.code == sse[-1].response.error.code == "server_error"
    async with simulator(instant=True) as sim, AsyncOpenAI(base_url=sim.base_url, api_key=SIMULATOR_KEY) as client:  # noqa: SIM117 (the SDK connection is opened from the client of the line above)
        async with client.responses.connect() as conn:
            await conn.response.create(model="m", input="x", max_output_tokens=16)
            _, cut = await _async_until_done(conn)
    assert cut.type == "response.incomplete" and cut.response.incomplete_details.reason == "max_output_tokens"
    assert cut.response.usage.output_tokens == 16
