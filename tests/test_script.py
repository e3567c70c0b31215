"""The scripted model (labkit.live.server.script): loading, matching, arguments against the tool's schema."""

from __future__ import annotations

import pytest

from labkit.live.server.faults import EventCounter, FaultInjector, Faults
from labkit.live.server.output import plan_output
from labkit.live.server.script import Call, Failure, Rule, Script, ScriptError, Step, When, load_script
from labkit.wire.protocol import ProtocolError, parse_create_body

TOOL = {
    "type": "function",
    "name": "run_tests",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "verbose": {"type": "boolean"}},
        "required": ["path"],
        "additionalProperties": False,
    },
}


def _req(input: object = "fix it", **kw: object):
    return parse_create_body({"model": "m", "input": input, "tools": [TOOL], **kw})


def _apply(script: Script, turn: int = 0, request=None):
    faults = FaultInjector(Faults()).for_turn(10, EventCounter(), {"faults_stalled": 0, "faults_failed": 0})
    planned = plan_output(kind="message", output_tokens=5)
    return script.apply(request or _req(), turn, planned, faults), faults


def test_turns_in_order_then_a_mismatch_naming_the_turn() -> None:
    script = Script(turns=(Step(calls=(Call("run_tests", {"path": "tests/"}),)), Step(say="fixed")))
    out, _ = _apply(script, 0)
    (item,) = out.items
    assert item.kind == "function_call" and item.name == "run_tests" and "".join(item.tokens) == '{"path":"tests/"}'
    out, _ = _apply(script, 1)
    assert out.items[0].kind == "message" and "".join(out.items[0].tokens) == "fixed"
    with pytest.raises(ProtocolError) as exc:
        _apply(script, 2)
    assert exc.value.code == "script_mismatch" and "turn 2" in exc.value.message and "2 turns" in exc.value.message


@pytest.mark.parametrize(
    ("arguments", "why"),
    [
        ({}, "missing required property 'path'"),
        ({"path": 5}, "arguments.path: expected string"),
        ({"path": "x", "extra": 1}, "unexpected property 'extra'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_arguments_are_checked_against_the_requests_tool_schema(arguments: object, why: str) -> None:
    script = Script(turns=(Step(calls=(Call("run_tests", arguments),)),))  # type: ignore[arg-type]
    with pytest.raises(ProtocolError) as exc:
        _apply(script)
    assert why in exc.value.message and "turn 0" in exc.value.message


def test_a_tool_the_request_does_not_offer_is_a_mismatch() -> None:
    with pytest.raises(ProtocolError, match="calls 'deploy', which the request does not offer"):
        _apply(Script(turns=(Step(calls=(Call("deploy"),)),)))


def test_rules_match_tool_outputs_user_messages_and_turns_before_the_turns() -> None:
    script = Script(
        turns=(Step(say="turn"),),
        rules=(
            Rule(When(tool_output="FAILED"), Step(say="retry")),
            Rule(When(user="weather"), Step(say="sunny")),
            Rule(When(turn=3), Step(fail=Failure(503, "overloaded"))),
        ),
    )
    said = lambda out: "".join(out.items[0].tokens)  # noqa: E731
    assert said(_apply(script, 0, _req("what's the weather?"))[0]) == "sunny"
    assert said(_apply(script, 0)[0]) == "turn"
    call = {"type": "function_call", "call_id": "c1", "name": "run_tests", "arguments": "{}"}
    out = {"type": "function_call_output", "call_id": "c1", "output": "1 FAILED"}
    assert said(_apply(script, 1, _req([call, out]))[0]) == "retry"
    with pytest.raises(ProtocolError) as exc:
        _apply(script, 3)
    assert (exc.value.status, exc.value.code, exc.value.type) == (503, "overloaded", "server_error")


def test_stall_drop_stream_failure_reasoning_and_incomplete_join_the_turn() -> None:
    step = Step(say="x", stall_s=0.5, drop=True, fail=Failure(stream=True), reason=64, incomplete=True)
    out, faults = _apply(Script(turns=(step,)), 0, _req(reasoning={"effort": "low", "summary": "auto"}))
    assert faults.plan.stall_s == 0.5 and faults.plan.fail and faults.plan.drop_at_event == 2
    assert out.truncated and out.reasoning_tokens == 64 and out.reasoning is not None and out.reasoning.tokens


def test_loading_from_yaml_and_mappings(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "turns:\n  - call: {run_tests: {path: tests/}}\n  - fixed\n"
        "rules:\n  - when: {turn: 4}\n    then: {fail: {status: 500, code: server_error}}\n"
    )
    script = Script.from_file(path)
    assert script.turns[0].calls == (Call("run_tests", {"path": "tests/"}),) and script.turns[1].say == "fixed"
    assert script.rules[0].then.fail == Failure(500, "server_error")
    assert load_script(script.to_dict()).turns == script.turns
    assert load_script(str(path)) == script


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("turns: [{sing: x}]", "turns[0]: unknown key 'sing'"),
        ("turns: 5", "must be lists"),
        ("rules: [{when: {turn: 1}}]", "rules[0]: needs 'when' and 'then'"),
        ("rules: [{when: {mood: x}, then: hi}]", "rules[0].when"),
        ("turns: [{fail: {status: 500, colour: red}}]", "turns[0].fail"),
        ("{}", "at least one turn or rule"),
        ("turns: [", "not valid YAML"),
    ],
)
def test_bad_scripts_name_the_file_and_field(tmp_path, text: str, where: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScriptError) as exc:
        Script.from_file(path)
    assert str(path) in str(exc.value) and where in str(exc.value)


def test_serve_prints_how_to_end_a_rollout_early() -> None:
    from labkit.cli.serve import turn_limit_hint
    from labkit.live.server import SimServer

    hint = turn_limit_hint(SimServer(workload="codex_bugfix"))
    assert hint is not None and "--workload fast_test (5 calls)" in hint and "--script" in hint
    assert turn_limit_hint(SimServer(workload="fast_test")) is None
    assert turn_limit_hint(SimServer(workload="codex_bugfix", script={"turns": ["hi"]})) is None


@pytest.mark.live
def test_serve_tells_when_rollouts_stopped_with_calls_unanswered() -> None:
    import asyncio

    import httpx

    from labkit.cli.serve import RolloutWatch
    from labkit.live.server import SimServer

    async def go() -> list[int]:
        tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
        async with SimServer(workload="codex_bugfix", instant=True) as server:
            watch = RolloutWatch(server)
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                body: dict = {"model": "m", "input": "go", "tools": tools}
                for _ in range(3):  # a client that gives up after 3 model calls
                    r = (await client.post("/responses", json=body)).json()
                    calls = [o for o in r["output"] if o["type"] == "function_call"]
                    outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "x"} for c in calls]
                    body = {"model": "m", "input": outputs, "tools": tools, "previous_response_id": r["id"]}
                # A finished rollout (fast answer without tools) is not reported.
                await client.post("/responses", json={"model": "m", "input": "no tools"})
            return watch.stopped_with_calls_owed()

    assert asyncio.run(go()) == [3]
