"""Behaviours only the simulator can be driven into (timed steering, fault-free sizing checks, limits), beside the
scenarios that run against the real API too."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from labkit.live.server import SimServer
from labkit.live.server.conformance import WEATHER, simulator_workload
from labkit.model import load_profile, load_workload
from labkit.wire.tokens import estimate_tokens

pytestmark = pytest.mark.live

TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


def create(input: Any, **kw: Any) -> str:
    return json.dumps({"type": "response.create", "model": "m", "input": input, "store": False, **kw})


async def until(ws: Any, terminals: int = 1) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while sum(e["type"] in TERMINAL for e in events) < terminals:
        events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return events


def calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in response["output"] if o["type"] == "function_call"]


async def test_a_rejected_continuation_evicts_its_parent_but_not_a_forks() -> None:
    async with (
        SimServer(workload=simulator_workload(), instant=True) as server,
        websockets.connect(server.ws_url) as ws,
    ):
        await ws.send(create("go", tools=[WEATHER], stream_id="a"))
        parent = (await until(ws))[-1]["response"]
        outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "ok"} for c in calls(parent)]
        # A malformed fork on lane b: rejected (4xx), echoes its lane, and lane a keeps the parent.
        await ws.send(create(outputs, previous_response_id=parent["id"], stream_id="b", bogus=1))
        (err,) = await until(ws)
        assert err["error"]["code"] == "unknown_parameter" and err["stream_id"] == "b"
        # The same mistake on lane a evicts it there: the retry finds no parent.
        await ws.send(create(outputs, previous_response_id=parent["id"], stream_id="a", bogus=1))
        await until(ws)
        await ws.send(create(outputs, previous_response_id=parent["id"], stream_id="a"))
        (gone,) = await until(ws)
        assert gone["error"]["code"] == "previous_response_not_found"
        assert server.metrics["parents_evicted"] == 1


async def test_steering_after_the_output_waits_for_the_tool_output_then_is_prepended() -> None:
    # Long post stages: the steer arrives after the function call is decoded, before response.completed.
    profile = load_profile("websocket", decode_tps=4000).with_(safety_out_s=0.3)
    async with (
        SimServer(profile, simulator_workload(), api_key=None) as server,
        websockets.connect(server.ws_url) as ws,
    ):
        await ws.send(create("go", tools=[WEATHER], store=True, parallel_tool_calls=False))
        events: list[dict[str, Any]] = []
        steer = {"type": "response.steer", "input": "Use Celsius."}
        while not events or events[-1]["type"] != "response.steer.pending":
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            events.append(event)
            if event["type"] == "response.created":
                steer["previous_response_id"] = event["response"]["id"]
            if event["type"] == "response.output_item.done":
                await ws.send(json.dumps(steer))
        types = [e["type"] for e in events]
        assert types.index("response.steer.accepted") < types.index("response.completed")
        done = next(e for e in events if e["type"] == "response.completed")["response"]
        (call,) = calls(done)
        pending = events[-1]
        assert pending["required_input"] == [
            {"type": "function_call_output", "call_id": call["call_id"], "name": call["name"]}
        ]
        assert pending["steer"]["previous_response_id"] == done["id"]
        # The explicit continuation answers the call; the steering input is prepended to its input.
        out = {"type": "function_call_output", "call_id": call["call_id"], "output": "ok"}
        await ws.send(create([out], previous_response_id=done["id"], tools=[WEATHER], store=True))
        follow = (await until(ws))[-1]["response"]
        assert follow["status"] == "completed"
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            items = (await c.get(f"/responses/{follow['id']}/input_items", params={"order": "asc"})).json()["data"]
        assert [i["type"] for i in items] == ["message", "function_call_output"]
        # Stored input items come back in the API's resource form: the message's text as an input_text part.
        assert items[0]["content"] == [{"type": "input_text", "text": "Use Celsius."}]


async def test_steering_failures_name_their_reason() -> None:
    async with (
        SimServer(workload=simulator_workload(), instant=True) as server,
        websockets.connect(server.ws_url) as ws,
    ):
        await ws.send(json.dumps({"type": "response.steer", "previous_response_id": "resp_nope", "input": "x"}))
        (unknown,) = [json.loads(await asyncio.wait_for(ws.recv(), 10))]
        assert unknown["type"] == "response.steer.failed" and unknown["error"]["code"] == "response_not_found"
        assert unknown["steer"] == {"input": "x", "previous_response_id": "resp_nope"}
        await ws.send(create("hi"))
        done = (await until(ws))[-1]["response"]
        await ws.send(json.dumps({"type": "response.steer", "previous_response_id": done["id"], "input": "x"}))
        late = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert late["error"]["code"] == "response_already_completed"
        bad = {
            "type": "response.steer",
            "previous_response_id": done["id"],
            "input": [{"role": "assistant", "content": "x"}],
        }
        await ws.send(json.dumps(bad))
        invalid = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert invalid["type"] == "response.steer.failed" and invalid["error"]["code"] == "invalid_input"
        assert server.metrics["steers_accepted"] == 0


async def test_parallel_calls_and_reasoning_follow_the_turn_specs() -> None:
    workload = load_workload("fast_test").with_(parallel_tool_calls=3.0, reasoning_tokens=200)
    profile = load_profile("websocket", decode_tps=4000)
    async with SimServer(profile, workload) as server, websockets.connect(server.ws_url) as ws:
        specs = server.engine.specs
        await ws.send(create("go", tools=[WEATHER], reasoning={"effort": "medium", "summary": "auto"}))
        events = await until(ws)
        done = events[-1]["response"]
        kinds = [o["type"] for o in done["output"]]
        # The turn's reasoning tokens, then its parallel calls, as the workload drew them.
        assert kinds == ["reasoning"] + ["function_call"] * specs[0].tool_calls
        assert done["usage"]["output_tokens_details"]["reasoning_tokens"] == specs[0].reasoning_tokens
        summary = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta")
        assert summary and done["output"][0]["summary"][0]["text"] == summary
        # The reasoning stage is decode time before the first visible delta: the server's plan includes it.
        row = server.timing()[-1]
        assert row["actual_first_s"] >= row["planned_first_s"] >= specs[0].reasoning_tokens / 4000
        # parallel_tool_calls: false gives one call.
        await ws.send(create("go", tools=[WEATHER], parallel_tool_calls=False))
        assert len(calls((await until(ws))[-1]["response"])) == 1


async def test_the_active_limit_queues_with_response_queued() -> None:
    async with (
        SimServer(load_profile("websocket", decode_tps=4000), simulator_workload(), max_active_responses=1) as server,
        websockets.connect(server.ws_url) as ws,
    ):
        await ws.send(create("one", stream_id="a"))
        await ws.send(create("two", stream_id="b"))
        events = await until(ws, 2)
    queued = [e for e in events if e["type"] == "response.queued"]
    assert [e["stream_id"] for e in queued] == ["b"]
    b = [e["type"] for e in events if e.get("stream_id") == "b"]
    assert b[:2] == ["response.queued", "response.created"] and b[-1] == "response.completed"
    assert server.metrics["responses"] == 2


async def test_compaction_sizes_the_new_chain() -> None:
    async with (
        SimServer(workload=simulator_workload(), instant=True) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        history = [{"type": "message", "role": "user", "content": "word " * 4000}]
        compacted = (await c.post("/responses/compact", json={"model": "m", "input": history})).json()
        item = compacted["output"][-1]
        assert compacted["usage"]["input_tokens"] == 5000
        assert estimate_tokens(item["encrypted_content"]) == 500  # a tenth of the conversation
        count = (await c.post("/responses/input_tokens", json={"model": "m", "input": [item]})).json()
        assert count == {"object": "response.input_tokens", "input_tokens": 500}
