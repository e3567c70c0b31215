"""Faults across 1,000 live rollouts: seeded drops mid-stream, stalls, cache evictions and 5xx.

Every rollout must complete through reconnects and full-context fallbacks with its whole transcript, and
its spans must record every fallback (the retry's rows carry ``attempt`` > 0) so notebooks can show the
cost. The server runs instantly (no pacing) with a small workload and no tool time, so 1,000 rollouts fit
in well under a minute; stalls outlast the client's timeout on purpose.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest

from labkit.live.runner import RolloutResult, run_rollouts
from labkit.live.server import Faults, SimServer
from labkit.model import load_workload

pytestmark = pytest.mark.live

WORKLOAD = load_workload(
    "fast_test",
    initial_context_tokens=300,
    tool_output_tokens=40,
    output_tokens=12,
    final_output_tokens=16,
    tool_time_median_s=0.0,
)
FAULTS = Faults(seed=6, drop_rate=0.04, stall_rate=0.01, stall_s=3.0, evict_rate=0.05, fail_rate=0.04)
#: (transport, rollouts): 1,000 in all, over both transports and both HTTP chaining modes.
PLAN = (("ws", 500), ("http", 300), ("http-chained", 200))
CONCURRENCY = 40
CLIENT_TIMEOUT_S = 1.5
MAX_ATTEMPTS = 8


def _check_transcript(res: RolloutResult) -> None:
    """Nothing lost: the task, then per turn the model's output and (but last) the tool's output."""
    items = res.transcript
    assert items[0]["type"] == "message" and items[0]["role"] == "user"
    calls = [i for i in items if i.get("type") == "function_call"]
    outputs = [i for i in items if i.get("type") == "function_call_output"]
    finals = [i for i in items if i.get("type") == "message" and i.get("role") == "assistant"]
    assert len(calls) == WORKLOAD.turns - 1 and len(outputs) == WORKLOAD.turns - 1 and len(finals) == 1
    # Each tool output answers the call just before it, in order.
    seq = [i for i in items[1:] if i.get("type") in ("function_call", "function_call_output")]
    for call, out in zip(seq[::2], seq[1::2], strict=True):
        assert call["type"] == "function_call" and out["type"] == "function_call_output"
        assert out["call_id"] == call["call_id"]
    assert items[-1] is finals[0]


def _check_spans(res: RolloutResult) -> None:
    spans = res.spans
    assert set(spans["turn"]) == set(range(WORKLOAD.turns))
    retried = spans[spans["attempt"] > 0][["turn", "attempt"]].drop_duplicates()
    expected = {(f.turn, f.attempt + 1) for f in res.fallbacks}
    # Each fallback has the retry's spans, and no retry spans exist without a fallback.
    assert set(map(tuple, retried.to_numpy().tolist())) == expected
    for f in res.fallbacks:
        # The failed attempt left its own rows too: its cost stays in the table.
        assert ((spans["turn"] == f.turn) & (spans["attempt"] == f.attempt)).any()


async def test_thousand_rollouts_survive_faults() -> None:
    async with SimServer("websocket", WORKLOAD, instant=True, faults=FAULTS, seed=0) as server:

        async def group(transport: str, n: int) -> list[RolloutResult]:
            return await run_rollouts(
                transport,
                WORKLOAD,
                rollouts=n,
                concurrency=CONCURRENCY,
                base_url=server.base_url,
                max_attempts=MAX_ATTEMPTS,
                timeout=CLIENT_TIMEOUT_S,
                ping_interval=None,
            )

        groups = await asyncio.wait_for(asyncio.gather(*(group(t, n) for t, n in PLAN)), timeout=240)
        metrics = server.metrics
    results = [r for g in groups for r in g]
    assert len(results) == 1000
    codes: collections.Counter[str] = collections.Counter()
    by_transport: dict[str, int] = collections.Counter()
    for res in results:
        assert res.finished, f"{res.transport} rollout {res.rollout} did not finish"
        _check_transcript(res)
        _check_spans(res)
        codes.update(f.code for f in res.fallbacks)
        by_transport[res.transport] += len(res.fallbacks)
    # Every kind of fault happened, and each was survived through a fallback.
    for name in ("faults_dropped", "faults_stalled", "faults_evicted", "faults_failed"):
        assert metrics[name] > 0, name
    summary: dict[str, Any] = {"codes": dict(codes), "by_transport": dict(by_transport), "metrics": metrics}
    assert codes["previous_response_not_found"] > 0, summary
    assert codes["server_error"] + codes["response_failed"] > 0, summary
    assert codes["timeout"] > 0, summary
    assert sum(codes[c] for c in ("connection_closed", "stream_ended")) > 0, summary
    assert all(by_transport[t] > 0 for t, _ in PLAN), summary


#: Parallel calls, reasoning and steered turns: the responses a real agent gets (instant, so every steer is
#: outrun by its response and goes with the next request instead).
RICH = WORKLOAD.with_(turns=6, output_tokens=40, reasoning_tokens=8, parallel_tool_calls=2.5, steer_rate=0.3)
RICH_PLAN = (("ws", 120), ("http", 80), ("http-chained", 50))


def _check_rich(res: RolloutResult) -> None:
    """Every call the conversation keeps is answered exactly once, every turn of the specs ran, and the
    transcript holds every steering message and the final answer."""
    specs = RICH.turn_specs(res.seed)
    items = res.transcript
    calls = [i["call_id"] for i in items if i.get("type") == "function_call" and i.get("status") != "incomplete"]
    outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    assert sorted(outputs) == sorted(calls) and len(set(calls)) == len(calls)
    users = [i for i in items if i.get("type") == "message" and i.get("role") == "user"]
    assert len(users) == 1 + sum(s.steered for s in specs)
    assert items[-1].get("role") == "assistant"
    assert set(res.spans["turn"]) == set(range(RICH.turns))


async def test_parallel_calls_reasoning_and_steering_survive_faults() -> None:
    async with SimServer("websocket", RICH, instant=True, faults=FAULTS, seed=0) as server:
        groups = await asyncio.wait_for(
            asyncio.gather(
                *(
                    run_rollouts(
                        t,
                        RICH,
                        rollouts=n,
                        concurrency=CONCURRENCY,
                        base_url=server.base_url,
                        max_attempts=MAX_ATTEMPTS,
                        timeout=CLIENT_TIMEOUT_S,
                        ping_interval=None,
                    )
                    for t, n in RICH_PLAN
                )
            ),
            timeout=240,
        )
    results = [r for g in groups for r in g]
    assert len(results) == sum(n for _, n in RICH_PLAN)
    fallbacks = 0
    for res in results:
        assert res.finished, f"{res.transport} rollout {res.rollout} did not finish"
        _check_rich(res)
        fallbacks += len(res.fallbacks)
    assert fallbacks > 0
