"""The agent runner against the in-process simulator: scripted loops, spans, and fault recovery.

Every rollout here runs in memory, with no socket (``rollout_in_memory``: the runner over labkit's
``MemoryTransport`` or ``MemoryHttpTransport``, into a never-listening ``SimServer`` or the scripted API), so the
runner's rules are checked in ``make test-fast``; the clients' transports have their own tests (test_client).
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from scripted_api import Item, Script, ScriptedApi
from test_server_support import sim_server

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.live.client import WebSocketClient
from labkit.live.memory import MemoryHttpTransport, MemoryTransport
from labkit.live.runner import (
    RETRYABLE_CODES,
    TOOLS,
    RetryPolicy,
    RolloutConfig,
    RolloutError,
    RolloutRunner,
    paused_gc,
    replay_item,
    rollouts_spans,
    run_rollout,
    run_rollouts,
    split_sizes,
    turn_specs_of,
)
from labkit.live.server import Faults, SimServer
from labkit.model import TurnSpec, load_workload
from labkit.model.spans import LIVE_STAGES, validate_spans
from labkit.wire.protocol import conversation_split, item_tokens
from labkit.wire.tokens import estimate_tokens, filler_text

WORKLOAD = load_workload("fast_test")
PROFILE = {"ws": "websocket", "http": "http_optimized", "http-chained": "http_chained"}


async def rollout_in_memory(target, transport, workload, **options):
    """``run_rollout`` over an in-memory client of ``target`` (a SimServer that never listens, or a
    ScriptedApi), closed afterwards; an ``api_key`` goes with the HTTP client's requests too."""
    if isinstance(target, ScriptedApi):
        client = target.ws_client() if transport == "ws" else target.http_client()
    elif transport == "ws":
        client = MemoryTransport(target)
    else:
        client = MemoryHttpTransport(target, api_key=options.get("api_key"))
    try:
        return await run_rollout(transport, workload, client=client, **options)
    finally:
        await client.close()


def assert_complete_transcript(transcript, workload=WORKLOAD):
    """user, (function_call, function_call_output) * (turns - 1), message: nothing lost, nothing doubled."""
    kinds = [item.get("type") for item in transcript]
    assert kinds == ["message"] + ["function_call", "function_call_output"] * (workload.turns - 1) + ["message"]
    assert transcript[0]["role"] == "user" and transcript[-1]["role"] == "assistant"
    for call, out in zip(transcript[1:-1:2], transcript[2:-1:2], strict=True):
        assert out["call_id"] == call["call_id"] and call["name"] in {t["name"] for t in TOOLS}
    specs = workload.turn_specs()
    # Each tool output has the size of the next turn's new input (the script's contract with the model).
    for k, out in enumerate(transcript[2:-1:2], start=1):
        assert item_tokens(out) == specs[k].new_input_tokens


@pytest.mark.parametrize("transport", ["ws", "http", "http-chained"])
async def test_rollout_follows_the_workload(transport):
    async with sim_server(profile=PROFILE[transport], workload=WORKLOAD, instant=True) as server:
        r = await rollout_in_memory(server, transport, WORKLOAD, api_key="k")
        metrics = server.metrics
    assert r.finished and r.fallbacks == [] and r.turns == WORKLOAD.turns
    assert_complete_transcript(r.transcript)
    spans = validate_spans(r.spans)
    assert set(spans["source"]) == {"live"} and set(spans["scenario"]) == {transport}
    assert set(spans["stage"]) <= set(LIVE_STAGES) and (spans["attempt"] == 0).all()
    tools = spans[spans["stage"] == "tool"]
    specs = WORKLOAD.turn_specs()
    assert list(tools["turn"]) == list(range(WORKLOAD.turns - 1))
    assert ((tools["end_s"] - tools["start_s"]).to_numpy() >= [s.tool_s - 1e-3 for s in specs[:-1]]).all()
    # Spans run forward in time: every turn starts after the previous one's tool.
    starts = spans.groupby("turn")["start_s"].min().to_numpy()
    assert (starts[1:] > tools["end_s"].to_numpy() - 1e-9).all()
    tm = turn_metrics(spans)
    assert len(tm) == WORKLOAD.turns and (tm["ttft_s"] > 0).all() and (tm["latency_s"] >= tm["ttft_s"]).all()
    decode = spans[spans["stage"] == "decode"]
    assert list(decode["tokens"] + 1) == [s.output_tokens for s in specs]
    # What each request carried: only the new items when chained, the whole history when stateless.
    request = spans[spans["stage"] == "request"]
    if transport == "http":
        assert list(request["tokens"]) == sorted(request["tokens"]) and request["tokens"].iloc[-1] > 2000
        assert metrics["cache_hits"] == 0 and metrics["store_hits"] == 0
    else:
        assert list(request["tokens"].iloc[1:]) == [s.new_input_tokens for s in specs[1:]]
        key = "cache_hits" if transport == "ws" else "store_hits"
        assert metrics[key] == WORKLOAD.turns - 1
    assert rollout_metrics(spans)["fallbacks"].iloc[0] == 0
    events = r.events()
    assert {"rollout", "turn", "attempt", "seq", "type", "t_s"} <= set(events.columns)
    assert len(r.inter_token_gaps()) > 0


async def test_first_request_carries_exactly_the_workloads_input():
    instructions = "Fix the failing test."
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True) as server:
        r = await rollout_in_memory(server, "ws", WORKLOAD, instructions=instructions)
    first = r.spans[(r.spans["stage"] == "request") & (r.spans["turn"] == 0)]
    assert first["tokens"].iloc[0] == WORKLOAD.turn_specs()[0].new_input_tokens
    task = WORKLOAD.turn_specs()[0].new_input_tokens - estimate_tokens(instructions)
    assert r.transcript[0]["content"] == filler_text(task, salt=0)


async def test_evicted_cache_falls_back_to_the_full_history():
    # Every lookup in the connection cache misses: each continuation gets previous_response_not_found.
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True, faults=Faults(evict_rate=1.0)) as s:
        r = await rollout_in_memory(s, "ws", WORKLOAD)
        assert s.metrics["previous_response_not_found"] == WORKLOAD.turns - 1
    assert r.finished
    assert_complete_transcript(r.transcript)
    assert [f.code for f in r.fallbacks] == ["previous_response_not_found"] * (WORKLOAD.turns - 1)
    assert [f.turn for f in r.fallbacks] == list(range(1, WORKLOAD.turns))
    tm = turn_metrics(r.spans)
    assert list(tm["attempts"]) == [1] + [2] * (WORKLOAD.turns - 1)
    # The failed attempt stays in the table: its request span is part of the turn's cost.
    failed = r.spans[(r.spans["attempt"] == 0) & (r.spans["turn"] > 0) & (r.spans["stage"] == "request")]
    assert len(failed) == WORKLOAD.turns - 1
    assert rollout_metrics(r.spans)["fallbacks"].iloc[0] == WORKLOAD.turns - 1
    # A retry carries the whole history (everything before it), never a previous_response_id.
    retries = [te for te in r.exchanges if te.attempt == 1]
    for te in retries:
        assert not te.exchange.chained
        assert te.exchange.request_tokens > WORKLOAD.turn_specs()[te.turn].new_input_tokens


async def test_dropped_connections_reconnect_and_keep_the_transcript():
    # The server cuts each WebSocket after 100 events: every other turn loses its socket mid-stream.
    async with sim_server(
        profile="websocket", workload=WORKLOAD, instant=True, faults=Faults(drop_after_events=100)
    ) as s:
        r = await rollout_in_memory(s, "ws", WORKLOAD)
        connections = s.metrics["connections"]
    assert r.finished
    assert_complete_transcript(r.transcript)
    assert r.fallbacks and {f.code for f in r.fallbacks} == {"connection_closed"}
    assert connections == 1 + len(r.fallbacks)
    retried = {f.turn for f in r.fallbacks}
    for turn in retried:
        rows = r.spans[r.spans["turn"] == turn]
        assert set(rows["attempt"]) == {0, 1}
        # The retry opened a new connection: its connect span is a real handshake.
        connect = rows[(rows["stage"] == "connect") & (rows["attempt"] == 1)]
        assert not connect["cache_hit"].iloc[0]


async def test_failed_turns_are_retried_with_the_full_history():
    async with sim_server(
        profile="http_chained", workload=WORKLOAD, instant=True, faults=Faults(fail_rate=0.5, seed=3)
    ) as s:
        r = await rollout_in_memory(s, "http-chained", WORKLOAD, max_attempts=20)
        failed = s.metrics["faults_failed"]
    assert r.finished and failed > 0 and len(r.fallbacks) == failed
    assert {f.code for f in r.fallbacks} <= RETRYABLE_CODES
    assert_complete_transcript(r.transcript)


async def test_connection_lifetime_limit_reconnects():
    # Tools take longer than a connection may live: each continuation finds its socket expired.
    slow_tools = WORKLOAD.with_(tool_time_median_s=0.15)
    async with sim_server(profile="websocket", workload=slow_tools, instant=True, connection_lifetime_s=0.1) as s:
        r = await rollout_in_memory(s, "ws", slow_tools)
    assert r.finished
    assert_complete_transcript(r.transcript, slow_tools)
    assert len(r.fallbacks) == slow_tools.turns - 1
    assert {f.code for f in r.fallbacks} <= {"websocket_connection_limit_reached", "connection_closed"}


async def test_unrecoverable_errors_raise_with_what_was_recorded():
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True, api_key="secret") as s:
        # A wrong key over HTTP is a 401: retrying cannot help, so the runner stops at once.
        with pytest.raises(RolloutError, match="turn 0") as info:
            await rollout_in_memory(s, "http", WORKLOAD, api_key="wrong")
    assert info.value.partial is not None and info.value.partial.fallbacks == []
    assert info.value.exchange.http_status == 401
    async with sim_server(
        profile="http_optimized", workload=WORKLOAD, instant=True, faults=Faults(drop_after_events=3)
    ) as s:
        with pytest.raises(RolloutError, match="gave up after 2 attempts") as info:
            await rollout_in_memory(s, "http", WORKLOAD, max_attempts=2)
    partial = info.value.partial
    assert len(partial.fallbacks) == 1 and partial.transcript[0]["role"] == "user"
    assert set(partial.spans["attempt"]) == {0, 1}


def _clients_in_memory(monkeypatch, server):
    """run_rollouts opens one client per rollout from its config: here, each a new in-memory connection."""
    monkeypatch.setattr(RolloutConfig, "make_client", lambda config: MemoryTransport(server, timeout=config.timeout))


async def test_several_rollouts_share_one_clock(monkeypatch):
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True) as s:
        _clients_in_memory(monkeypatch, s)
        results = await run_rollouts("ws", WORKLOAD, rollouts=3, concurrency=2)
        assert s.metrics["connections"] == 3
    assert [r.rollout for r in results] == [0, 1, 2] and [r.seed for r in results] == [0, 1, 2]
    assert len({r.t0 for r in results}) == 1 and all(r.finished for r in results)
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True) as s:
        _clients_in_memory(monkeypatch, s)
        later = await run_rollouts("ws", WORKLOAD, rollouts=2, t0=results[0].t0)
    # A given origin is shared with earlier rollouts: the new spans start after the old ones.
    assert {r.t0 for r in later} == {results[0].t0}
    assert later[0].spans["start_s"].min() > rollouts_spans(results)["end_s"].max()
    spans = rollouts_spans(results)
    assert sorted(spans["rollout"].unique()) == [0, 1, 2]
    assert len(rollout_metrics(spans)) == 3


async def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="^transport"):
        await run_rollout("carrier-pigeon", WORKLOAD, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="^max_attempts"):
        await run_rollout("ws", WORKLOAD, base_url="http://127.0.0.1:9/v1", max_attempts=0)
    with pytest.raises(ValueError, match="^store"):
        await run_rollout("http-chained", WORKLOAD, base_url="http://127.0.0.1:9/v1", store=False)
    with pytest.raises(ValueError, match="^client"):
        await run_rollout("http", WORKLOAD, client=WebSocketClient("http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match="^rollouts"):
        await run_rollouts("ws", WORKLOAD, rollouts=0, base_url="http://127.0.0.1:9/v1")


def test_replayed_history_drops_server_ids_and_keeps_turn_boundaries():
    history = [
        {"type": "message", "role": "user", "content": "tok "},
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "c1",
            "name": "run_shell",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "abc "},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "done", "annotations": []}],
        },
        {"id": "rs_1", "type": "reasoning", "summary": []},
    ]
    replay = [x for x in (replay_item(i) for i in history) if x is not None]
    assert len(replay) == 4 and all("id" not in x for x in replay)
    assert replay[3] == {"type": "message", "role": "assistant", "content": "done"}
    # The server reads the same conversation from the replay: two model turns before the new input.
    assert conversation_split(replay)[0] == 2


def test_paused_gc_restores_the_collectors_state():
    import gc

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_scripted_tool_choice_is_accepted_by_the_simulator():
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True) as s:
        r = await rollout_in_memory(s, "ws", WORKLOAD, script_tool_choice=True, model="some-model")
    assert r.finished and r.turns == WORKLOAD.turns
    bodies = [te.exchange.response for te in r.exchanges]
    assert [b["tool_choice"] for b in bodies] == ["required"] * (WORKLOAD.turns - 1) + ["none"]
    assert all(b["parallel_tool_calls"] is False and b["model"] == "some-model" for b in bodies)


async def test_a_rollout_can_reuse_an_open_client():
    async with MemoryHttpTransport(SimServer(profile="http_optimized", workload=WORKLOAD, instant=True)) as client:
        first = await run_rollout("http", WORKLOAD, client=client)
        second = await run_rollout("http", WORKLOAD, client=client, rollout=1)
        assert client.connections == 1
    assert first.finished and second.finished
    # The second rollout found the pooled connection open: no handshake on its first turn.
    connect = second.spans[(second.spans["stage"] == "connect") & (second.spans["turn"] == 0)]
    assert connect["cache_hit"].iloc[0]


# -- turn specs from anywhere, and what the real API may send (tests/scripted_api.py) -----------------


@dataclasses.dataclass(frozen=True)
class Trace:
    """A workload that is only its turn specs (as a trace of a real session is): no distributions."""

    name: str
    specs: tuple[TurnSpec, ...]

    def turn_specs(self, seed: int) -> tuple[TurnSpec, ...]:
        return self.specs


def _trace(*turns: dict) -> Trace:
    specs, context = [], 0
    for k, t in enumerate(turns):
        spec = TurnSpec(
            k,
            context,
            t.get("new", 40),
            t.get("out", 6),
            t.get("tool_s", 0.0),
            k == len(turns) - 1,
            t.get("reasoning", 0),
            t.get("calls", 0 if k == len(turns) - 1 or t.get("steered") else 1),
            t.get("steered", False),
        )
        specs.append(spec)
        context += spec.new_input_tokens + spec.output_tokens
    return Trace("trace", tuple(specs))


def _agent(trace: Trace, reasoning: bool = False, terminal: str = "response.completed"):
    """A scripted model that follows the trace: the k-th create answers turn k."""
    creates = itertools.count()

    def script(body):
        spec = trace.specs[min(next(creates), len(trace.specs) - 1)]
        items = [Item("reasoning")] if reasoning else []
        if spec.final:
            items.append(Item("message", spec.output_tokens))
        elif spec.steered:
            items.append(Item("message", 400))
        elif spec.tool_calls == 0:
            items.append(Item("message", spec.output_tokens))
        else:
            items += [Item("function_call", spec.output_tokens, name) for name in ["run_shell"] * spec.tool_calls]
        return Script(items, terminal=terminal, reasoning_tokens=spec.reasoning_tokens)

    return script


def _creates(api):
    return [m for m in api.received if m.get("type", "response.create") == "response.create"]


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_parallel_calls_get_one_output_each_and_run_in_parallel(transport):
    trace = _trace({"new": 50, "calls": 3, "tool_s": 0.2}, {"new": 31, "calls": 2, "tool_s": 0.02}, {"new": 20})
    api = ScriptedApi(_agent(trace))
    r = await rollout_in_memory(api, transport, trace)
    bodies = _creates(api)
    assert r.finished and r.turns == 3 and r.workload == "trace"
    kinds = [i.get("type") for i in r.transcript]
    assert kinds == ["message"] + ["function_call"] * 3 + ["function_call_output"] * 3 + ["function_call"] * 2 + [
        "function_call_output"
    ] * 2 + ["message"]
    calls = [i for i in r.transcript if i.get("type") == "function_call"]
    outputs = [i for i in r.transcript if i.get("type") == "function_call_output"]
    assert [o["call_id"] for o in outputs] == [c["call_id"] for c in calls]
    # The outputs of a turn add up to the next turn's new input, split as evenly as integers allow.
    assert [item_tokens(o) for o in outputs[:3]] == split_sizes(31, 3) == [11, 10, 10]
    assert sum(item_tokens(o) for o in outputs[3:]) == 20
    # One tool span per turn: the calls ran side by side, so the turn waited for the longest, not the sum.
    tools = r.spans[r.spans["stage"] == "tool"]
    assert list(tools["turn"]) == [0, 1]
    durations = (tools["end_s"] - tools["start_s"]).to_numpy()
    # (One after the other, the three calls would take 0.6 s.)
    assert 0.2 - 1e-3 <= durations[0] < 0.45 and durations[1] >= 0.02 - 1e-3
    assert all(b["parallel_tool_calls"] is True for b in bodies)
    if transport == "ws":
        # A continuation carries only the new items: every output of the previous turn.
        assert [i["type"] for i in bodies[1]["input"]] == ["function_call_output"] * 3
        assert bodies[1]["previous_response_id"] == r.response_ids[0]
    else:
        assert "previous_response_id" not in bodies[1] and len(bodies[2]["input"]) == len(r.transcript) - 1


async def test_reasoning_is_requested_and_recorded():
    trace = _trace({"reasoning": 30}, {"reasoning": 12}, {"reasoning": 5})
    api = ScriptedApi(_agent(trace, reasoning=True))
    r = await rollout_in_memory(api, "ws", trace, reasoning_effort="low")
    bodies = _creates(api)
    assert r.finished
    assert all(b["reasoning"] == {"effort": "low"} for b in bodies)
    # store=false: the reasoning comes back encrypted, so a full-history retry could replay it.
    assert all(b["include"] == ["reasoning.encrypted_content"] for b in bodies)
    rows = r.spans[r.spans["stage"] == "reasoning"]
    assert list(rows["tokens"]) == [30, 12, 5]
    tm = turn_metrics(r.spans)
    assert (tm["ttft_s"] > 0).all()
    # A workload without reasoning or parallel calls asks for neither.
    plain = _trace({}, {})
    api = ScriptedApi(_agent(plain))
    await rollout_in_memory(api, "ws", plain)
    assert not any({"reasoning", "include", "parallel_tool_calls"} & set(b) for b in _creates(api))


async def test_ws_steered_turn_steers_and_follows_the_successor():
    trace = _trace({"new": 30}, {"new": 25, "steered": True, "out": 50}, {"new": 9})
    api = ScriptedApi(_agent(trace), successor=Script([Item("message", 8)]))
    r = await rollout_in_memory(api, "ws", trace)
    creates = _creates(api)
    steers = [m for m in api.received if m.get("type") == "response.steer"]
    assert r.finished and r.turns == 3 and r.fallbacks == []
    # Turn 2 was never requested: the server started it from the accepted steering input.
    assert len(creates) == 2 and len(steers) == 1 and steers[0]["previous_response_id"] == r.response_ids[1]
    steer_msg = steers[0]["input"][0]
    assert item_tokens(steer_msg) == 9 and steer_msg["role"] == "user"
    kinds = [(i.get("type"), i.get("role")) for i in r.transcript]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    assert r.transcript[4] == steer_msg
    steered = r.exchanges[1].exchange
    assert steered.steered and steered.status == "incomplete" and steered.output_tokens < 400
    follow = r.exchanges[2].exchange
    assert follow.chained and follow.request_bytes == 0 and follow.request_tokens == 9
    assert follow.response["previous_response_id"] == r.response_ids[1]


async def test_steering_over_http_goes_with_the_next_request():
    trace = _trace({"new": 30}, {"new": 25, "steered": True}, {"new": 9})
    api = ScriptedApi(_agent(trace))
    r = await rollout_in_memory(api, "http", trace)
    creates = _creates(api)
    assert r.finished and len(creates) == 3
    last = creates[2]["input"][-1]
    assert last["role"] == "user" and item_tokens(last) == 9


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_response_done_ends_a_turn(transport):
    trace = _trace({}, {}, {})
    api = ScriptedApi(_agent(trace, terminal="response.done"))
    r = await rollout_in_memory(api, transport, trace)
    assert r.finished and r.turns == 3 and r.fallbacks == []


@pytest.mark.parametrize("transport", ["ws", "http-chained"])
async def test_a_turn_without_calls_hands_back_to_the_user(transport):
    # A trace's turn that issued no tool call and is not the last: the user's next message follows.
    trace = _trace({"new": 30, "calls": 0}, {"new": 12}, {"new": 8})
    api = ScriptedApi(_agent(trace))
    r = await rollout_in_memory(api, transport, trace, script_tool_choice=True)
    bodies = _creates(api)
    assert r.finished and r.turns == 3
    kinds = [(i.get("type"), i.get("role")) for i in r.transcript]
    assert kinds == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
    ]
    assert item_tokens(r.transcript[2]) == 12 and bodies[1]["input"] == [r.transcript[2]]
    # The script asks a real model for no call on the hand-back turn, and for one on the tool turn.
    assert [b["tool_choice"] for b in bodies] == ["none", "required", "none"]


async def test_a_call_cut_short_is_not_answered():
    trace = _trace({"calls": 2}, {})
    scripts = iter(
        [
            Script(
                [Item("function_call", 6), Item("function_call", 6, cut=True)],
                terminal="response.incomplete",
                incomplete_reason="max_output_tokens",
            ),
            Script([Item("message", 6)]),
        ]
    )
    api = ScriptedApi(lambda body: next(scripts))
    r = await rollout_in_memory(api, "ws", trace)
    second = _creates(api)[1]
    assert r.finished and r.exchanges[0].exchange.status == "incomplete"
    kept = r.exchanges[0].exchange.function_calls[0]["call_id"]
    # Only the completed call is answered, and it carries the whole next input.
    assert [(i["type"], i["call_id"]) for i in second["input"]] == [("function_call_output", kept)]
    assert item_tokens(second["input"][0]) == trace.specs[1].new_input_tokens
    # A full-history replay leaves the cut call out too.
    assert replay_item(r.exchanges[0].exchange.function_calls[1]) is None


async def test_a_tool_runner_replaces_the_scripted_tools():
    seen = []

    async def tools(calls, spec, sizes):
        seen.append((spec.index, len(calls), list(sizes)))
        return [f"result of {c['name']}" for c in calls]

    trace = _trace({"calls": 2}, {})
    api = ScriptedApi(_agent(trace))
    r = await rollout_in_memory(api, "ws", trace, tool_runner=tools)
    assert seen == [(0, 2, [20, 20])]
    assert [i["output"] for i in r.transcript if i.get("type") == "function_call_output"] == ["result of run_shell"] * 2


async def test_rollout_result_is_frozen_plain_data():
    trace = _trace({}, {})
    api = ScriptedApi(_agent(trace))
    r = await rollout_in_memory(api, "ws", trace, api_key="sk-never-exported")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.finished = False  # type: ignore[misc]
    d = r.to_dict()
    text = json.dumps(d)
    assert "sk-never-exported" not in text and json.loads(text)["turns"] == 2
    assert {e["status"] for e in d["exchanges"]} == {"completed"} and len(d["spans"]) == len(r.spans)


def test_turn_specs_are_checked():
    with pytest.raises(ValueError, match="^workload"):
        turn_specs_of(Trace("empty", ()), 0)
    bad = _trace({}, {})
    with pytest.raises(ValueError, match="^workload"):
        turn_specs_of(Trace("gap", (bad.specs[1],)), 0)
    with pytest.raises(ValueError, match="^workload"):
        turn_specs_of(object(), 0)  # type: ignore[arg-type]


# -- the retry policy ---------------------------------------------------------------------------------


def test_retry_policy_decides_and_backs_off():
    from labkit.live.client import Exchange

    def failed(status, code=None, http_status=None, err_type=None):
        ex = Exchange(t_start=0.0)
        ex.status = status
        ex.error = {"code": code, "type": err_type}
        ex.http_status = http_status
        return ex

    p = RetryPolicy()
    assert p.retries(failed("dropped", "connection_closed")) and p.retries(failed("error", "server_error"))
    assert p.retries(failed("error", "weird", 503)) and p.retries(failed("error", "x", err_type="server_error"))
    assert not p.retries(failed("error", "invalid_api_key", 401))
    strict = RetryPolicy(server_errors=False, codes=frozenset({"timeout"}), statuses=frozenset())
    assert not strict.retries(failed("error", "weird", 503)) and strict.retries(failed("timeout", "timeout"))
    assert p.delay_s(1) == 0.0
    b = RetryPolicy(backoff_s=0.1, backoff_factor=2.0, max_backoff_s=0.3)
    assert [b.delay_s(k) for k in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])
    for bad in ({"max_attempts": 0}, {"backoff_s": -1}, {"backoff_factor": 0.5}, {"max_backoff_s": float("nan")}):
        with pytest.raises(ValueError, match=f"^{next(iter(bad))}"):
            RetryPolicy(**bad)
    assert json.loads(json.dumps(p.to_dict()))["max_attempts"] == 3


def test_rollout_config_from_options():
    c = RolloutConfig.from_options("ws", max_attempts=5, retry_backoff_s=0.2, api_key="sk-x")
    assert c.retry.max_attempts == 5 and c.retry.backoff_s == 0.2
    assert "sk-x" not in repr(c) and c.to_dict()["api_key"] == "[set]"
    assert RolloutConfig("http-chained").store_flag and not RolloutConfig("ws").store_flag
    assert RolloutConfig.from_options("ws", retry=None).retry == RetryPolicy()
    with pytest.raises(ValueError, match="^colour"):
        RolloutConfig.from_options("ws", colour="blue")
    with pytest.raises(ValueError, match="^timeout"):
        RolloutConfig("ws", timeout=0)
    runner = RolloutRunner(c)
    assert runner.config is c
    with pytest.raises(ValueError, match="^config"):
        RolloutRunner({"transport": "ws"})  # type: ignore[arg-type]


async def test_no_full_history_fallback_raises_when_the_chain_is_lost():
    policy = RetryPolicy(full_history_fallback=False)
    async with sim_server(profile="websocket", workload=WORKLOAD, instant=True, faults=Faults(evict_rate=1.0)) as s:
        with pytest.raises(RolloutError, match="chain is lost") as info:
            await rollout_in_memory(s, "ws", WORKLOAD, retry=policy)
    assert info.value.exchange.error_code == "previous_response_not_found"
    assert info.value.partial.turns == 2 and info.value.partial.fallbacks == []


async def test_resume_chain_retries_the_same_continuation_when_the_store_has_the_parent():
    policy = RetryPolicy(max_attempts=20, resume_chain=True)
    async with sim_server(
        profile="http_chained", workload=WORKLOAD, instant=True, faults=Faults(fail_rate=0.5, seed=3)
    ) as s:
        r = await rollout_in_memory(s, "http-chained", WORKLOAD, retry=policy)
    assert r.finished and r.fallbacks
    assert_complete_transcript(r.transcript)
    resumed = [f for f in r.fallbacks if f.turn > 0]
    assert resumed and not any(f.full_history for f in resumed)
    # Every retry of a continuation kept its previous_response_id and sent only the new items.
    for te in r.exchanges:
        if te.turn > 0:
            assert te.exchange.chained


# -- the simulator's richer responses: reasoning, parallel calls, steering ------------------------------

RICH = WORKLOAD.with_(reasoning_tokens=40, parallel_tool_calls=2.5, steer_rate=0.3)


# Slow: paced in real time (2-4 s each, mostly waiting), so the steer arrives mid-stream; `make test` runs them.
@pytest.mark.slow
@pytest.mark.parametrize("transport", ["ws", "http", "http-chained"])
async def test_reasoning_parallel_calls_and_steering_against_the_simulator(transport):
    specs = RICH.turn_specs(0)
    assert any(s.steered for s in specs) and any(s.tool_calls > 1 for s in specs)
    # Paced (not instant), so a steer reaches the server while the response still streams.
    async with sim_server(profile=PROFILE[transport], workload=RICH, tps=1000) as server:
        r = await rollout_in_memory(server, transport, RICH)
        metrics = server.metrics
    assert r.finished and r.turns == RICH.turns and r.fallbacks == []
    spans = validate_spans(r.spans)
    assert list(spans[spans["stage"] == "reasoning"]["tokens"]) == [s.reasoning_tokens for s in specs]
    by_turn = {te.turn: te.exchange for te in r.exchanges}
    for spec in specs:
        if not spec.final and not spec.steered:
            # Every call of a parallel turn came in one response and got its own output.
            assert len(by_turn[spec.index].function_calls) == spec.tool_calls
    calls = {i["call_id"] for i in r.transcript if i.get("type") == "function_call" and i.get("status") != "incomplete"}
    outputs = [i["call_id"] for i in r.transcript if i.get("type") == "function_call_output"]
    assert sorted(outputs) == sorted(calls)
    steered = [s for s in specs if s.steered]
    if transport == "ws":
        # Steered over WebSocket mode: cut where the user steered, and the successor ran without a request.
        assert metrics["steers_accepted"] == len(steered)
        for spec in steered:
            ex = by_turn[spec.index]
            assert ex.steered and ex.steer_outcome == "accepted"
            # At 1,000 tokens/s a late steer costs a token a millisecond; uncut, the output would be twice as long.
            full = round(spec.output_tokens / RICH.steer_at)
            assert spec.output_tokens <= ex.output_tokens <= spec.output_tokens + 20 < full
            assert by_turn[spec.index + 1].request_bytes == 0
    else:
        # No steering over HTTP: the steering message goes with the next request instead.
        assert metrics.get("steers_accepted", 0) == 0
        for spec in steered:
            nxt = by_turn[spec.index + 1]
            assert nxt.request_tokens >= specs[spec.index + 1].new_input_tokens


def test_a_full_history_replay_leaves_out_calls_nobody_answered():
    from labkit.live.runner import Rollout

    trace = _trace({}, {})
    rollout = Rollout(RolloutConfig("ws"), trace, WebSocketClient("http://127.0.0.1:9/v1"), seed=0, rollout=0, t0=0.0)
    call = {"type": "function_call", "call_id": "c1", "name": "run_shell", "arguments": "{}", "status": "completed"}
    rollout.transcript = [
        {"type": "message", "role": "user", "content": "task "},
        call,
        {"type": "function_call_output", "call_id": "c1", "output": "ok "},
        # A steered response's call: completed, but the steer made its successor owe it no output.
        {**call, "call_id": "c2"},
        {"type": "message", "role": "user", "content": "steer"},
    ]
    replay = rollout._replay()
    assert [i.get("call_id") for i in replay] == [None, "c1", "c1", None]
