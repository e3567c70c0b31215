"""The response store's bounds: a count and the total JSON bytes of the readable bodies, oldest out first."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from labkit.live.memory import MemoryHttpTransport
from labkit.live.server import SimServer
from labkit.live.server.state import DEFAULT_MAX_STORED_BYTES, Bodies, body_size


def _response(rid: str, text: str = "x") -> dict:
    return {"id": rid, "object": "response", "output": [{"type": "message", "content": [{"text": text}]}]}


def test_body_size_is_its_compact_json_and_counts_a_lone_surrogate() -> None:
    response, items = _response("r1", "hi"), ({"role": "user", "content": "a\ud800"},)
    size = body_size(response, items)
    assert size > len('{"id":"r1"}')
    assert body_size(response, ({"role": "user", "content": "a"},)) < size  # the escape counts 6 bytes


def test_the_byte_cap_evicts_the_oldest_first_and_keeps_the_total() -> None:
    one = body_size(_response("r0", "x" * 100), ())
    bodies = Bodies(capacity=1000, max_bytes=3 * one)
    for i in range(5):
        bodies.put(_response(f"r{i}", "x" * 100), ())
        assert bodies.bytes <= 3 * one
    assert len(bodies) == 3 and bodies.bytes == 3 * one
    assert bodies.get("r0") is None and bodies.get("r1") is None
    assert bodies.get("r4") is not None
    assert bodies.delete("r4") and bodies.bytes == 2 * one
    # A body bigger than the whole cap is not kept (and evicts nothing).
    bodies.put(_response("big", "y" * 10 * one), ())
    assert bodies.get("big") is None and len(bodies) == 2 and bodies.bytes == 2 * one


def test_storing_the_same_id_again_replaces_it_without_double_counting() -> None:
    bodies = Bodies(capacity=10, max_bytes=10_000)
    bodies.put(_response("r", "a"), ())
    bodies.put(_response("r", "abc"), ())
    assert len(bodies) == 1 and bodies.bytes == body_size(_response("r", "abc"), ())


def test_the_count_cap_still_holds_and_defaults() -> None:
    bodies = Bodies(capacity=2)
    for i in range(4):
        bodies.put(_response(f"r{i}"), ())
    assert len(bodies) == 2 and bodies.max_bytes == DEFAULT_MAX_STORED_BYTES
    assert bodies.bytes == sum(body_size(_response(f"r{i}"), ()) for i in (2, 3))


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_byte_cap_names_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="max_stored_bytes"):
        SimServer(max_stored_bytes=bad)  # type: ignore[arg-type]


async def test_the_server_holds_its_stored_bytes_under_the_cap() -> None:
    cap = 6_000
    server = SimServer(instant=True, seed=1, max_stored_bytes=cap)
    async with server, httpx.AsyncClient(base_url=server.base_url) as http:
        ids = []
        for i in range(20):
            r = await http.post("/responses", json={"model": "gpt-5", "input": f"hello {i} " * 20})
            assert r.status_code == 200
            ids.append(r.json()["id"])
        m = server.metrics
        assert 0 < m["stored_bytes"] <= cap
        # The oldest body is gone (404), the newest readable; the oldest can still be continued from.
        assert (await http.get(f"/responses/{ids[0]}")).status_code == 404
        newest = await http.get(f"/responses/{ids[-1]}")
        assert newest.status_code == 200 and newest.content == r.content  # the bytes the create answered with
        r = await http.post("/responses", json={"model": "gpt-5", "input": "go on", "previous_response_id": ids[0]})
        assert r.status_code == 200


def test_a_body_is_kept_as_its_json_and_read_back_whole() -> None:
    bodies = Bodies(capacity=10)
    response = _response("r1", "caf\u00e9")
    items = (
        {"role": "user", "content": "a\ud800"},
        {"type": "function_call_output", "call_id": "c", "output": "ok", "n": 2**70},
    )
    bodies.put(response, items)
    assert bodies.response_json("r1") == json.dumps(response, ensure_ascii=False, separators=(",", ":")).encode()
    # A lone surrogate went out as its escape and comes back as itself, an integer beyond 64 bits as itself;
    # the input stays a tuple of items.
    assert bodies.get("r1") == (response, items)
    assert bodies.bytes == body_size(response, items)
    assert bodies.response_json("nope") is None and bodies.get("nope") is None


def test_a_stopped_server_serves_again_on_another_event_loop() -> None:
    # Paced (not instant): a create waits on its loop's timers, so a stale loop would fail it.
    server = SimServer(profile="ideal", workload="fast_test", seed=1)

    async def one_create() -> str:
        async with server, httpx.AsyncClient(base_url=server.base_url) as http:
            r = await http.post("/responses", json={"model": "gpt-5", "input": "hi"})
            assert r.status_code == 200
            return str(r.json()["id"])

    async def one_create_in_memory() -> str:
        async with MemoryHttpTransport(server, stream=False) as client:
            exchange = await client.create({"model": "gpt-5", "input": "hi"})
            assert exchange.status == "completed", exchange.error_code
            return str(exchange.response_id)

    # Each asyncio.run is a new loop: the server must not keep a stopped one's, started or served in memory.
    ids = {asyncio.run(one_create()), asyncio.run(one_create()), asyncio.run(one_create_in_memory())}
    assert len(ids) == 3
