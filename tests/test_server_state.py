"""The server's state rules: connection cache, store, replicas, warm-up, lanes, lifetime limit."""

from __future__ import annotations

import asyncio
import itertools
import json

import httpx
import pytest
import websockets
from test_server_support import TOOLS, create, sim_server, task, tool_output, ws_events

from labkit.live.memory import memory_connect
from labkit.live.server import Faults, SimServer
from labkit.live.server.faults import FaultInjector
from labkit.model import hit_probability, load_profile, load_workload

# Tests that need a socket (HTTP, the upgrade, framing) are marked live; WebSocket mode's rules run in
# memory (labkit.live.memory), in make test-fast.

WL = load_workload("fast_test")


def _continue(resp: dict, n: int = 20, **kw) -> dict:
    return create([tool_output(resp["output"][0]["call_id"], n)], tools=TOOLS, previous_response_id=resp["id"], **kw)


async def test_unknown_previous_response_id_is_an_error_and_the_socket_stays_usable() -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        (err,) = await ws_events(ws, create("x", previous_response_id="resp_nope", store=False))
        assert err["type"] == "error"
        assert err["error"]["code"] == "previous_response_not_found"
        assert err["error"]["param"] == "previous_response_id"
        assert err["status"] == 400
        ok = await ws_events(ws, create("x"))
        assert ok[-1]["type"] == "response.completed"
        assert server.metrics["previous_response_not_found"] == 1


async def test_store_false_lives_only_on_its_connection() -> None:
    async with sim_server(workload=WL, instant=True) as server:
        async with memory_connect(server) as ws:
            first = (await ws_events(ws, create(task(100), tools=TOOLS, store=False)))[-1]["response"]
        # Reconnecting loses the connection-local state; store=false kept nothing else.
        async with memory_connect(server) as ws:
            (err,) = await ws_events(ws, _continue(first, store=False))
            assert err["error"]["code"] == "previous_response_not_found"


async def test_store_true_continues_on_a_new_connection_from_the_store() -> None:
    async with sim_server(workload=WL, instant=True) as server:
        async with memory_connect(server) as ws:
            first = (await ws_events(ws, create(task(100), tools=TOOLS, store=True)))[-1]["response"]
        async with memory_connect(server) as ws:
            done = await ws_events(ws, _continue(first))
            assert done[-1]["type"] == "response.completed"
        last = server.turn_log[-1]
        assert last.source == "store" and not last.cache.connection_cache_hit
        assert last.spec.index == 1
        # The store load costs time in the plan: the profile's state load is on the critical path.
        from labkit.model import plan_turn

        plan = plan_turn(server.engine.profile_for("store"), last.spec, last.cache)
        assert dict((s.name, s.duration_s) for s in plan)["load_state"] > 0
        assert server.metrics["store_hits"] == 1 and server.metrics["cache_misses"] == 1


@pytest.mark.live
async def test_http_chaining_needs_the_store() -> None:
    async with SimServer(workload=WL, instant=True) as server, httpx.AsyncClient(base_url=server.base_url) as c:
        r = await c.post("/responses", json={"model": "sim", "input": "x", "tools": TOOLS, "store": False})
        resp = r.json()
        body = {k: v for k, v in _continue(resp).items() if k != "type"}
        r = await c.post("/responses", json=body)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "previous_response_not_found"


def _seed_with(pattern: list[bool], rate: float, field: str) -> int:
    """A fault seed whose first draws of ``field`` follow ``pattern`` (computed, not hard-coded)."""
    for seed in range(1000):
        inj = FaultInjector(Faults(seed=seed, **{f"{field}_rate": rate}))
        if [getattr(inj.draw(10), field) for _ in pattern] == pattern:
            return seed
    raise AssertionError("no seed found")


async def test_failed_continuation_evicts_its_parent() -> None:
    seed = _seed_with([False, True], 0.5, "fail")
    faults = Faults(seed=seed, fail_rate=0.5)
    async with sim_server(workload=WL, instant=True, faults=faults) as server, memory_connect(server) as ws:
        first = (await ws_events(ws, create(task(100), tools=TOOLS, store=False)))[-1]["response"]
        failed = await ws_events(ws, _continue(first, store=False))
        assert failed[-1]["type"] == "response.failed"
        assert failed[-1]["response"]["error"]["code"] == "server_error"
        # The client must not retry the same parent: it is gone from the connection cache.
        server.faults = Faults()  # (the injector keeps its seeded plan; no more failures are needed)
        server.engine.faults = FaultInjector(Faults())
        (err,) = await ws_events(ws, _continue(first, store=False))
        assert err["error"]["code"] == "previous_response_not_found"
        assert server.metrics["cached_responses"] == 0


async def test_fork_on_another_lane_keeps_the_parent() -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        first = (await ws_events(ws, create(task(100), tools=TOOLS, store=False)))[-1]["response"]
        fork = await ws_events(ws, _continue(first, store=False, stream_id="b"), stream_id="b")
        assert fork[-1]["type"] == "response.completed"
        assert server.turn_log[-1].source == "connection"
        # The default lane still holds the parent, so it can continue from it too.
        again = await ws_events(ws, _continue(first, store=False))
        assert again[-1]["type"] == "response.completed"
        assert server.metrics["cache_hits"] == 2


async def test_generate_false_warms_the_cache() -> None:
    async with sim_server(workload=WL, instant=True) as server, memory_connect(server) as ws:
        warm = await ws_events(ws, create(task(500), tools=TOOLS, store=False, generate=False))
        assert [e["type"] for e in warm] == ["response.created", "response.in_progress", "response.completed"]
        resp = warm[-1]["response"]
        assert resp["id"].startswith("resp_") and resp["output"] == []
        assert resp["usage"]["output_tokens"] == 0
        go = await ws_events(ws, create("go", tools=TOOLS, previous_response_id=resp["id"], store=False))
        assert go[-1]["response"]["output"][0]["type"] == "function_call"
        _warm, turn = server.turn_log
        # Nothing was sampled: the next request is still the first model turn, with the warmed context.
        assert turn.spec.index == 0 and turn.cache.connection_cache_hit
        assert turn.spec.context_tokens == 500 and turn.spec.new_input_tokens == 1
        m = server.metrics
        assert m["warmups"] == 1 and m["responses"] == 1


async def test_evict_fault_forces_a_miss() -> None:
    faults = Faults(seed=1, evict_rate=1.0)
    async with sim_server(workload=WL, instant=True, faults=faults) as server, memory_connect(server) as ws:
        first = (await ws_events(ws, create(task(100), tools=TOOLS, store=True)))[-1]["response"]
        done = await ws_events(ws, _continue(first))
        assert done[-1]["type"] == "response.completed"
        assert server.turn_log[-1].source == "store"
        assert server.metrics["faults_evicted"] == 1


@pytest.mark.live
@pytest.mark.parametrize(("routing", "replicas"), [("sticky", 4), ("random", 4)])
async def test_replica_routing_decides_rendered_cache_hits(routing: str, replicas: int) -> None:
    profile = load_profile("http_chained", replicas=replicas, routing=routing)
    n = 40
    async with (
        SimServer(profile, WL.with_(turns=n + 1), instant=True, seed=3) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        r = await c.post("/responses", json={"model": "sim", "input": "x", "tools": TOOLS, "store": True})
        resp = r.json()
        for _ in range(n):
            body = {k: v for k, v in _continue(resp, store=True).items() if k != "type"}
            resp = (await c.post("/responses", json=body)).json()
        m = server.metrics
        assert m["replica_hits"] + m["replica_misses"] == n
        hits = m["replica_hits"] / n
        if routing == "sticky":
            assert hits == hit_probability(profile) == 1.0
        else:
            # 1/4 expected; 40 draws: a wide band that a sticky or broken router cannot fall into.
            assert 0.05 <= hits <= 0.6
        assert all(
            t.cache.replica_hit == (t.source == "store" and True) or not t.cache.replica_hit for t in server.turn_log
        )


async def test_default_lane_queues_a_second_create_fifo() -> None:
    # The WebSocket-mode guide: the default lane "follows the same ordering and concurrency rules as named
    # streams": a create sent while one runs waits its turn (response.queued), it is not rejected.
    profile = load_profile("websocket", decode_tps=2000)
    async with sim_server(profile, WL) as server, memory_connect(server) as ws:
        await ws.send(json.dumps(create("one")))
        await ws.send(json.dumps(create("two")))
        events = []
        while sum(e["type"] == "response.completed" for e in events) < 2:
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        types = [e["type"] for e in events]
        assert "error" not in types
        queued = next(e for e in events if e["type"] == "response.queued")
        assert queued["response"]["status"] == "queued" and "stream_id" not in queued
        # FIFO without overlap: the second response is created only after the first completed.
        first_done = types.index("response.completed")
        created = [i for i, t in enumerate(types) if t == "response.created"]
        assert len(created) == 2 and created[1] > first_done
        second = [e for e in events if e.get("response", {}).get("id") == queued["response"]["id"]]
        assert [e["type"] for e in second][-1] == "response.completed"
        assert server.metrics["responses"] == 2


async def test_named_lanes_interleave_and_queue_fifo() -> None:
    profile = load_profile("websocket", decode_tps=2000)
    async with sim_server(profile, WL) as server, memory_connect(server) as ws:
        for lane, text in (("a", "a1"), ("b", "b1"), ("a", "a2")):
            await ws.send(json.dumps(create(text, stream_id=lane)))
        order: list[tuple[str, str]] = []
        completed = 0
        while completed < 3:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ev["type"] != "error", ev
            order.append((ev["stream_id"], ev["type"]))
            completed += ev["type"] == "response.completed"
        lanes_done = [lane for lane, t in order if t == "response.completed"]
        assert lanes_done.count("a") == 2 and lanes_done.count("b") == 1
        # Lanes interleave: b's events arrive between a's first create and a's completion.
        first_a_done = next(i for i, (lane, t) in enumerate(order) if lane == "a" and t == "response.completed")
        assert any(lane == "b" for lane, _ in order[:first_a_done])
        # FIFO within a lane: a's second response is created only after its first completed.
        a_events = [t for lane, t in order if lane == "a"]
        assert a_events.index("response.completed") < len(a_events) - 1 - a_events[::-1].index("response.created")


async def test_lane_limit_and_invalid_stream_id() -> None:
    async with sim_server(workload=WL, instant=True, max_lanes=2) as server, memory_connect(server) as ws:
        for lane in ("a", "b"):
            done = await ws_events(ws, create("x", stream_id=lane), stream_id=lane)
            assert done[-1]["type"] == "response.completed"
        (err,) = await ws_events(ws, create("x", stream_id="c"), stream_id="c")
        assert err["error"]["code"] == "websocket_stream_limit_reached"
        (err,) = await ws_events(ws, create("x", stream_id="bad lane!"))
        assert err["error"]["code"] == "invalid_stream_id"
        ok = await ws_events(ws, create("x", stream_id="a"), stream_id="a")
        assert ok[-1]["type"] == "response.completed"


async def test_active_response_limit_queues_instead_of_failing() -> None:
    profile = load_profile("websocket", decode_tps=4000)
    async with (
        sim_server(profile, WL, max_active_responses=1) as server,
        memory_connect(server) as ws,
    ):
        for lane in ("a", "b", "c"):
            await ws.send(json.dumps(create("x", stream_id=lane)))
        done = []
        while len(done) < 3:
            ev = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert ev["type"] != "error", ev
            if ev["type"] == "response.completed":
                done.append(ev["stream_id"])
        assert sorted(done) == ["a", "b", "c"]
        # With one active slot, the responses ran one after another.
        log = server.turn_log
        assert all(b.t0 >= a.t_done - 1e-3 for a, b in itertools.pairwise(log))


async def test_connection_lifetime_limit() -> None:
    async with sim_server(workload=WL, instant=True, connection_lifetime_s=0.3) as server:
        async with memory_connect(server) as ws:
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"
            (err,) = await asyncio.wait_for(ws_events(ws), 5)
            assert err["error"]["code"] == "websocket_connection_limit_reached"
            with pytest.raises(websockets.ConnectionClosedOK):
                await asyncio.wait_for(ws.recv(), 5)
        # Other and new connections are unaffected.
        async with memory_connect(server) as ws:
            assert (await ws_events(ws, create("x")))[-1]["type"] == "response.completed"


async def test_many_connections_keep_their_own_caches() -> None:
    """Concurrent sockets: each chain continues from its own cache; nobody sees another's responses."""
    async with sim_server(workload=WL, tps=4000) as server:

        async def rollout(i: int) -> list[str]:
            ids = []
            async with memory_connect(server) as ws:
                resp = (await ws_events(ws, create(task(50 + i), tools=TOOLS, store=False)))[-1]["response"]
                ids.append(resp["id"])
                for _ in range(2):
                    events = await ws_events(ws, _continue(resp, store=False))
                    assert events[-1]["type"] == "response.completed", events[-1]
                    resp = events[-1]["response"]
                    ids.append(resp["id"])
            return ids

        results = await asyncio.wait_for(asyncio.gather(*(rollout(i) for i in range(12))), 60)
        all_ids = [r for ids in results for r in ids]
        assert len(set(all_ids)) == len(all_ids) == 36
        m = server.metrics
        assert m["cache_hits"] == 24 and m["cache_misses"] == 0 and m["connections"] == 12
        by_id = {t.response_id: t for t in server.turn_log}
        for i, ids in enumerate(results):
            assert [by_id[r].spec.index for r in ids] == [0, 1, 2]
            assert by_id[ids[0]].spec.new_input_tokens == 50 + i


@pytest.mark.live
async def test_async_with_a_started_server_and_a_per_conversation_seed():
    import httpx

    from labkit.live.server import SimServer
    from labkit.model import load_workload
    from labkit.wire.protocol import SEED_METADATA_KEY

    w = load_workload("codex_bugfix")
    async with await SimServer.start(profile="websocket", workload=w, instant=True) as server:
        assert server.running
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            usage = {}
            for seed in (1, 2):
                body = {
                    "model": "m",
                    "input": "hi",
                    "metadata": {SEED_METADATA_KEY: str(seed)},
                    "tools": [{"type": "function", "name": "grep", "parameters": {"type": "object"}}],
                }
                r = await http.post("/responses", json=body)
                assert r.status_code == 200
                usage[seed] = r.json()["usage"]["output_tokens"]
            assert usage[1] == w.turn_specs(1)[0].output_tokens
            assert usage[2] == w.turn_specs(2)[0].output_tokens
            bad = await http.post(
                "/responses", json={"model": "m", "input": "hi", "metadata": {SEED_METADATA_KEY: "x"}}
            )
            assert bad.status_code == 400 and "labkit_seed" in bad.json()["error"]["message"]
    assert not server.running
