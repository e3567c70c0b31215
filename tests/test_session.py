"""WebSocket mode's rules as a pure state machine: messages and completions in, actions out, no I/O.

The clock is a number passed in and ids come from a counter, so each rule is checked step by step."""

from __future__ import annotations

import json
from typing import Any

import pytest
from session_helpers import _create, _session, _started, _types

from labkit.live.server.session import (
    MAX_STEERS_PER_RESPONSE,
    Cancel,
    Close,
    Evict,
    Interrupt,
    WebSocketSession,
    Work,
)
from labkit.wire import protocol as P


def _run_to_end(session: WebSocketSession, work: Work, now: float, **kw: Any) -> list:
    ev = work.events
    ev.start()
    ev.set_usage(1, 0)
    ev.completed()
    return session.finished(work, now, **kw)


def test_a_create_on_an_idle_lane_starts_at_its_arrival() -> None:
    s = _session()
    actions = s.receive(_create(), 5.0)
    assert _types(actions) == ["Start"]
    (work,) = _started(actions)
    assert work.t0 == 5.0 and not work.queued and s.active == 1


def test_the_default_lane_runs_fifo_and_a_waiting_create_is_queued_at_once() -> None:
    s = _session()
    (first,) = _started(s.receive(_create(), 0.0))
    waiting = s.receive(_create(), 1.0)
    assert _types(waiting) == ["response.queued"]
    queued = waiting[0].event
    after = _run_to_end(s, first, 3.0)
    (second,) = _started(after)
    assert second.response_id == queued["response"]["id"] and second.queued
    # A create that waited starts its clock when it leaves the queue.
    assert second.t0 == 3.0


def test_named_lanes_interleave_and_carry_their_stream_id() -> None:
    s = _session()
    a = _started(s.receive(_create(stream_id="a"), 0.0))
    b = _started(s.receive(_create(stream_id="b"), 0.0))
    assert len(a) == len(b) == 1 and s.active == 2
    assert b[0].events.start()[0]["stream_id"] == "b"


def test_the_active_limit_queues_and_starts_lanes_in_the_order_they_waited() -> None:
    s = _session(max_active=1)
    (a,) = _started(s.receive(_create(stream_id="a"), 0.0))
    assert _types(s.receive(_create(stream_id="c"), 1.0)) == ["response.queued"]
    assert _types(s.receive(_create(stream_id="b"), 2.0)) == ["response.queued"]
    (nxt,) = _started(_run_to_end(s, a, 3.0))
    assert nxt.lane == "c"


def test_the_lane_limit_and_a_bad_stream_id() -> None:
    s = _session(max_lanes=1)
    s.receive(_create(stream_id="a"), 0.0)
    (err,) = s.receive(_create(stream_id="b"), 0.0)
    assert err.event["error"]["code"] == "websocket_stream_limit_reached" and err.event["stream_id"] == "b"
    (bad,) = s.receive(json.dumps({"type": "response.create", "model": "m", "input": "x", "stream_id": "a b"}), 0)
    assert bad.event["type"] == "error" and bad.event["error"]["param"] == "stream_id"


def test_a_malformed_continuation_evicts_its_parent() -> None:
    s = _session()
    message = json.dumps({"type": "response.create", "input": "x", "previous_response_id": "resp_p", "stream_id": "a"})
    evict, err = s.receive(message, 0.0)
    assert evict == Evict("a", "resp_p")
    assert err.event["error"]["param"] == "model"


def test_a_rejected_create_frees_its_lane() -> None:
    s = _session()
    (first,) = _started(s.receive(_create(), 0.0))
    s.receive(_create(), 0.0)
    actions = s.rejected(first, P.ProtocolError("previous_response_not_found", "gone", "previous_response_id"), 1.0)
    assert _types(actions) == ["error", "Start"]
    assert first.response_id not in s.finished_ids


def test_steering_accepted_while_running_then_the_successor_runs_first_on_its_lane() -> None:
    s = _session()
    (work,) = _started(s.receive(_create(), 0.0))
    behind = s.receive(_create(), 0.0)  # queued behind it
    work.events.start()
    steer = json.dumps({"type": "response.steer", "previous_response_id": work.response_id, "input": "also this"})
    accepted, interrupt = s.receive(steer, 1.0)
    assert accepted.event["type"] == "response.steer.accepted" and interrupt == Interrupt(work)
    work.events.incomplete("steered")
    (successor,) = _started(s.finished(work, 2.0))
    assert successor.request.previous_response_id == work.response_id
    assert successor.request.input[0]["content"] == "also this" and successor.request.generate
    assert successor.response_id != behind[0].event["response"]["id"]


def test_steering_a_finished_or_unknown_response_fails() -> None:
    s = _session()
    (work,) = _started(s.receive(_create(), 0.0))
    _run_to_end(s, work, 1.0)
    done = s.receive(json.dumps({"type": "response.steer", "previous_response_id": work.response_id, "input": "x"}), 2)
    assert done[0].event["error"]["code"] == "response_already_completed"
    unknown = s.receive(json.dumps({"type": "response.steer", "previous_response_id": "resp_z", "input": "x"}), 2)
    assert unknown[0].event["error"]["code"] == "response_not_found"


def test_too_many_steers() -> None:
    s = _session()
    (work,) = _started(s.receive(_create(), 0.0))
    steer = json.dumps({"type": "response.steer", "previous_response_id": work.response_id, "input": "x"})
    for _ in range(MAX_STEERS_PER_RESPONSE):
        s.receive(steer, 1.0)
    (refused,) = s.receive(steer, 1.0)
    assert refused.event["error"]["code"] == "too_many_pending_steers"


def test_steering_waits_for_owed_tool_output_and_joins_the_next_create() -> None:
    s = _session()
    (work,) = _started(s.receive(_create(), 0.0))
    s.receive(json.dumps({"type": "response.steer", "previous_response_id": work.response_id, "input": "x"}), 1)
    ev = work.events
    ev.start()
    ev.open_item("function_call", name="t")
    ev.close_item()
    ev.completed()
    (pending,) = s.finished(work, 2.0, owes_tool_output=True)
    assert pending.event["type"] == "response.steer.pending"
    (nxt,) = _started(s.receive(_create(previous_response_id=work.response_id), 3.0))
    assert [i["content"] for i in nxt.request.input] == ["x", "hi"]


def test_a_crash_costs_one_response() -> None:
    s = _session()
    (work,) = _started(s.receive(_create(), 0.0))
    work.events.start()
    (failed,) = s.crashed(work, 1.0, started=True)
    assert failed.event["type"] == "response.failed"
    (again,) = _started(s.receive(_create(), 2.0))
    (err,) = s.crashed(again, 3.0, started=False)
    assert err.event["type"] == "error" and err.event["status"] == 500


def test_the_lifetime_limit_cancels_then_tells_then_closes() -> None:
    s = _session(lifetime_s=60.0)
    s.receive(_create(), 0.0)
    assert s.expire(59.0) == []
    cancel, error, close = s.expire(60.0)
    assert isinstance(cancel, Cancel) and isinstance(close, Close) and close.code == 1000
    assert error.event["error"]["code"] == "websocket_connection_limit_reached"
    assert s.receive(_create(), 61.0) == []


def test_the_session_touches_no_clock_and_no_secrets() -> None:
    import ast
    import inspect

    from labkit.live.server import session
    from labkit.wire import events, response

    for module in (session, response, events, P):
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(inspect.getsource(module)))
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        assert not imported & {"time", "secrets", "asyncio", "socket", "aiohttp", "websockets"}, module.__name__


@pytest.mark.parametrize("version, expected", [("3.14.5", "BatchFrameWriter"), ("4.0.0", "PlainFrameWriter")])
def test_the_batch_writer_is_used_only_on_a_checked_aiohttp(monkeypatch, version: str, expected: str) -> None:
    from types import SimpleNamespace

    from labkit.live.server import frames

    protocol = SimpleNamespace(_paused=False, _drain_helper=lambda: None)
    writer = SimpleNamespace(
        transport=None, protocol=protocol, _output_size=0, _limit=1, _closing=False, compress=0, use_mask=False
    )
    ws: Any = SimpleNamespace(_writer=writer)
    monkeypatch.setattr(frames.aiohttp, "__version__", version)
    assert type(frames.frame_writer(ws)).__name__ == expected
    monkeypatch.setattr(frames.aiohttp, "__version__", "3.14.5")
    del writer._output_size  # a field the batch path needs is gone: plain
    assert type(frames.frame_writer(ws)).__name__ == "PlainFrameWriter"
