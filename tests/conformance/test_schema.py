"""Every object the simulator sends, checked against OpenAI's published OpenAPI spec and the SDK's models.

Runs every conformance scenario (raw ``websockets``/``httpx``, their transcripts capture every message) and a
matrix of requests over SSE, JSON and WebSocket (text, tools, parallel calls, reasoning with a summary and
encrypted content, ``max_output_tokens``, an injected failure, a chained tool loop, the stored-response
surface), and validates each captured object: response bodies, stored items, SSE and WebSocket events, errors.
The spec file and its source commit: ``tests/schema/SOURCE.md``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from openapi_schema import check, spec

from labkit.live.server import Faults, SimServer
from labkit.live.server.conformance import SCENARIOS, WEATHER, Scenario, Target, run_scenario, simulator_workload

pytestmark = pytest.mark.live

#: Steering events (``response.steer.*``) are newer than the vendored spec: only the SDK's models check them.
_SDK_ONLY = ("response.steer.",)


def event_errors(event: dict[str, Any], via: str) -> list[str]:
    kind = str(event.get("type"))
    if via == "ws" and kind == "error":
        return check(event, "ResponseWsError", sdk="-")
    if kind.startswith(_SDK_ONLY):
        return check(event, "-", sdk="ResponsesServerEvent")
    if via == "ws":
        return check(event, "ResponsesWebSocketStreamEvent", sdk="ResponsesServerEvent")
    return check(event, "ResponseStreamEvent")


def body_errors(method: str, path: str, status: int, body: Any) -> list[str]:
    """An HTTP answer against the schema of its endpoint (``path`` below ``/v1``)."""
    if status >= 400:
        return check(body, "ErrorResponse", sdk="-")
    if method == "DELETE":
        return [] if body.get("deleted") is True else [f"DELETE {path}: {body}"]
    if path.endswith("/input_items") or "/input_items?" in path:
        return check(body, "ResponseItemList")
    if path.endswith("/compact"):
        # The SDK's CompactedResponse types its output as output items, but the spec's own example returns the
        # kept user messages with input_text parts, which that union cannot hold: the spec alone checks it.
        return check(body, "CompactResource", sdk="-")
    if path.endswith("/input_tokens"):
        return check(body, "TokenCountsResource")
    return check(body, "Response")


def transcript_errors(transcript: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> tuple[int, list[str]]:
    checked, errors = 0, []
    request: dict[str, Any] = {}
    for entry in transcript:
        if entry["dir"] == "send":
            request = entry
            continue
        if entry["via"] in ("ws", "sse"):
            errors += event_errors(entry["data"], entry["via"])
        elif entry["via"] == "http" and request.get("path"):
            errors += body_errors(request["method"], request["path"], entry["status"], entry["data"])
        else:
            continue
        checked += 1
    return checked, errors


def test_the_vendored_spec_is_the_responses_subset() -> None:
    doc = spec()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["x-source"]["commit"]
    for name in ("Response", "ResponseStreamEvent", "ResponsesWebSocketStreamEvent", "ResponseItemList"):
        assert name in doc["components"]["schemas"]


def test_the_checks_can_fail() -> None:
    assert check({"id": "resp_1", "object": "response"}, "Response")  # required fields missing
    item = {"type": "message", "role": "user", "content": "hi", "id": "msg_1"}
    assert check(
        {"object": "list", "data": [item], "first_id": "msg_1", "last_id": "msg_1", "has_more": False},
        "ResponseItemList",
    )
    ok = {"type": "error", "error": {"type": "t", "code": None, "message": "m", "param": None}, "status": 400}
    assert not check(ok, "ResponseWsError", sdk="-")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_every_object_of_every_scenario_validates(sim: SimServer, scenario: Scenario) -> None:
    result = await run_scenario(Target(sim.base_url), scenario, timeout_s=30)
    assert result.ok, result.failures
    checked, errors = transcript_errors(result.transcript)
    assert checked > 0
    assert not errors, "\n".join(errors[:20])


# -- the same requests over SSE, JSON and WebSocket --------------------------------------------------------------

_REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"input": "Say hello."},
    "tools": {"input": "Weather in Paris?", "tools": [WEATHER]},
    "tool_no_strict": {"input": "Weather?", "tools": [{**WEATHER, "strict": None}]},
    "single_call": {"input": "Weather?", "tools": [WEATHER], "parallel_tool_calls": False},
    "reasoning": {
        "input": "Think.",
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    },
    "incomplete": {"input": "Long.", "max_output_tokens": 16},
    "settings": {
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "instructions": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.9,
        "truncation": "auto",
        "text": {"format": {"type": "text"}, "verbosity": "low"},
        "tool_choice": "auto",
        "metadata": {"k": "v"},
        "user": "u1",
    },
}


def _tool_free(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


async def _sse(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    events = []
    async with client.stream("POST", "/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


@pytest.mark.parametrize("name", list(_REQUESTS))
async def test_each_request_shape_validates_over_sse_json_and_websocket(name: str) -> None:
    body = {"model": "gpt-5-mini", **_tool_free(_REQUESTS[name]), "store": True}
    errors: list[str] = []
    async with (
        SimServer(workload=simulator_workload(), instant=True) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
    ):
        for event in await _sse(client, body):
            errors += event_errors(event, "sse")
        r = await client.post("/responses", json=body)
        errors += body_errors("POST", "/responses", r.status_code, r.json())
        rid = r.json()["id"]
        for path in (f"/responses/{rid}", f"/responses/{rid}/input_items"):
            got = await client.get(path)
            errors += body_errors("GET", path, got.status_code, got.json())
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "response.create", **body, "stream_id": "lane-1"}))
            while True:
                event = json.loads(await ws.recv())
                errors += event_errors(event, "ws")
                if event["type"] in ("response.completed", "response.incomplete", "response.failed", "error"):
                    break
    assert not errors, "\n".join(errors[:20])


async def test_a_chained_tool_loop_and_a_failure_validate_on_every_transport() -> None:
    errors: list[str] = []
    async with (
        SimServer(workload=simulator_workload(), instant=True, faults=Faults(fail_rate=0.0)) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=30) as client,
    ):
        body: dict[str, Any] = {"model": "m", "input": "go", "tools": [WEATHER]}
        for _ in range(4):  # the workload's turns: calls, then the answer
            events = await _sse(client, body)
            errors += [e for ev in events for e in event_errors(ev, "sse")]
            response = events[-1]["response"]
            calls = [o for o in response["output"] if o["type"] == "function_call"]
            if not calls:
                break
            outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "sunny"} for c in calls]
            body = {"model": "m", "input": outputs, "tools": [WEATHER], "previous_response_id": response["id"]}
            items = await client.get(f"/responses/{response['id']}/input_items")
            errors += body_errors("GET", "/input_items", items.status_code, items.json())
        last = await client.get(f"/responses/{response['id']}/input_items", params={"order": "asc"})
        errors += body_errors("GET", "/input_items", last.status_code, last.json())
        assert any(i["type"] == "function_call_output" for i in last.json()["data"]) or not calls
    async with SimServer(workload=simulator_workload(), instant=True, faults=Faults(fail_rate=1.0)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            for event in await _sse(client, {"model": "m", "input": "x"}):
                errors += event_errors(event, "sse")
            r = await client.post("/responses", json={"model": "m", "input": "x"})
            errors += body_errors("POST", "/responses", r.status_code, r.json())
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"type": "response.create", "model": "m", "input": "x"}))
            failed = json.loads(await ws.recv())
            while failed["type"] != "response.failed":
                errors += event_errors(failed, "ws")
                failed = json.loads(await ws.recv())
            errors += event_errors(failed, "ws")
    assert not errors, "\n".join(errors[:20])
