"""What a server keeps per response is the size of what it holds, not of the encoder's buffers.

orjson hands its output back in the buffer it wrote into (~4 KB for a short text, 16 KB for a 2.4 KB Response) and
does not shrink it; a store of bodies or a cache of keys holding such bytes would keep many times what its byte
caps count (:func:`labkit.live.server.jsonout.kept`).
"""

from __future__ import annotations

import json
import tracemalloc

import orjson

from labkit.live.server.engine import Engine
from labkit.live.server.jsonout import kept
from labkit.model import load_profile, load_workload
from labkit.wire.protocol import parse_create_body


def _traced(make: object) -> int:
    """Bytes allocated by ``make()`` and still held by what it returns."""
    assert callable(make)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = make()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del held
    return grown


def test_kept_bytes_are_the_size_of_their_text() -> None:
    text = orjson.dumps({"role": "user", "content": "Say something."})
    assert kept(text) == text
    assert _traced(lambda: [kept(orjson.dumps(f"resp_{i}")) for i in range(100)]) < 100 * 200


def test_a_stored_create_keeps_about_a_kilobyte_not_tens_of_kilobytes() -> None:
    engine = Engine(load_profile("websocket"), load_workload("fast_test"), seed=1, instant=True, spin_s=0.0)
    # Each request a new conversation (a new key in the key cache) and a new stored input.
    requests = [parse_create_body(json.dumps({"model": "m", "input": f"task number {i}"})) for i in range(301)]
    engine.answer_at_once(engine.resolve(requests[0], transport="http", t0=0.0), 0.0)

    def serve() -> None:
        for request in requests[1:]:
            engine.answer_at_once(engine.resolve(request, transport="http", t0=0.0), 0.0)

    per_create = _traced(serve) / 300
    assert len(engine.bodies) == 301 and len(engine.store) == 301
    # Kept per create: a record, a body's values and input JSON, a turn-log line, a key (~1 KB together); a body
    # holding one over-allocated encoder buffer alone would be 4 KB (17 KB a create before they were right-sized).
    assert per_create < 2_000, per_create
