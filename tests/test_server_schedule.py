"""The server's pacing as a pure schedule: batches of events at deadlines, driven by made-up clocks (no loop)."""

from __future__ import annotations

import math

import pytest

from labkit.live.server.ids import new_id, wall_clock
from labkit.live.server.output import plan_output
from labkit.live.server.schedule import Pacer, Timing
from labkit.wire.protocol import ResponseEvents, parse_create_body
from labkit.wire.tokens import estimate_tokens

REQ = parse_create_body({"model": "m", "input": "hi"})


def drive(pacer: Pacer, lateness: float = 0.0) -> list[tuple[float, list[dict]]]:
    """Wake at each deadline (plus ``lateness``), as the server does; returns (time, batch) pairs."""
    out = []
    t = 0.0
    while pacer.deadline is not None:
        t = max(t, pacer.deadline + lateness)
        batch = pacer.advance(t)
        if batch:
            out.append((t, batch))
    return out


def types(batch: list[dict]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in batch]


def test_message_turn_is_due_at_the_planned_times() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, plan_output(kind="message", output_tokens=5), Timing(10.0, 0.2, 0.0, 0.05, 100.0))
    batches = drive(pacer)
    times = [t for t, _ in batches]
    # created at t0; the first delta after the pre-inference stages; one token per 1/tps; then the post stages.
    assert times == pytest.approx([10.0, 10.2, 10.21, 10.22, 10.23, 10.24, 10.29])
    assert types(batches[0][1]) == ["created", "in_progress"]
    assert types(batches[1][1]) == ["output_item.added", "content_part.added", "output_text.delta"]
    assert types(batches[5][1]) == ["output_text.delta", "output_text.done", "content_part.done", "output_item.done"]
    assert types(batches[-1][1]) == ["completed"]
    assert pacer.frames == 5 and pacer.decoded == 5 and pacer.planned_last == pytest.approx(10.24)
    events = [e for _, b in batches for e in b]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert ev.usage is not None and ev.usage["output_tokens"] == 5


def test_a_late_wakeup_coalesces_every_due_token_into_one_delta() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, plan_output(kind="message", output_tokens=40), Timing(0.0, 0.0, 0.0, 0.0, 1000.0))
    batches = drive(pacer, lateness=0.0049)  # each wake-up ~5 ms late: ~5 tokens per frame
    deltas = [e for _, b in batches for e in b if e["type"] == "response.output_text.delta"]
    assert 6 <= len(deltas) <= 10 and pacer.frames == len(deltas)
    assert estimate_tokens("".join(d["delta"] for d in deltas)) == 40
    # Nothing goes out before its deadline: token k is never sent before k / tps.
    sent = 0
    for t, b in batches:
        for e in b:
            if e["type"] == "response.output_text.delta":
                assert t + 1e-9 >= (sent + estimate_tokens(e["delta"]) - 1) / 1000.0
                sent += estimate_tokens(e["delta"])


def test_instant_mode_is_one_batch_with_one_delta_per_token() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(
        ev, plan_output(kind="message", output_tokens=6), Timing(0.0, 0.0, 0.0, 0.0, math.inf), per_token=True
    )
    batch = pacer.advance(0.0)
    assert pacer.done and types(batch).count("output_text.delta") == 6 and types(batch)[-1] == "completed"


def test_unpaced_json_answer_waits_for_the_whole_plan_once() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, plan_output(kind="message", output_tokens=50), Timing(0.0, 0.1, 0.0, 0.0, 100.0), paced=False)
    deadlines = []
    while pacer.deadline is not None:
        deadlines.append(pacer.deadline)
        pacer.advance(pacer.deadline)
    assert deadlines == pytest.approx([0.0, 0.1, 0.59])  # no wake-up per token
    assert ev.status == "completed" and pacer.frames == 1


def test_reasoning_then_parallel_calls() -> None:
    ev = ResponseEvents(
        parse_create_body({"model": "m", "input": "x", "reasoning": {"summary": "auto"}}), ids=new_id, clock=wall_clock
    )
    out = plan_output(
        kind="function_call", output_tokens=9, reasoning_tokens=80, tool_names=("a", "b"), tool_calls=3, summary=True
    )
    pacer = Pacer(ev, out, Timing(0.0, 0.1, 0.08, 0.0, 1000.0))
    batches = drive(pacer)
    flat = [(t, e) for t, b in batches for e in b]
    summary = [t for t, e in flat if e["type"] == "response.reasoning_summary_text.delta"]
    first_call_delta = next(t for t, e in flat if e["type"] == "response.function_call_arguments.delta")
    # The summary streams during the reasoning stage; the first visible delta comes after it.
    assert summary and summary[0] > 0.1 and summary[-1] <= 0.18 + 1e-9
    assert first_call_delta == pytest.approx(0.18)
    final = flat[-1][1]["response"]
    assert [o["type"] for o in final["output"]] == ["reasoning", "function_call", "function_call", "function_call"]
    assert [o["name"] for o in final["output"][1:]] == ["a", "b", "a"]
    assert (
        final["usage"]["output_tokens"] == 9 + 80 and final["usage"]["output_tokens_details"]["reasoning_tokens"] == 80
    )


def test_max_output_tokens_ends_incomplete() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    out = plan_output(kind="message", output_tokens=50, reasoning_tokens=10, max_output_tokens=20)
    pacer = Pacer(ev, out, Timing(0.0, 0.0, 0.01, 0.0, 1000.0))
    batches = drive(pacer)
    last = batches[-1][1][-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][-1]["status"] == "incomplete"
    assert last["response"]["usage"]["output_tokens"] == 20


def test_steering_stops_decoding_where_it_arrives() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, plan_output(kind="message", output_tokens=100), Timing(0.0, 0.0, 0.0, 0.5, 100.0))
    t = 0.0
    while pacer.deadline is not None and t < 0.2:
        t = pacer.deadline
        pacer.advance(t)
    assert pacer.steer()
    # The steer wakes the server before the next deadline: the response ends at once, incomplete.
    batch = pacer.advance(t + 0.001)
    assert types(batch) == ["output_text.done", "content_part.done", "output_item.done", "incomplete"]
    assert batch[-1]["response"]["incomplete_details"] == {"reason": "steered"}
    assert pacer.done and 20 <= pacer.decoded <= 22  # the other ~80 tokens were never decoded
    assert not pacer.steer()


def test_steering_after_decoding_lets_the_response_complete() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, plan_output(kind="message", output_tokens=3), Timing(0.0, 0.0, 0.0, 0.5, 100.0))
    while pacer.deadline is not None and pacer.decoded < 3:
        pacer.advance(pacer.deadline)
    assert not pacer.steer()  # in the post stages: nothing left to save
    drive(pacer)
    assert ev.status == "completed"


def test_failure_and_warmup_after_the_pre_inference_stages() -> None:
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    batches = drive(
        Pacer(ev, plan_output(kind="message", output_tokens=3), Timing(0.0, 0.3, 0.0, 0.0, 100.0), fail=True)
    )
    assert batches[-1][0] == pytest.approx(0.3) and types(batches[-1][1]) == ["failed"]
    assert batches[-1][1][0]["response"]["error"]["code"] == "server_error"
    warm = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    batches = drive(
        Pacer(warm, plan_output(kind="message", output_tokens=3), Timing(0.0, 0.3, 0.0, 0.0, 100.0), generate=False)
    )
    assert types(batches[-1][1]) == ["completed"] and warm.output == []


def test_a_plan_is_built_once_per_distinct_request_and_carries_its_texts() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    args = {"kind": "function_call", "output_tokens": 40, "tool_names": ("lookup",), "tool_calls": 2, "salt": 3}
    plan = plan_output(**args, tool_parameters=(schema,))
    # The same request (an equal schema in another dict) gets the same plan object; another size another plan.
    assert plan_output(**args, tool_parameters=(dict(schema),)) is plan
    assert plan_output(**{**args, "output_tokens": 41}, tool_parameters=(schema,)) is not plan
    assert plan.visible_tokens == sum(len(i.tokens) for i in plan.items) == 40
    for item in plan.items:
        assert item.text == "".join(item.tokens) and '"city":' in item.text
    # A schema that is not JSON is planned as is (uncached), with the same texts as its JSON twin.
    odd = {"type": "object", "properties": {"city": {"type": "string"}}, "x": {1, 2}}
    twin = plan_output(**args, tool_parameters=({k: v for k, v in odd.items() if k != "x"},))
    assert plan_output(**args, tool_parameters=(odd,)).items == twin.items


@pytest.mark.parametrize(
    "plan",
    [
        {"kind": "message", "output_tokens": 37},
        {"kind": "message", "output_tokens": 50, "reasoning_tokens": 20, "summary": True, "encrypted": True},
        {"kind": "function_call", "output_tokens": 30, "tool_names": ("a", "b"), "tool_calls": 3},
        {"kind": "message", "output_tokens": 80, "reasoning_tokens": 10, "max_output_tokens": 40},
        {"kind": "function_call", "output_tokens": 60, "tool_names": ("a",), "tool_calls": 2, "max_output_tokens": 25},
    ],
)
@pytest.mark.parametrize("whole", [True, False])
def test_a_plans_counted_tokens_and_calls_are_those_of_the_output_it_leaves(plan, whole) -> None:
    """The engine reads a plan's ``item_tokens`` and ``function_calls`` instead of counting a finished output's."""
    from labkit.wire.protocol import item_tokens

    output = plan_output(**plan)
    ev = ResponseEvents(REQ, ids=new_id, clock=wall_clock)
    pacer = Pacer(ev, output, Timing(0.0, 0.01, 0.01, 0.01, 1000.0), per_token=not whole)
    if whole:
        pacer.assemble()
    else:
        drive(pacer)
    assert pacer.decoded == output.visible_tokens
    assert output.item_tokens == sum(item_tokens(o) for o in ev.output)
    assert output.function_calls == sum(1 for o in ev.output if o["type"] == "function_call")
