"""Queue bounds of WebSocket mode: creates waiting per lane and per connection (issue 23, item 4).

The rules are checked on the pure state machine (no socket, a made-up clock), then once over a real socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from session_helpers import _create, _session, _started, _types

from labkit.live.server import SimServer
from labkit.live.server.session import MAX_QUEUED, MAX_QUEUED_PER_LANE, WebSocketSession, Work
from labkit.wire import protocol as P


def _finish(session: WebSocketSession, work: Work, now: float) -> list:
    ev = work.events
    ev.start()
    ev.set_usage(1, 0)
    ev.completed()
    return session.finished(work, now)


def test_the_defaults_are_sane() -> None:
    assert (MAX_QUEUED_PER_LANE, MAX_QUEUED) == (64, 256)
    s = _session()
    assert (s.max_queued_per_lane, s.max_queued) == (64, 256)


def test_a_full_lane_answers_an_error_in_the_api_shape_and_the_lane_goes_on() -> None:
    s = _session(max_queued_per_lane=2)
    (running,) = _started(s.receive(_create(stream_id="a"), 0.0))
    assert _types(s.receive(_create(stream_id="a"), 0.1)) == ["response.queued"]
    assert _types(s.receive(_create(stream_id="a"), 0.2)) == ["response.queued"]
    refused = s.receive(_create(stream_id="a"), 0.3)
    assert _types(refused) == ["error"]
    event = refused[0].event
    assert event["status"] == 429 and event["stream_id"] == "a"
    err = event["error"]
    assert err["code"] == "websocket_queue_limit_reached" and err["param"] == "stream_id"
    assert err["type"] == "invalid_request_error" and "2 requests already wait on this lane" in err["message"]
    # Another lane is not affected, and the full lane accepts again once one of its creates starts.
    assert _types(s.receive(_create(stream_id="b"), 0.4)) == ["Start"]
    (nxt,) = _started(_finish(s, running, 1.0))
    assert nxt.queued and s.queued_count == 1
    assert _types(s.receive(_create(stream_id="a"), 1.1)) == ["response.queued"]


def test_the_connection_bound_counts_waiting_creates_of_every_lane() -> None:
    s = _session(max_queued=3, max_active=1)
    (running,) = _started(s.receive(_create(stream_id="a"), 0.0))
    for lane in ("a", "b", "c"):
        assert _types(s.receive(_create(stream_id=lane), 0.1)) == ["response.queued"]
    assert s.queued_count == 3
    refused = s.receive(_create(stream_id="d"), 0.2)
    assert _types(refused) == ["error"]
    err = refused[0].event["error"]
    assert err["code"] == "websocket_queue_limit_reached" and err["param"] is None
    assert "this connection" in err["message"]
    # The refused lane was not created: it costs no lane slot.
    assert "d" not in s.lanes
    _finish(s, running, 1.0)
    assert s.queued_count == 2
    assert _types(s.receive(_create(stream_id="d"), 1.1)) == ["response.queued"]


def test_a_create_that_would_start_at_once_is_never_refused() -> None:
    # Creates wait behind their own lanes; an idle lane under the active limit still starts.
    s = _session(max_queued=1, max_active=4)
    _started(s.receive(_create(stream_id="a"), 0.0))
    assert _types(s.receive(_create(stream_id="a"), 0.1)) == ["response.queued"]
    assert s.queued_count == 1
    assert _types(s.receive(_create(stream_id="b"), 0.2)) == ["Start"]


def test_queued_creates_are_counted_out_as_they_start_and_on_rejection() -> None:
    s = _session(max_queued_per_lane=64)
    (first,) = _started(s.receive(_create(), 0.0))
    for i in range(64):
        s.receive(_create(), 0.01 * i)
    assert s.queued_count == 64
    assert _types(s.receive(_create(), 1.0)) == ["error"]
    (second,) = _started(_finish(s, first, 2.0))
    assert s.queued_count == 63
    (third,) = _started(s.rejected(second, P.ProtocolError("invalid_value", "x"), 3.0)[1:])
    assert s.queued_count == 62 and third.queued


def test_a_steered_successor_is_not_refused_by_the_bounds() -> None:
    s = _session(max_queued_per_lane=1)
    (work,) = _started(s.receive(_create(), 0.0))
    assert _types(s.receive(_create(), 0.1)) == ["response.queued"]
    steer = json.dumps({"type": "response.steer", "previous_response_id": work.response_id, "input": "more"})
    assert "response.steer.accepted" in _types(s.receive(steer, 0.2))
    after = _finish(s, work, 1.0)
    (successor,) = _started(after)
    assert successor.request.previous_response_id == work.response_id
    assert s.queued_count == 1


@pytest.mark.parametrize("name", ["max_queued_per_lane", "max_queued"])
def test_simserver_validates_the_bounds(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SimServer(**{name: 0})


@pytest.mark.live
async def test_a_full_queue_over_a_socket_answers_an_error_and_the_connection_stays_usable() -> None:
    # Real waits (tps 50) so that creates pile up behind the first; instant would drain the lane.
    server = SimServer(tps=50, seed=1, max_queued_per_lane=3, max_queued=8)
    async with server, aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        body = P.build_create("gpt-5", "hi")
        for _ in range(6):
            await ws.send_str(json.dumps(body))
        seen: dict[str, int] = {}
        errors: list[dict[str, Any]] = []
        while seen.get("response.completed", 0) < 4:
            msg = await asyncio.wait_for(ws.receive(), 30)
            event = json.loads(msg.data)
            seen[event["type"]] = seen.get(event["type"], 0) + 1
            if event["type"] == "error":
                errors.append(event)
        # One ran at once, three waited, two were refused: then the four all completed.
        assert seen["response.queued"] == 3 and len(errors) == 2
        assert {e["error"]["code"] for e in errors} == {"websocket_queue_limit_reached"}
        assert server.metrics["errors"] >= 2
