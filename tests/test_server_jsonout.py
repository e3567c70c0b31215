"""The server's JSON out: compact UTF-8 by orjson, the standard library for what orjson refuses."""

from __future__ import annotations

import json

from labkit.live.server.jsonout import dumps
from labkit.wire.events import ResponseCompleted


def test_compact_utf8_as_the_streamed_events_are() -> None:
    response = {"id": "resp_1", "text": "héllo \u4e2d", "usage": {"n": 1}, "output": [{"a": None, "b": 0.5}]}
    assert dumps(response) == json.dumps(response, separators=(",", ":"), ensure_ascii=False).encode()
    # The JSON answer is the text of the response the stream's terminal event carries.
    event = ResponseCompleted(7, response, None).to_json()
    assert dumps(response).decode() in event


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    big = {"schema": {"maximum": 2**70}}
    assert dumps(big) == b'{"schema":{"maximum":1180591620717411303424}}'
    lone = {"content": "a\ud800"}
    assert dumps(lone) == b'{"content":"a\\ud800"}'
    assert json.loads(dumps((1, "x"))) == [1, "x"]
