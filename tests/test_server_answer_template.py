"""An answer filled into its template is byte for byte the assembled Response, encoded.

The template path (:mod:`labkit.live.server.answer_template`) replaces assembling and encoding for answers due at
once; whatever it answers must be the bytes the assembling path would have sent, draw the same ids in the same
order, and keep the same state. Where it cannot be sure (a marker in a client's text, text orjson refuses), it
steps aside.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from labkit.live.server import answer_template
from labkit.live.server.answer_template import AnswerTemplates, build_template
from labkit.live.server.assembly import assemble_response
from labkit.live.server.engine import Engine
from labkit.live.server.jsonout import dumps
from labkit.live.server.output import OutputPlan, plan_output
from labkit.model import load_profile, load_workload
from labkit.wire.protocol import CreateRequest, parse_create_body

PLANS = {
    "message": plan_output(kind="message", output_tokens=120, salt=3),
    "one token": plan_output(kind="message", output_tokens=1),
    "reasoning": plan_output(kind="message", output_tokens=40, reasoning_tokens=30),
    "reasoning, summary, encrypted": plan_output(
        kind="message", output_tokens=40, reasoning_tokens=30, summary=True, encrypted=True
    ),
    "cut by max_output_tokens": plan_output(kind="message", output_tokens=200, max_output_tokens=50),
}

BODIES = {
    "minimal": {"model": "m", "input": "hi"},
    "instructions": {"model": "gpt-x", "input": "hi", "instructions": 'Be "brief" \\ ok\n\t\u2028 é 😀 \x01'},
    "metadata": {"model": "m", "input": "hi", "metadata": {"b": "2", "a": 'x"y', "ü": "\u0007"}},
    "not stored": {"model": "m", "input": "hi", "store": False},
    "max_output_tokens": {"model": "m", "input": "hi", "max_output_tokens": 50},
    "previous_response_id": {"model": "m", "input": "hi", "previous_response_id": 'resp_"\\é\u2028'},
}


def _ids() -> Any:
    counter = itertools.count()
    return lambda prefix: f"{prefix}_{next(counter):06d}"


def _assembled(request: CreateRequest, plan: OutputPlan, ids: Any, input_tokens: int, cached_tokens: int) -> bytes:
    final = assemble_response(
        request,
        plan,
        response_id="resp_abc",
        created_at=1_700_000_123,
        ids=ids,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
    )
    return dumps(final)


@pytest.mark.parametrize("plan_name", PLANS)
@pytest.mark.parametrize("body_name", BODIES)
def test_a_filled_template_is_the_assembled_answer_byte_for_byte(body_name: str, plan_name: str) -> None:
    request = parse_create_body(json.dumps(BODIES[body_name]))
    plan = PLANS[plan_name]
    template = build_template(request, plan)
    assert template is not None
    # Filled twice with different values: nothing of one answer stays in the template.
    for input_tokens, cached_tokens in ((0, 0), (123_456, 7_890)):
        ids_filled, ids_assembled = _ids(), _ids()
        values = template.values(
            "resp_abc", 1_700_000_123, ids_filled, request.previous_response_id, input_tokens, cached_tokens
        )
        assert values is not None
        filled = template.format % values
        assert filled == _assembled(request, plan, ids_assembled, input_tokens, cached_tokens)
        # The same ids, drawn in the same order (the next id of each source is the same).
        assert ids_filled("x") == ids_assembled("x")
    assert template.status == json.loads(filled)["status"]


def test_a_clients_text_holding_a_marker_gets_no_template() -> None:
    request = parse_create_body(json.dumps({"model": "m", "input": "hi", "instructions": answer_template._marker(0)}))
    assert build_template(request, PLANS["message"]) is None


def test_text_orjson_refuses_steps_aside() -> None:
    # A lone surrogate (possible only in a body handed in as a mapping): orjson will not encode it.
    lone = parse_create_body({"model": "m", "input": "hi", "instructions": "\ud800"})
    assert build_template(lone, PLANS["message"]) is None
    template = build_template(parse_create_body('{"model": "m", "input": "hi"}'), PLANS["message"])
    assert template is not None
    drawn: list[str] = []

    def ids(prefix: str) -> str:
        drawn.append(prefix)
        return prefix

    assert template.values("resp_1", 1, ids, "\ud800", 1, 0) is None
    assert drawn == []  # no id drawn for an answer that goes the other way


def test_templates_are_found_by_plan_and_echo_and_bounded() -> None:
    templates = AnswerTemplates(capacity=2)
    a = parse_create_body('{"model": "m", "input": "hi"}')
    b = parse_create_body('{"model": "m", "input": "another input, the same echo"}')
    c = parse_create_body('{"model": "m", "input": "hi", "instructions": "other"}')
    first = templates.get(a, PLANS["message"])
    assert first is not None and templates.get(b, PLANS["message"]) is first
    assert templates.get(a, PLANS["one token"]) is not first
    assert templates.get(c, PLANS["message"]) is not first
    assert len(templates._templates) <= 2
    # What the assembling path answers: tools, settings, warm-ups, function calls.
    with_tools = parse_create_body(
        '{"model": "m", "input": "hi", "tools": [{"type": "function", "name": "f", "parameters": {}}]}'
    )
    assert templates.get(with_tools, PLANS["message"]) is None
    assert (
        templates.get(parse_create_body('{"model": "m", "input": "hi", "temperature": 0.5}'), PLANS["message"]) is None
    )
    calls = plan_output(kind="function_call", output_tokens=20, tool_names=("f",))
    assert templates.get(a, calls) is None


class _Server:
    """An instant engine with fixed ids and clock, answering creates at once."""

    def __init__(self, templates: bool) -> None:
        self.engine = Engine(load_profile("websocket"), load_workload("fast_test"), seed=7, instant=True, spin_s=0.0)
        self.engine.ids = _ids()
        self.engine.clock = lambda: 1_700_000_000.0
        if not templates:
            self.engine.answers.get = lambda request, plan: None  # type: ignore[method-assign]

    def answer(self, body: dict[str, Any]) -> bytes:
        request = parse_create_body(json.dumps(body))
        resolved = self.engine.resolve(request, transport="http", t0=0.0)
        assert self.engine.due_at_once(resolved)
        return self.engine.answer_at_once(resolved, 1.0)


def test_an_engine_answers_and_keeps_the_same_with_and_without_templates() -> None:
    async def run() -> None:
        sides = [_Server(templates=True), _Server(templates=False)]
        previous: list[str | None] = [None, None]
        bodies: list[dict[str, Any]] = [
            {"model": "m", "input": "Fix the bug.", "instructions": "Be brief.", "metadata": {"k": "v"}},
            {"model": "m", "input": "go on", "max_output_tokens": 30},
            {"model": "m", "input": "once more"},
            {"model": "m", "input": "and again", "store": False},
        ]
        for body in bodies:
            answers = []
            for i, side in enumerate(sides):
                chained = {**body, "previous_response_id": previous[i]} if previous[i] else body
                answers.append(side.answer(chained))
                previous[i] = json.loads(answers[-1])["id"]
            assert answers[0] == answers[1]
        with_t, without = (side.engine for side in sides)
        assert list(with_t.turn_log) == list(without.turn_log)
        assert with_t.metrics.to_dict() == without.metrics.to_dict()
        assert len(with_t.bodies) == len(without.bodies) == 3
        for response_id in (log.response_id for log in with_t.turn_log):
            assert with_t.bodies.response_json(response_id) == without.bodies.response_json(response_id)
            assert with_t.store.get(response_id) == without.store.get(response_id)

    asyncio.run(run())


def test_a_stored_answer_keeps_its_templates_format_and_its_values_not_its_bytes() -> None:
    import gc

    server = _Server(templates=True)
    answers = [server.answer({"model": "m", "input": f"task {i}"}) for i in range(3)]
    bodies = server.engine.bodies
    entries = [bodies._bodies[json.loads(a)["id"]] for a in answers]
    gc.collect()  # one collection: an entry is a flat tuple of plain values
    for answer, entry in zip(answers, entries, strict=True):
        input_json, size, form, *values = entry
        assert form is entries[0][2]  # one format shared by every answer of the template
        assert sum(len(v) for v in values if isinstance(v, bytes)) < len(answer) / 5
        assert not gc.is_tracked(entry)
        assert bodies.response_json(json.loads(answer)["id"]) == answer
        assert size == len(answer) + len(input_json)
    assert bodies.bytes == sum(entry[1] for entry in entries)
    # Evicted by the same byte count as a body kept as bytes.
    bodies.max_bytes = entries[-1][1]
    bodies.keep("resp_other", b"{}", ())
    assert len(bodies) == 1 and bodies.bytes == len(b"{}") + len(b"[]")


@pytest.mark.parametrize("odd", ["resp-1", "9lives", 'a "quoted" id', "é_id", "tab\tid", "line\u2028id", ""])
def test_ids_that_are_not_letters_digits_and_underscores_are_written_as_json_writes_them(odd: str) -> None:
    """The engine's ids are written as they are; any other id source's go through the encoder (tests pass theirs)."""
    request = parse_create_body(json.dumps(BODIES["minimal"]))
    plan = PLANS["reasoning, summary, encrypted"]
    template = build_template(request, plan)
    assert template is not None

    def ids(prefix: str) -> str:
        return f"{odd}{prefix}"

    values = template.values(odd, 1, ids, odd or None, 3, 1)
    assert values is not None
    final = assemble_response(request, plan, response_id=odd, created_at=1, ids=ids, input_tokens=3, cached_tokens=1)
    final["previous_response_id"] = odd or None
    assert template.format % values == dumps(final)
