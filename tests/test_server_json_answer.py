"""A non-streaming answer is assembled whole (no stream events), with the bytes ``response.completed`` carries.

Two engines with the same seed, the same fixed ids and clock, and the same requests in the same order: one
streams every turn (collecting its events), the other answers each whole. The JSON answer must be byte for byte
the streamed terminal event's ``response``, for every shape of response the server makes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest

from labkit.live.server import SimServer
from labkit.live.server.assembly import assemble_response
from labkit.live.server.engine import Engine, TurnFailed
from labkit.live.server.faults import Faults
from labkit.live.server.output import plan_output
from labkit.model import load_profile, load_workload
from labkit.wire.protocol import ResponseEvents, ResponseStateError, ServerEvent, parse_create_body

WL = load_workload("fast_test")
TOOLS = [
    {"type": "function", "name": "run_tool", "parameters": {"type": "object", "properties": {}}},
    {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}},
    },
]


def _ids() -> Any:
    counter = itertools.count()
    return lambda prefix: f"{prefix}_{next(counter):06d}"


class _Side:
    """One engine with fixed ids and clock; streams its turns, answers them whole after a turn, or at once."""

    def __init__(
        self, stream: bool, *, workload: Any = WL, faults: Faults | None = None, instant: bool = True, at_once=False
    ) -> None:
        profile = load_profile("websocket", decode_tps=50_000)
        self.engine = Engine(profile, workload, seed=7, instant=instant, faults=faults, spin_s=0.0)
        self.stream = stream
        self.at_once = at_once
        self.ids = _ids()
        self.engine.ids = self.ids
        self.engine.clock = lambda: 1_700_000_000.0

    async def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        req = parse_create_body(json.dumps({**body, "stream": self.stream}))
        loop = asyncio.get_running_loop()
        resolved = self.engine.resolve(req, transport="http", t0=loop.time())
        if self.at_once:
            assert self.engine.due_at_once(resolved)
            answer = self.engine.answer_at_once(resolved, loop.time())
            if req.store:  # kept as the bytes that went out, read back whole
                assert self.engine.bodies.response_json(rid := json.loads(answer)["id"]) == answer
                assert self.engine.bodies.get(rid) == (json.loads(answer), req.input)
            return dict(json.loads(answer))
        events = ResponseEvents(req, ids=self.ids, clock=lambda: 1_700_000_000.0, stream_id=req.stream_id)
        turn = self.engine.pace(resolved, events=events, paced=req.stream)
        sent: list[ServerEvent] = []

        async def emit(batch: list[ServerEvent]) -> None:
            sent.extend(batch)

        try:
            ev = await self.engine.run(turn, emit if self.stream else None)
        except TurnFailed as failed:
            ev = failed.events
        if self.stream:
            assert sent[-1].terminal
            return dict(sent[-1]["response"])
        assert ev.final is not None
        return ev.final


def _chain(first: dict[str, Any], answer: dict[str, Any], text: str = "next") -> dict[str, Any]:
    """The continuation of ``answer``: every function call answered, chained by ``previous_response_id``."""
    outputs = [
        {"type": "function_call_output", "call_id": o["call_id"], "output": "ok"}
        for o in answer["output"]
        if o["type"] == "function_call"
    ]
    return {**first, "input": outputs or text, "previous_response_id": answer["id"]}


SHAPES: dict[str, list[dict[str, Any]]] = {
    "text": [{"model": "m", "input": "hi", "metadata": {"a": "b"}, "instructions": "be brief"}],
    "not stored": [{"model": "m", "input": "hi", "store": False, "temperature": 0.2}],
    "tool call": [{"model": "m", "input": "go", "tools": TOOLS[:1]}],
    "parallel calls": [{"model": "m", "input": "go", "tools": TOOLS, "parallel_tool_calls": True}],
    "reasoning with summary": [
        {
            "model": "m",
            "input": "think",
            "reasoning": {"effort": "low", "summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "tools": TOOLS,
        }
    ],
    "max_output_tokens": [{"model": "m", "input": "hi", "max_output_tokens": 16, "reasoning": {"effort": "low"}}],
    "cut tool call": [{"model": "m", "input": "go", "tools": TOOLS[1:], "max_output_tokens": 3}],
}


def _workload(name: str) -> Any:
    return WL.with_(parallel_tool_calls=4.0) if name == "parallel calls" else WL


@pytest.mark.parametrize("at_once", [False, True], ids=["after a turn", "at once"])
@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_json_answer_bytes_equal_the_streamed_response(name: str, at_once: bool) -> None:
    streamed = _Side(True, workload=_workload(name))
    whole = _Side(False, workload=_workload(name), at_once=at_once)
    (body,) = SHAPES[name]
    a, b = await streamed.answer(body), await whole.answer(body)
    assert json.dumps(b) == json.dumps(a)
    assert b["status"] == ("incomplete" if name in ("max_output_tokens", "cut tool call") else "completed")
    kinds = [o["type"] for o in b["output"]]
    if name == "parallel calls":
        assert kinds.count("function_call") > 1
    if name == "reasoning with summary":
        assert kinds[0] == "reasoning" and b["output"][0]["summary"] and b["output"][0]["encrypted_content"]
    if name == "cut tool call":
        assert kinds == ["function_call"] and b["output"][0]["status"] == "incomplete"
    # What each side kept is the same too: the record a continuation finds, the body a retrieve reads, the log.
    for engine_a, engine_b in [(streamed.engine, whole.engine)]:
        assert engine_a.store.get(a["id"]) == engine_b.store.get(b["id"])
        assert json.dumps(engine_a.bodies.get(a["id"])) == json.dumps(engine_b.bodies.get(b["id"]))
        log_a, log_b = engine_a.turn_log[-1], engine_b.turn_log[-1]
        assert (log_a.status, log_a.spec, log_a.cache, log_a.source) == (
            log_b.status,
            log_b.spec,
            log_b.cache,
            log_b.source,
        )
        counted = ("requests", "responses", "output_tokens", "responses_incomplete", "store_hits", "replica_hits")
        assert {k: getattr(engine_a.metrics, k) for k in counted} == {k: getattr(engine_b.metrics, k) for k in counted}


@pytest.mark.parametrize("at_once", [False, True], ids=["after a turn", "at once"])
async def test_a_previous_response_id_chain_answers_the_same_bytes_and_stores_the_same(at_once: bool) -> None:
    streamed, whole = _Side(True), _Side(False, at_once=at_once)
    first = {"model": "m", "input": "go", "tools": TOOLS[:1], "store": True}
    a, b = await streamed.answer(first), await whole.answer(first)
    for _ in range(WL.turns):
        assert json.dumps(b) == json.dumps(a)
        assert streamed.engine.store.get(a["id"]) == whole.engine.store.get(b["id"])
        a, b = await streamed.answer(_chain(first, a)), await whole.answer(_chain(first, b))
    assert json.dumps(b) == json.dumps(a)
    assert b["previous_response_id"] is not None
    # The store holds the same record and the same body either way (retrieve, input_items, chaining).
    for rid in (a["id"], b["id"]):
        assert streamed.engine.bodies.get(rid) is not None
    assert streamed.engine.store.get(a["id"]) == whole.engine.store.get(b["id"])
    assert json.dumps(streamed.engine.bodies.get(a["id"])) == json.dumps(whole.engine.bodies.get(b["id"]))


async def test_an_injected_failure_answers_the_failed_response() -> None:
    faults = Faults(fail_rate=1.0, seed=3)
    streamed, whole = _Side(True, faults=faults), _Side(False, faults=faults)
    body = {"model": "m", "input": "hi"}
    a, b = await streamed.answer(body), await whole.answer(body)
    assert b["status"] == "failed" and json.dumps(b) == json.dumps(a)


async def test_a_paced_json_answer_waits_for_the_plans_last_stage() -> None:
    side = _Side(False, instant=False)
    loop = asyncio.get_running_loop()
    req = parse_create_body(json.dumps({"model": "m", "input": "hi"}))
    turn = side.engine.prepare(req, transport="http", t0=loop.time(), paced=False)
    end = turn.pacer.end
    assert end > turn.resolved.t0
    await side.engine.run(turn, None)
    assert loop.time() >= end  # never early against the plan (no upper bound: no timing assertions)
    assert turn.events.final is not None and turn.events.final["status"] == "completed"


def test_assembling_follows_the_transition_table() -> None:
    req = parse_create_body(json.dumps({"model": "m", "input": "hi"}))
    ev = ResponseEvents(req, ids=_ids(), clock=lambda: 0.0)
    whole = assemble_response(
        req,
        plan_output(kind="message", output_tokens=3),
        response_id=ev.id,
        created_at=ev.created_at,
        ids=ev.ids,
        input_tokens=5,
        cached_tokens=0,
    )
    with pytest.raises(ResponseStateError, match="completed"):
        ev.adopt(whole)  # before assemble()
    ev.assemble()
    with pytest.raises(ResponseStateError, match="start"):
        ev.start()  # an assembled answer never streams
    with pytest.raises(ValueError, match="not this response's"):
        ev.adopt({**whole, "id": "resp_other"})
    done = ev.adopt(whole)
    assert done is whole and ev.final is whole and ev.terminal and ev.status == "completed"
    assert done["output"][0]["content"][0]["text"] and done["usage"]["output_tokens"] == 3
    with pytest.raises(ResponseStateError):
        ev.adopt(whole)


@pytest.mark.live
async def test_over_http_the_json_answer_is_stored_and_chained() -> None:
    import httpx

    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", json={"model": "m", "input": "go", "tools": TOOLS[:1]})
        body = r.json()
        assert r.status_code == 200 and body["status"] == "completed"
        got = await c.get(f"/responses/{body['id']}")
        assert got.content == r.content  # the answer's own bytes
        items = await c.get(f"/responses/{body['id']}/input_items")
        assert items.json()["data"][0]["content"][0]["text"] == "go"
        nxt = await c.post("/responses", json=_chain({"model": "m", "tools": TOOLS[:1]}, body))
        assert nxt.status_code == 200 and nxt.json()["previous_response_id"] == body["id"]
        assert server.metrics["store_hits"] == 1
        assert server.metrics["delta_frames"] == 0  # nothing was streamed


def _all_pages_the_long_way(stored: tuple[dict[str, Any], ...], rid: str, order: str, limit: int, after: str | None):
    """input_items as it was before only the page was built: every item in resource form, then sliced."""
    from labkit.live.server.surface import _prefix
    from labkit.wire.items import resource_item

    items = [resource_item(item, f"{_prefix(item)}_{rid[5:]}{i:04d}") for i, item in enumerate(stored)]
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [it["id"] for it in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return items[:limit], len(items) > limit


def test_input_items_builds_only_the_page_and_pages_as_before() -> None:
    from labkit.live.server import surface

    engine = Engine(load_profile("websocket"), WL, seed=1, instant=True)
    stored = tuple(
        {"type": "message", "role": "user", "content": f"m{i}"}
        if i % 3
        else {
            "type": "function_call_output",
            "call_id": f"c{i}",
            "output": "ok",
            **({"id": "x_given"} if i == 3 else {}),
        }
        for i in range(9)
    )
    rid = "resp_" + "ab" * 24
    engine.bodies.put({"id": rid, "object": "response"}, stored)
    afters: list[str | None] = [None, "x_given", "nope"]
    afters += [f"msg_{rid[5:]}{i:04d}" for i in (1, 8)]
    for order in ("asc", "desc"):
        for limit in (1, 2, 5, 20):
            for after in afters:
                query = {"order": order, "limit": str(limit), **({"after": after} if after else {})}
                got = surface.input_items(engine, rid, query)
                page, more = _all_pages_the_long_way(stored, rid, order, limit, after)
                assert got["data"] == page and got["has_more"] == more, query


@pytest.mark.parametrize("name", sorted(SHAPES))
async def test_an_answer_at_once_counts_as_one_answered_after_its_turn(name: str) -> None:
    """Every counter, not only the answer's: the whole answer sent at once is counted as the waited one is."""
    after_turn = _Side(False, workload=_workload(name))
    at_once = _Side(False, workload=_workload(name), at_once=True)
    (body,) = SHAPES[name]
    await after_turn.answer(body)
    await at_once.answer(body)
    assert at_once.engine.metrics.to_dict() == after_turn.engine.metrics.to_dict()
