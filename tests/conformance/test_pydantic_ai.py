"""pydantic-ai against the simulator, unmodified: a full tool loop over HTTP (JSON and streamed), chained with
``openai_previous_response_id='auto'``, and over WebSocket mode (``openai_transport='websocket'``)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from openai import AsyncOpenAI
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings
from pydantic_ai.providers.openai import OpenAIProvider

from labkit.live.server import SimServer

pytestmark = pytest.mark.live


def make_agent(base_url: str, **settings: Any) -> tuple[Agent[None, str], list[str]]:
    ran: list[str] = []
    model = OpenAIResponsesModel(
        "gpt-5", provider=OpenAIProvider(openai_client=AsyncOpenAI(base_url=base_url, api_key="sk-x"))
    )
    agent = Agent(model, instructions="Fix the failing test.", model_settings=OpenAIResponsesModelSettings(**settings))

    @agent.tool_plain
    def run_tests(path: str) -> str:
        """Run the test suite under a path."""
        ran.append(path)
        return "2 passed"

    return agent, ran


@pytest.mark.parametrize("chained", [False, True], ids=["full_history", "previous_response_id"])
async def test_tool_loop_over_http(chained: bool) -> None:
    settings: dict[str, Any] = {"openai_previous_response_id": "auto"} if chained else {}
    async with SimServer(workload="fast_test", instant=True) as server:
        agent, ran = make_agent(server.base_url, **settings)
        result = await agent.run("The test under tests/ fails.")
        m = server.metrics
    # fast_test: 4 tool-calling turns, then the answer.
    assert result.output and len(ran) == 4
    assert m["responses"] == 5 and m["errors"] == 0
    assert (m["store_hits"] > 0) == chained


async def test_streamed_tool_loop() -> None:
    async with SimServer(workload="fast_test", instant=True) as server:
        agent, ran = make_agent(server.base_url)
        async with agent.run_stream("The test under tests/ fails.") as run:
            text = await run.get_output()
    assert text and len(ran) == 4


async def test_tool_loop_over_websocket_mode() -> None:
    async with SimServer(workload="fast_test", tps=4000) as server:
        agent, ran = make_agent(server.base_url, openai_transport="websocket", openai_previous_response_id="auto")
        async with agent:
            result = await agent.run("The test under tests/ fails.")
        m = server.metrics
    assert result.output and len(ran) == 4
    assert m["connections"] >= 1 and m["cache_hits"] >= 3 and m["errors"] == 0
