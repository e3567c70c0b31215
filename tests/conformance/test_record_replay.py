"""Record a session through ``labkit record``'s proxy against a local upstream (a SimServer on loopback), then
replay it with ``labkit serve --replay``'s server: the official SDK and the Agents SDK, WebSocket mode and HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openai import APIStatusError, AsyncOpenAI, BadRequestError

from labkit.cli import main as cli
from labkit.live.proxy import RecordingProxy
from labkit.live.recording import RECORDING_FILE, SPANS_FILE, Recording
from labkit.live.server import SimServer
from labkit.live.server.replay import ReplayServer
from labkit.traces import load_trace

pytest.importorskip("agents")
pytestmark = pytest.mark.live

KEY = "sk-upstream-secret-0123456789"
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "run_tests",
        "description": "Run the test suite under a path.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
]
DONE = ("response.completed", "response.failed", "response.incomplete", "error")


async def ws_loop(base_url: str) -> list[tuple[str, str]]:
    """A tool loop over WebSocket mode: (response id, output text or call arguments) per turn."""
    client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    seen: list[tuple[str, str]] = []
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-5", input="Fix the failing test.", tools=TOOLS)
        while True:
            async for event in conn:
                if event.type in DONE:
                    break
            assert event.type == "response.completed", event
            calls = [o for o in event.response.output if o.type == "function_call"]
            seen.append((event.response.id, "".join(c.arguments for c in calls) or event.response.output_text))
            if not calls:
                return seen
            outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "2 passed"} for c in calls]
            await conn.response.create(
                model="gpt-5",
                input=outputs,
                tools=TOOLS,
                previous_response_id=event.response.id,  # type: ignore[arg-type]
            )


async def http_loop(base_url: str) -> list[tuple[str, str]]:
    """A tool loop over HTTP: SSE turns, the last one as JSON, then the stored input items."""
    client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    seen: list[tuple[str, str]] = []
    body: dict[str, Any] = {"model": "gpt-5", "input": "Fix it over HTTP.", "tools": TOOLS}
    for turn in range(10):
        if turn < 2:
            async with client.responses.stream(**body) as stream:
                response = await stream.get_final_response()
        else:
            response = await client.responses.create(**body)
        calls = [o for o in response.output if o.type == "function_call"]
        seen.append((response.id, "".join(c.arguments for c in calls) or response.output_text))
        if not calls:
            break
        outputs = [{"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in calls]
        body = {"model": "gpt-5", "input": outputs, "tools": TOOLS, "previous_response_id": response.id}
    items = await client.responses.input_items.list(response.id)
    seen.append(("input_items", items.data[0].type))
    return seen


def _files_text(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.rglob("*") if p.is_file())


async def test_record_then_replay_with_the_official_sdk(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    async with (
        SimServer(workload="fast_test", tps=4000, api_key=KEY) as upstream,
        RecordingProxy(upstream.base_url, out) as proxy,
    ):
        live_ws = await ws_loop(proxy.base_url)
        live_http = await http_loop(proxy.base_url)
    # Never the key, anywhere in the recording.
    assert KEY not in _files_text(out) and "Bearer" not in _files_text(out)
    rec = Recording.read(out)
    creates = [e for e in rec.exchanges if e.is_create]
    assert len(creates) == len(live_ws) + len(live_http) - 1
    assert all(e.t_end >= e.t_sent for e in rec.exchanges)
    assert {e.transport for e in creates} == {"websocket", "http"}
    # A normal trace: two rollouts (one per conversation) with their turns.
    trace = load_trace(out)
    assert len(trace.sessions) == 2
    assert sorted(len(s.calls) for s in trace.sessions) == sorted([len(live_ws), len(live_http) - 1])
    assert cli(["replay", str(out / SPANS_FILE)]) == 0

    async with ReplayServer(out, timing="instant") as replay:
        assert await ws_loop(replay.base_url) == live_ws
        assert await http_loop(replay.base_url) == live_http
        # A request that was never recorded fails loudly, naming where it differs.
        client = AsyncOpenAI(base_url=replay.base_url, api_key="sk-other", max_retries=0)
        with pytest.raises(BadRequestError) as exc:
            await client.responses.create(model="gpt-5", input="Something else.", tools=TOOLS)  # type: ignore[arg-type]
        assert exc.value.code == "replay_mismatch" and "differs at input" in str(exc.value)
        assert replay.mismatches


async def test_recorded_timing_is_kept_on_replay(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    async with (
        SimServer(workload="fast_test", tps=500, api_key=KEY) as upstream,
        RecordingProxy(upstream.base_url, out) as proxy,
    ):
        await ws_loop(proxy.base_url)
    first = next(e for e in Recording.read(out).exchanges if e.is_create)
    recorded = first.events[-1].t - first.t_sent
    async with ReplayServer(out, timing="recorded") as replay:
        import time

        t0 = time.perf_counter()
        await ws_loop(replay.base_url)
        took = time.perf_counter() - t0
    # A loose bound (no timing assertion beyond "it waited at all"): the first turn alone took `recorded`.
    assert took >= recorded * 0.5


@pytest.mark.parametrize("websocket", [True, False], ids=["websocket", "http"])
async def test_record_then_replay_an_agents_sdk_run(tmp_path: Path, websocket: bool) -> None:
    from agents import Agent, RunConfig, Runner, function_tool
    from agents.models.openai_provider import OpenAIProvider

    ran: list[str] = []

    @function_tool
    def run_tests(path: str) -> str:
        """Run the test suite under a path."""
        ran.append(path)
        return "2 passed"

    async def run(base_url: str) -> str:
        provider = OpenAIProvider(
            openai_client=AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0),
            use_responses=True,
            use_responses_websocket=websocket,
        )
        agent = Agent(name="fixer", instructions="Fix the failing test.", tools=[run_tests], model="gpt-5")
        result = await Runner.run(
            agent, "The test fails.", run_config=RunConfig(model_provider=provider, tracing_disabled=True)
        )
        return str(result.final_output)

    out = tmp_path / "rec"
    async with (
        SimServer(workload="fast_test", tps=4000, api_key=KEY) as upstream,
        RecordingProxy(upstream.base_url, out) as proxy,
    ):
        live = await run(proxy.base_url)
    live_calls = list(ran)
    assert KEY not in _files_text(out)
    ran.clear()
    async with ReplayServer(out, timing="instant") as replay:
        replayed = await run(replay.base_url)
        assert not replay.mismatches
    assert replayed == live and ran == live_calls and len(ran) == 4


def test_cli_record_and_serve_replay_validate_their_input(tmp_path: Path, capsys) -> None:
    assert cli(["record", "--upstream", "ftp://x", "--out", str(tmp_path)]) == 2
    assert "upstream" in capsys.readouterr().err
    assert cli(["serve", "--replay", str(tmp_path / "nothing")]) == 2
    assert RECORDING_FILE in capsys.readouterr().err
    (tmp_path / RECORDING_FILE).write_text('{"labkit_recording": 1}\n{"seq": 1}\n')
    assert cli(["serve", "--replay", str(tmp_path)]) == 2
    assert f"{RECORDING_FILE}:2" in capsys.readouterr().err


async def test_an_unreachable_upstream_is_a_502_the_agent_sees(tmp_path: Path) -> None:
    async with RecordingProxy("http://127.0.0.1:9/v1", tmp_path / "rec") as proxy:
        client = AsyncOpenAI(base_url=proxy.base_url, api_key=KEY, max_retries=0)
        with pytest.raises(APIStatusError) as exc:
            await client.responses.create(model="m", input="x")
    assert exc.value.status_code == 502 and "upstream" in str(exc.value)
    assert Recording.read(tmp_path / "rec").exchanges == []
