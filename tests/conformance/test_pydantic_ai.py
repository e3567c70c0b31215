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


async def test_two_concurrent_runs_share_one_socket_on_two_stream_id_lanes() -> None:
    import asyncio

    from pydantic_ai.profiles.openai import OpenAIModelProfile

    from labkit.live.testing import ResponsesApi

    with ResponsesApi(workload="fast_test", instant=False, tps=4000) as api:
        model = OpenAIResponsesModel(
            "gpt-5",
            provider=OpenAIProvider(openai_client=AsyncOpenAI(base_url=api.base_url, api_key="sk-x")),
            # pydantic-ai turns lanes on for api.openai.com only; the simulator routes events by stream_id too.
            profile=OpenAIModelProfile(openai_responses_supports_websocket_stream_id=True),
        )
        agent = Agent(
            model,
            model_settings=OpenAIResponsesModelSettings(
                openai_transport="websocket", openai_previous_response_id="auto"
            ),
        )

        @agent.tool_plain
        def run_tests(path: str) -> str:
            """Run the test suite under a path."""
            return "2 passed"

        async with agent:
            first, second = await asyncio.gather(agent.run("Fix tests/a."), agent.run("Fix tests/b."))
        lanes = {r.stream_id for r in api.requests}
        m = api.metrics
    assert first.output and second.output
    # The first run takes the default lane, the second a named one (pydantic-ai's "lane-1").
    assert len(lanes) == 2 and len(lanes - {None}) == 1, lanes
    assert m["connections"] == 1 and m["responses"] == 10 and m["errors"] == 0
