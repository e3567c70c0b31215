"""The common-create fast path (``_parse_common``) decides exactly as the full check (``_parse_full``).

On generated bodies (the common fields, valid and not, with now and then a rare field), the fast path either
defers (``None``) or returns the request the full check returns; whenever the full check rejects a body, the
fast path deferred, so every error (code, message, param) is the full check's.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.wire import protocol
from labkit.wire.protocol import CreateRequest, ProtocolError

SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6)
ANY = st.recursive(
    SCALARS, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
)
ITEMS = st.lists(
    st.sampled_from(
        [
            {"type": "message", "role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "message", "role": "robot", "content": "x"},
            {"type": "nonsense"},
            {"type": "compaction"},
        ]
    ),
    max_size=4,
)
#: Each common field: mostly valid values, some invalid ones.
COMMON: dict[str, Any] = {
    "model": st.sampled_from(["gpt-test", ""]) | SCALARS,
    "input": st.text(max_size=8) | ITEMS | SCALARS,
    "instructions": st.none() | st.text(max_size=8) | SCALARS,
    "previous_response_id": st.none() | st.sampled_from(["resp_1", ""]) | SCALARS,
    "store": st.booleans() | SCALARS,
    "stream": st.booleans() | SCALARS,
    "metadata": st.none()
    | st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=18)
    | st.dictionaries(st.text(max_size=4), SCALARS, max_size=3)
    | SCALARS,
    "type": st.just("response.create"),
    "stream_id": st.none() | st.sampled_from(["lane-1", "bad lane", "x" * 257]) | SCALARS,
    "generate": st.booleans() | SCALARS,
}
RARE = ["tools", "max_output_tokens", "temperature", "background", "reasoning", "stop", "parallel_tool_calls"]


@st.composite
def bodies(draw: st.DrawFn, websocket: bool) -> dict[str, Any]:
    names = [n for n in COMMON if websocket or n not in ("type", "stream_id", "generate")]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    body = {name: draw(COMMON[name]) for name in ("model", "input", *chosen)}
    if not websocket and draw(st.integers(0, 9)) == 0:
        body[draw(st.sampled_from(["stream_id", "generate", "type"]))] = draw(ANY)
    if draw(st.integers(0, 4)) == 0:
        body[draw(st.sampled_from(RARE))] = draw(ANY)
    # JSON's own types, as a decoded body has them.
    decoded: dict[str, Any] = json.loads(json.dumps(body))
    return decoded


def _full(obj: dict[str, Any], websocket: bool) -> CreateRequest | tuple[str | None, str, str | None]:
    try:
        return protocol._parse_full(obj, websocket)
    except ProtocolError as exc:
        return exc.code, exc.message, exc.param


def _check(obj: dict[str, Any], websocket: bool) -> None:
    fast = protocol._parse_common(obj, websocket)
    full = _full(obj, websocket)
    if fast is not None:
        assert full == fast
    try:
        public: Any = protocol._parse_create(obj, websocket=websocket)
    except ProtocolError as exc:
        public = (exc.code, exc.message, exc.param)
    assert public == full


CASES = settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@CASES
@given(bodies(websocket=False))
def test_http_bodies_fast_and_full_agree(obj: dict[str, Any]) -> None:
    _check(obj, websocket=False)


@CASES
@given(bodies(websocket=True))
def test_websocket_creates_fast_and_full_agree(obj: dict[str, Any]) -> None:
    _check(obj, websocket=True)


def test_the_common_shapes_take_the_fast_path() -> None:
    common = [
        {"model": "m", "input": "hi"},
        {"model": "m", "input": "hi", "stream": True, "store": False, "instructions": "be brief"},
        {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "ok"}], "metadata": {}},
        {"model": "m", "input": "more", "previous_response_id": "resp_1"},
    ]
    for obj in common:
        assert protocol._parse_common(obj, False) == protocol._parse_full(obj, False)
        ws = {"type": "response.create", **obj, "stream_id": "lane-1"}
        assert protocol._parse_common(ws, True) == protocol._parse_full(ws, True)
    # A rare field takes the full check, which accepts it.
    rare = {"model": "m", "input": "hi", "temperature": 0.5}
    assert protocol._parse_common(rare, False) is None and protocol._parse_full(rare, False).extra == {
        "temperature": 0.5
    }
