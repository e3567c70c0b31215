"""langchain-openai against the simulator, unmodified: ``ChatOpenAI(use_responses_api=True)`` runs a full tool
loop (``bind_tools``, ``ToolMessage`` answers), streamed and not, with the full history or chained with
``use_previous_response_id=True``."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_openai")

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from labkit.live.server import SimServer

pytestmark = pytest.mark.live


@tool
def run_tests(path: str) -> str:
    """Run the test suite under a path."""
    return "2 passed"


async def tool_loop(llm: Any, stream: bool) -> tuple[AIMessage, int]:
    messages: list[BaseMessage] = [HumanMessage("The test under tests/ fails. Fix it.")]
    bound = llm.bind_tools([run_tests])
    calls = 0
    for _ in range(10):
        if stream:
            ai: Any = None
            async for chunk in bound.astream(messages):
                ai = chunk if ai is None else ai + chunk
        else:
            ai = await bound.ainvoke(messages)
        messages.append(ai)
        if not ai.tool_calls:
            return ai, calls
        for call in ai.tool_calls:
            assert call["name"] == "run_tests" and isinstance(call["args"].get("path"), str)
            calls += 1
            messages.append(ToolMessage(run_tests.invoke(call["args"]), tool_call_id=call["id"]))
    raise AssertionError("no final answer in 10 turns")


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("chained", [False, True], ids=["full_history", "previous_response_id"])
async def test_tool_loop(stream: bool, chained: bool) -> None:
    async with SimServer(workload="fast_test", instant=True) as server:
        llm = ChatOpenAI(
            model="gpt-5",
            base_url=server.base_url,
            api_key="sk-x",  # type: ignore[arg-type]
            use_responses_api=True,
            use_previous_response_id=chained,
            streaming=stream,
        )
        final, calls = await tool_loop(llm, stream)
        m = server.metrics
    assert final.text and calls == 4
    assert m["responses"] == 5 and m["errors"] == 0
    assert (m["store_hits"] == 4) == chained
