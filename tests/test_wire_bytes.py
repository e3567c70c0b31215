"""Every event kind labkit sends, pinned byte for byte (WebSocket payload and SSE record) against the output
recorded before the wire events became typed: the conformance suite and the official SDKs must see no change.

The ids and the clock are fixed (passed in), so the bytes are deterministic. Regenerate the pinned file only
for a deliberate wire change: ``PYTHONPATH=. python tests/test_wire_bytes.py > tests/fixtures/wire_bytes.jsonl``.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.wire import protocol as P

PINNED = Path(__file__).parent / "fixtures" / "wire_bytes.jsonl"


def _ids() -> Any:
    counter = itertools.count()
    return lambda prefix: f"{prefix}_{next(counter):048x}"


def _request(stream_id: str | None = None, **extra: Any) -> P.CreateRequest:
    body = P.build_create(
        "gpt-5",
        [P.user_message("hi")],
        instructions="be brief",
        tools=[{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
        metadata={"k": "v"},
        stream_id=stream_id,
        **extra,
    )
    request = P.parse_client_event(json.dumps(body))
    assert isinstance(request, P.CreateRequest)
    return request


def _events(ids: Any) -> Iterator[tuple[str, Any]]:
    """(label, event) for every event kind, from the ``ResponseEvents`` builder and the module's helpers."""
    for lane in (None, "lane-a"):
        req = _request(lane, reasoning={"effort": "low", "summary": "auto"})
        ev = P.ResponseEvents(req, ids=ids, clock=lambda: 1_700_000_000.5, stream_id=lane)
        yield "queued", ev.queued()
        yield from (("start", e) for e in ev.start())
        yield from (("open reasoning summary", e) for e in ev.open_item("reasoning", summary=True))
        yield "delta reasoning", ev.delta("thin")
        yield from (("close reasoning", e) for e in ev.close_item())
        yield from (("open reasoning encrypted", e) for e in ev.open_item("reasoning", encrypted_content="gAAA"))
        yield from (("close reasoning encrypted", e) for e in ev.close_item())
        yield from (("open message", e) for e in ev.open_item("message"))
        yield "delta message", ev.delta("Hel")
        yield "delta message", ev.delta("lo \u00e9\u4e2d")
        yield from (("close message", e) for e in ev.close_item())
        yield from (("open call", e) for e in ev.open_item("function_call", name="shell"))
        yield "delta call", ev.delta('{"cmd":')
        yield from (("close call incomplete", e) for e in ev.close_item("incomplete"))
        yield "steer accepted", ev.steer_accepted("steer_1")
        ev.set_usage(10, 5, cached_tokens=3, reasoning_tokens=2)
        yield "completed", ev.completed()
        yield "steer pending", ev.steer_pending("steer_1", ev.required_input())
        failed = P.ResponseEvents(_request(lane), ids=ids, clock=lambda: 1_700_000_001.0, stream_id=lane)
        failed.start()
        yield "failed", failed.failed("server_error", "boom")
        cut = P.ResponseEvents(_request(lane), ids=ids, clock=lambda: 1_700_000_002.0, stream_id=lane)
        cut.start()
        yield "incomplete", cut.incomplete("max_output_tokens")
        yield "steer failed", P.steer_failed("response_not_found", "gone", "resp_x", "more", stream_id=lane)
        yield (
            "steer failed with id",
            P.steer_failed(
                "successor_creation_failed", "no", "resp_x", [P.user_message("a")], steer_id="steer_2", stream_id=lane
            ),
        )
    yield "error", P.ProtocolError("invalid_value", "model: bad", "model").event()
    yield "error null code", P.ProtocolError(None, "No tool output", "input").event(stream_id="s", sequence_number=3)
    yield "error event bare", P.error_event("server_error", "x", type="server_error")
    req = _request()
    yield from (("turn", e) for e in P.turn_events(req, "abc def", response_id="resp_t", ids=ids, clock=lambda: 5.0))


def _bodies() -> Iterator[tuple[str, Any]]:
    """Client messages and HTTP bodies labkit builds."""
    yield "create ws", P.build_create("gpt-5", "hi", stream_id="a", generate=False, previous_response_id="resp_1")
    yield "create http", P.build_create("gpt-5", [P.user_message("hi")], websocket=False, stream=True, store=False)
    yield "tool output", P.function_call_output("call_1", "ok")
    yield "error body", P.ProtocolError("invalid_value", "model: bad", "model").body()


def lines() -> list[str]:
    out = []
    for label, event in _events(_ids()):
        out.append(json.dumps({"label": label, "ws": P.ws_frame(event), "sse": P.sse_frame(event).decode()}))
    for label, body in _bodies():
        out.append(json.dumps({"label": label, "json": P.ws_frame(body)}))
    return out


def test_every_event_kind_keeps_its_bytes() -> None:
    pinned = PINNED.read_text().splitlines()
    now = lines()
    assert len(now) == len(pinned)
    for got, want in zip(now, pinned, strict=True):
        assert got == want


def test_parse_server_event_round_trips_every_kind() -> None:
    for label, event in _events(_ids()):
        frame = P.ws_frame(event)
        parsed = P.parse_server_event(frame)
        assert P.ws_frame(parsed) == frame, label
        sse = P.sse_frame(event)
        assert P.sse_frame(P.parse_server_event(sse.split(b"data: ", 1)[1].strip())) == sse, label


if __name__ == "__main__":
    sys.stdout.write("\n".join(lines()) + "\n")
