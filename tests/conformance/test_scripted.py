"""A scripted session end to end: the official SDK (WebSocket mode and HTTP/SSE) and the Agents SDK (both of its
transports) run the tool loop the script dictates; a request the script cannot answer gets a script_mismatch."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from openai import AsyncOpenAI, BadRequestError, InternalServerError

from labkit.live.server import SimServer
from labkit.live.server.script import Call, Failure, Rule, Script, Step, When

pytest.importorskip("agents")
pytestmark = pytest.mark.live

TOOLS = [
    {
        "type": "function",
        "name": "run_tests",
        "description": "Run the test suite under a path.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": False,
        },
    }
]
#: First call run_tests on tests/ (reasoning first); a failing run is retried on tests/unit; a passing one ends it.
SCRIPT = Script(
    turns=(Step(calls=(Call("run_tests", {"path": "tests/"}),), reason=32),),
    rules=(
        Rule(When(tool_output="FAILED"), Step(calls=(Call("run_tests", {"path": "tests/unit"}),))),
        Rule(When(tool_output="passed"), Step(say="fixed")),
    ),
)
DONE = ("response.completed", "response.failed", "response.incomplete", "error")


def _calls(response: Any) -> list[Any]:
    return [item for item in response.output if item.type == "function_call"]


async def test_official_sdk_over_websocket_follows_the_script() -> None:
    async with SimServer(workload="fast_test", tps=4000, script=SCRIPT) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0)
        ran: list[dict[str, Any]] = []
        async with client.responses.connect() as conn:
            await conn.response.create(model="gpt-5", input="Fix the failing test.", tools=TOOLS)  # type: ignore[arg-type]
            results = iter(["1 FAILED", "3 passed"])
            while True:
                async for event in conn:
                    if event.type in DONE:
                        break
                assert event.type == "response.completed", event
                calls = _calls(event.response)
                if not calls:
                    break
                ran += [json.loads(c.arguments) for c in calls]
                outputs = [
                    {"type": "function_call_output", "call_id": c.call_id, "output": next(results)} for c in calls
                ]
                await conn.response.create(
                    model="gpt-5",
                    input=outputs,  # type: ignore[arg-type]
                    tools=TOOLS,  # type: ignore[arg-type]
                    previous_response_id=event.response.id,
                )
        assert ran == [{"path": "tests/"}, {"path": "tests/unit"}]
        assert event.response.output_text == "fixed"
        assert event.response.usage is not None and event.response.usage.output_tokens >= 1


async def test_official_sdk_over_http_sees_scripted_failures_and_mismatches(caplog) -> None:
    script = Script(turns=(Step(say="hello"),), rules=(Rule(When(user="crash"), Step(fail=Failure(500))),))
    async with SimServer(workload="fast_test", instant=True, script=script) as server:
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0)
        first = await client.responses.create(model="m", input="hi", tools=TOOLS)  # type: ignore[arg-type]
        assert first.output_text == "hello"
        with pytest.raises(InternalServerError):
            await client.responses.create(model="m", input="please crash")
        caplog.set_level(logging.WARNING, logger="labkit.live.server")
        with pytest.raises(BadRequestError) as exc:
            stream = await client.responses.create(model="m", input="more", previous_response_id=first.id, stream=True)
            async for _ in stream:
                pass
        assert "script: turn 1: no rule matches and the script has 1 turns" in str(exc.value)
        assert exc.value.code == "script_mismatch"
        assert any("script: turn 1" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "http"])
async def test_agents_sdk_runs_the_scripted_tool_loop(websocket: bool) -> None:
    from agents import Agent, RunConfig, Runner, function_tool
    from agents.models.openai_provider import OpenAIProvider

    ran: list[str] = []

    @function_tool
    def run_tests(path: str) -> str:
        """Run the test suite under a path."""
        ran.append(path)
        return "3 passed"

    script = Script(turns=(Step(calls=(Call("run_tests", {"path": "tests/"}),)), Step(say="fixed")))
    async with SimServer(workload="fast_test", tps=4000, script=script) as server:
        provider = OpenAIProvider(
            openai_client=AsyncOpenAI(base_url=server.base_url, api_key="sk-x"),
            use_responses=True,
            use_responses_websocket=websocket,
        )
        agent = Agent(name="fixer", instructions="Fix the failing test.", tools=[run_tests], model="gpt-5")
        result = await Runner.run(
            agent, "The test fails.", run_config=RunConfig(model_provider=provider, tracing_disabled=True)
        )
    assert ran == ["tests/"] and result.final_output == "fixed"


async def test_scripted_drop_stream_failure_and_incomplete_over_websocket() -> None:
    import websockets

    script = Script(
        turns=(Step(say="x"),),
        rules=(
            Rule(When(user="drop"), Step(say="never", drop=True)),
            Rule(When(user="fail"), Step(say="never", fail=Failure(stream=True))),
            Rule(When(user="cut"), Step(say="a longer answer than the client gets", incomplete=True)),
        ),
    )
    async with SimServer(workload="fast_test", instant=True, script=script) as server:

        async def last_event(text: str) -> dict[str, Any]:
            async with websockets.connect(server.ws_url) as ws:
                await ws.send(json.dumps({"type": "response.create", "model": "m", "input": text}))
                events = []
                try:
                    while not events or events[-1]["type"] not in DONE:
                        events.append(json.loads(await ws.recv()))
                except websockets.ConnectionClosed:
                    return {"type": "closed", "after": [e["type"] for e in events]}
                return events[-1]

        dropped = await last_event("drop")
        assert dropped == {"type": "closed", "after": ["response.created", "response.in_progress"]}
        failed = await last_event("fail")
        assert failed["type"] == "response.failed" and failed["response"]["error"]["code"] == "server_error"
        cut = await last_event("cut")
        assert cut["type"] == "response.incomplete"
        assert cut["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
