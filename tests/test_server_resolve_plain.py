"""The plain resolve (``Engine._resolve_plain``) decides exactly as the general one.

Most creates over HTTP carry no tools, settings or seed, on a server without faults or a script; for
them :meth:`labkit.live.server.engine.Engine.resolve` skips the steps such a request cannot take. On generated
sequences of creates (first turns, full histories with tool calls and outputs, continuations of stored and unstored
responses, unknown ids, ``max_output_tokens``), twin engines with watchers, one held on the general path and
planning each output anew, must resolve every request alike (or raise the same error), answer it byte for byte alike
and tell their watchers the same.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.live.server.engine import Engine, Resolved
from labkit.live.server.state import ResponseRecord
from labkit.model import load_profile, load_workload
from labkit.wire.protocol import ProtocolError, parse_create_body

ITEMS = [
    {"type": "message", "role": "user", "content": "fix the failing test"},
    {"role": "assistant", "content": [{"type": "output_text", "text": "looking"}]},
    {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd":"ls"}'},
    {"type": "function_call_output", "call_id": "c1", "output": "a.py b.py"},
    {"type": "function_call_output", "call_id": "c9", "output": "no such call"},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "é and 😀, then more"}]},
]


@st.composite
def creates(draw: st.DrawFn) -> dict[str, Any]:
    """A create body without tools or settings, its ``previous_response_id`` a placeholder for now."""
    body: dict[str, Any] = {"model": "m"}
    if draw(st.booleans()):
        body["input"] = draw(st.sampled_from(["hi", "a longer first message, several tokens", "ü" * 9]))
    else:
        body["input"] = draw(st.lists(st.sampled_from(ITEMS), min_size=1, max_size=5))
    if draw(st.booleans()):
        body["instructions"] = draw(st.sampled_from(["Be brief.", "Réponds en français. " * 5]))
    chain = draw(st.sampled_from(["none", "none", "previous", "first", "unknown"]))
    if chain != "none":
        body["previous_response_id"] = chain
    if draw(st.integers(0, 3)) == 0:
        body["store"] = False
    if draw(st.integers(0, 3)) == 0:
        body["max_output_tokens"] = draw(st.sampled_from([1, 16, 5000]))
    if draw(st.integers(0, 3)) == 0:
        body["metadata"] = {"team": "a"}
    return body


class _Told:
    """A watcher (as ``labkit serve`` has one) that keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[Any, ...]] = []

    def resolved(self, resolved: Resolved) -> None:
        self.told.append(("resolved", resolved.conversation_key, resolved.spec))

    def ended(self, conversation_key: str, turn: int, record: ResponseRecord | None) -> None:
        self.told.append(("ended", conversation_key, turn, record))


def _engine(general: bool) -> Engine:
    engine = Engine(load_profile("websocket"), load_workload("fast_test"), seed=3, instant=True, spin_s=0.0)
    counter = itertools.count()
    engine.ids = lambda prefix: f"{prefix}_{next(counter):06d}"
    engine.clock = lambda: 1_700_000_000.0
    engine.watcher = _Told()
    if general:
        # Held on the general path, each output planned anew (not kept per turn): the kept plans are checked too.
        engine._resolve_plain = lambda request, transport, t0: engine._resolve_general(  # type: ignore[method-assign]
            request, (transport, t0, None, 0, None)
        )
        engine._plain_output = lambda request, index, specs: engine._shape_plain(  # type: ignore[method-assign]
            request, index, specs[min(index, len(specs) - 1)]
        )
    return engine


def _outcome(engine: Engine, body: dict[str, Any], t: float) -> tuple[str, Any]:
    request = parse_create_body(json.dumps(body))
    try:
        resolved = engine.resolve(request, transport="http", t0=t)
    except ProtocolError as exc:
        return "error", (exc.code, str(exc), exc.param)
    fields = resolved._asdict()
    assert fields.pop("faults") is engine._no_faults
    fields.pop("request")
    return "answer", (fields, engine.answer_at_once(resolved, t + 1.0))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(creates(), min_size=1, max_size=8))
def test_the_plain_path_resolves_and_answers_as_the_general_one(bodies: list[dict[str, Any]]) -> None:
    plain, general = _engine(general=False), _engine(general=True)
    answered: list[str] = []
    for t, body in enumerate(bodies):
        prev = body.get("previous_response_id")
        if prev is not None:
            ids = {"previous": answered[-1:], "first": answered[:1], "unknown": ["resp_unknown"]}[prev]
            if not ids:
                del body["previous_response_id"]
            else:
                body["previous_response_id"] = ids[0]
        got = _outcome(plain, body, float(t))
        assert got == _outcome(general, body, float(t))
        if got[0] == "answer":
            answered.append(json.loads(got[1][1])["id"])
    assert plain.metrics.to_dict() == general.metrics.to_dict()
    assert plain.turn_log == general.turn_log
    assert plain.watcher.told == general.watcher.told  # type: ignore[union-attr]


def test_a_request_the_plain_path_cannot_take_goes_the_general_way() -> None:
    engine = _engine(general=False)
    taken: list[str] = []
    engine._resolve_plain = lambda *args: taken.append("plain")  # type: ignore[method-assign,assignment,return-value]
    tool = {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}
    for body in (
        {"model": "m", "input": "hi", "tools": [tool]},
        {"model": "m", "input": "hi", "temperature": 0.5},
        {"model": "m", "input": "hi", "metadata": {"labkit_seed": "7"}},
    ):
        engine.resolve(parse_create_body(json.dumps(body)), transport="http", t0=0.0)
    assert taken == []
    engine.resolve(parse_create_body(json.dumps({"model": "m", "input": "hi"})), transport="http", t0=0.0)
    assert taken == ["plain"]  # a watcher (every engine here has one, as labkit serve's) does not keep it off
