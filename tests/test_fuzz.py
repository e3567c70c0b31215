"""Fuzzing: generated bad inputs against the sans-I/O protocol and the live server (both transports).

Every bad input must end in a :class:`ProtocolError` (sans-I/O), an ``error`` event (WebSocket) or a 4xx
(HTTP): never another exception, a crash, a hang or a 5xx. Per run: 10,000 generated inputs through the
parser (hypothesis), then 3,000 bad WebSocket messages, 2,000 bad HTTP requests and 300 connections sending
invalid frames (which RFC 6455 says must fail the connection: a close, not an error event) against a
running server, while a canary rollout runs alongside on other connections.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.wire import protocol
from labkit.wire.protocol import CreateRequest, ProtocolError

pytestmark = pytest.mark.live

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
        '{"type": "response.create", "model": "m", "input": "x", "stream": 1}',
        '{"type": "response.create", "model": "m", "input": "x", "background": true}',
        '{"type": "response.steer", "input": "x"}',
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


# -- live: a few thousand seeded bad inputs over both transports ----------------------------------------

LIVE_MAX_BYTES = 64 * 1024
WS_CASES = 3_000
HTTP_CASES = 2_000
FRAME_CASES = 300
_WRONG_VALUES: dict[str, list[Any]] = {
    "model": [None, "", 5, 1.5, True, [], {}, ["m"], {"m": 1}],
    "input": [5, 1.5, True, {}, [1], ["x"], [{"type": 5}], [{"type": "nope"}], [{"role": "robot", "content": "x"}]],
    "store": [0, "yes", [], {}, 1.0],
    "max_output_tokens": [0, -1, "10", 1.5, True, [], 10**30 * 1.0],
    "metadata": ["x", 5, [], {"k": 1}, {"k": None}],
    "tools": ["x", 5, {}, [5], [{"name": "x"}], [{"type": "function", "name": "bad name!"}]],
    "previous_response_id": [5, "", [], {}],
    "stream_id": ["", "a b", "x" * 300, 5, "ü"],
    "instructions": [5, [], {}, True],
}


def _bad_ws_message(rng: random.Random) -> str | bytes:
    """One definitely-invalid WebSocket-mode client message."""
    valid = {"type": "response.create", "model": "m", "input": "hi"}
    kind = rng.randrange(11)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if kind == 1:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 80)))
    if kind == 2:
        key = rng.choice(sorted(_WRONG_VALUES))
        return json.dumps({**valid, key: rng.choice(_WRONG_VALUES[key])})
    if kind == 3:
        return json.dumps({**valid, f"zz_{rng.randrange(10**6)}": rng.choice([1, "x", None, [], {}])})
    if kind == 4:
        obj = dict(valid)
        del obj[rng.choice(["type", "model", "input"])]
        return json.dumps(obj)
    if kind == 5:
        d = rng.randrange(1_000, 30_000)
        return rng.choice(["[", '{"a":']) * d
    if kind == 6:
        return json.dumps({**valid, "input": "x" * (LIVE_MAX_BYTES + rng.randrange(1, 5_000))})
    if kind == 7:
        return b'{"type": "response.create", "model": "' + rng.randbytes(8) + b'\xff\xfe", "input": "hi"}'
    if kind == 8:
        text = json.dumps(valid)
        return text[: rng.randrange(0, len(text) - 1)]
    if kind == 9:
        return json.dumps({"type": rng.choice(["response.cancel", "session.update", "", "RESPONSE.CREATE", "x"])})
    return json.dumps({**valid, "type": rng.choice([None, 1, [], {}])})


def _bad_http_request(rng: random.Random, path: str) -> bytes:
    """One definitely-invalid HTTP request (body, headers, method or framing)."""
    kind = rng.randrange(9)
    body: bytes
    if kind <= 2:
        msg = _bad_ws_message(rng)
        body = msg.encode() if isinstance(msg, str) else msg
        try:
            obj = json.loads(body)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and obj.get("type") == "response.create":
            obj.pop("type")  # an HTTP body has no type; the rest of the mutation stays
            body = json.dumps(obj).encode()
        if _parse_http(body) is not None:
            # The mutation only broke WebSocket-mode framing (e.g. a missing type): break the body too.
            body = json.dumps({**obj, "stream": "yes"}).encode()
        return (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
    if kind == 3:
        return f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{{}}".encode()
    if kind == 4:
        name = rng.choice([b"X-Bad\x00Name", b"Bad Header", b"\xff\xfe", b"X" * 10_000])
        return b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + name + b": v\r\nContent-Length: 2\r\n\r\n{}"
    if kind == 5:
        method = rng.choice(["PUT", "DELETE", "PATCH"])
        return f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    if kind == 6:
        junk = rng.choice(["/v1/nope", "/", "/v1/responses/../../etc/passwd", "/" + "a" * 5000])
        return f"POST {junk} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode()
    if kind == 7:
        size = LIVE_MAX_BYTES + rng.randrange(1, 10_000)
        body = json.dumps({"model": "m", "input": "x" * size}).encode()
        return (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        f"zz\r\n{rng.randbytes(4).hex()}\r\n0\r\n\r\n"
    ).encode()


async def _garbage_frames(host: str, port: int, rng: random.Random) -> bytes:
    """Open a WebSocket by hand, then send bytes that are not valid frames (or invalid UTF-8 text);
    returns what the server answered. The connection must end promptly, cleanly or not."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        key = base64.b64encode(rng.randbytes(16)).decode()
        writer.write(
            (
                "GET /v1/responses HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 101"), head[:80]
        kind = rng.randrange(3)
        if kind == 0:
            payload = rng.randbytes(rng.randrange(1, 200))  # not frames at all
        else:
            # A masked TEXT frame whose payload is not UTF-8 (kind 1), or one with reserved bits set (kind 2).
            body = b"\xff\xfe" + rng.randbytes(rng.randrange(0, 60))
            mask = rng.randbytes(4)
            first = 0x81 if kind == 1 else 0xF1
            payload = bytes([first, 0x80 | len(body)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(body))
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def _http_status(host: str, port: int, raw: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    parts = line.split()
    assert len(parts) >= 2 and parts[0].startswith(b"HTTP/1."), f"no HTTP answer: {line[:80]!r} to {raw[:120]!r}"
    return int(parts[1])


async def test_live_fuzz_both_transports() -> None:
    import aiohttp

    from labkit.live.runner import run_rollout
    from labkit.live.server import SimServer

    rng = random.Random(20261125)
    ws_cases = [_bad_ws_message(rng) for _ in range(WS_CASES)]
    http_cases = [_bad_http_request(rng, "/v1/responses") for _ in range(HTTP_CASES)]
    async with (
        SimServer("websocket", "fast_test", instant=True, max_message_bytes=LIVE_MAX_BYTES) as server,
        aiohttp.ClientSession() as http,
    ):
        host, port = "127.0.0.1", server.port

        async def ws_worker(cases: list[str | bytes]) -> int:
            errors = 0
            async with http.ws_connect(server.ws_url, max_msg_size=0) as ws:
                for case in cases:
                    await (ws.send_bytes(case) if isinstance(case, bytes) else ws.send_str(case))
                    msg = await ws.receive(timeout=10)
                    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, str(case)[:100])
                    event = json.loads(msg.data)
                    assert event["type"] == "error", (event, str(case)[:100])
                    assert 400 <= event.get("status", 400) < 500
                    errors += 1
            return errors

        async def http_worker(cases: list[bytes]) -> list[int]:
            return [await _http_status(host, port, raw) for raw in cases]

        async def canary() -> int:
            # Valid rollouts on other connections, all through the fuzzing: they must not notice it.
            done = 0
            while not fuzz_done.is_set():
                res = await run_rollout("ws", "fast_test", base_url=server.base_url, max_attempts=1)
                assert res.finished and not res.fallbacks
                done += 1
            return done

        fuzz_done = asyncio.Event()
        canary_task = asyncio.create_task(canary())
        frame_rng = random.Random(7)

        async def frame_worker(n: int) -> int:
            for _ in range(n):
                answer = await _garbage_frames(host, port, frame_rng)
                # Whatever came back is at most a close frame: never an HTTP error page or a traceback.
                assert b"Traceback" not in answer and b"HTTP/1.1 5" not in answer
            return n

        ws_jobs = [ws_worker(ws_cases[i::4]) for i in range(4)]
        http_jobs = [http_worker(http_cases[i::8]) for i in range(8)]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*ws_jobs, *http_jobs, frame_worker(FRAME_CASES)), timeout=240
            )
        finally:
            fuzz_done.set()
        canaries = await asyncio.wait_for(canary_task, timeout=60)
        assert sum(results[:4]) == WS_CASES
        statuses = [s for r in results[4:12] for s in r]
        assert results[12] == FRAME_CASES
        assert len(statuses) == HTTP_CASES
        assert all(400 <= s < 500 for s in statuses), collections.Counter(statuses)
        assert canaries >= 1
        # The server keeps serving afterwards, on both transports.
        after = await run_rollout("http", "fast_test", base_url=server.base_url, max_attempts=1)
        assert after.finished
        assert server.metrics["responses_failed"] == 0


# -- text that is not what it seems: surrogates, lone escapes, non-BMP, in every string field ------------
#
# JSON text may escape half of a UTF-16 surrogate pair ("\ud800"), which decodes to a Python string that is not
# Unicode text; a backslash may start an escape JSON does not have ("\x41", "\U0001F600", a truncated "\u12"), or
# end the string (escaping its closing quote). Each string field of a create gets such pieces among ordinary and
# non-BMP text, written into the JSON text as is; over HTTP and WebSocket the answer must be a 4xx JSON error or
# an error event, or a normal response, never a 5xx, a failed response, or silence.

#: Pieces written into a JSON string's text verbatim (already JSON-escaped, or deliberately broken).
_ESCAPE_PIECES = [
    "\\ud800",  # lone high surrogate
    "\\udfff",  # lone low surrogate
    "\\ude00\\ud83d",  # a pair in the wrong order
    "\\ud83d\\ude00",  # a correct pair: one non-BMP character (U+1F600)
    "\\udbff\\udfff",  # U+10FFFF, the last code point
    "\\ud800\\u0041",  # high surrogate then an ordinary escape
    "\\u0000",
    '\\"',
    "\\\\",
    "\\/",
    "\\b\\f\\n\\r\\t",
    "\\x41",  # not a JSON escape
    "\\U0001F600",  # not a JSON escape
    "\\u12",  # truncated
    "\\uZZZZ",
    "\x01",  # a raw control character (JSON requires it escaped)
    "\\",  # a lone backslash: escapes whatever follows (often the closing quote)
]
#: Ordinary text, including non-BMP characters written raw (UTF-8 on the wire).
_TEXT_PIECES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
    max_size=8,
).map(lambda t: json.dumps(t, ensure_ascii=False)[1:-1])
_NON_BMP = st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF).map(str)
STRING_TEXT = st.lists(st.sampled_from(_ESCAPE_PIECES) | _TEXT_PIECES | _NON_BMP, min_size=1, max_size=6).map("".join)

#: A create with every string field a client may fill, as JSON text; ``@N@`` marks field N's string text.
_CREATE_TEMPLATE = (
    '{"model":"@0@","input":[{"type":"message","role":"user","content":"@1@"},'
    '{"type":"message","role":"user","content":[{"type":"input_text","text":"@2@"}]}],'
    '"instructions":"@3@","tools":[{"type":"function","name":"@4@","description":"@5@",'
    '"parameters":{"type":"object","properties":{"q":{"type":"string","description":"@6@"}}}}],'
    '"metadata":{"@7@":"@8@"},"store":false@EXTRA@}'
)
_STRING_INPUT_TEMPLATE = '{"model":"gpt-5","input":"@1@"@EXTRA@}'
_CONTINUATION_TEMPLATE = (
    '{"model":"gpt-5","previous_response_id":"@9@","input":[{"type":"function_call_output",'
    '"call_id":"@10@","output":"@11@"}]@EXTRA@}'
)
_BENIGN = {"0": "gpt-5", "4": "grep", "9": "resp_1", "10": "call_1"}
STRING_FIELDS = [(_CREATE_TEMPLATE, str(i)) for i in range(9)] + [
    (_STRING_INPUT_TEMPLATE, "1"),
    (_CONTINUATION_TEMPLATE, "9"),
    (_CONTINUATION_TEMPLATE, "10"),
    (_CONTINUATION_TEMPLATE, "11"),
    (_CREATE_TEMPLATE, "lane"),  # WebSocket mode's stream_id
]


def _fill(template: str, field: str, text: str, *, websocket: bool) -> str:
    """The template with ``text`` in ``field`` and a benign value in every other field."""
    extra = ',"stream_id":"@lane@"' if websocket and field == "lane" else ""
    body = template.replace("@EXTRA@", extra)
    if websocket:
        body = '{"type":"response.create",' + body[1:]
    for key in [str(i) for i in range(12)] + ["lane"]:
        body = body.replace(f"@{key}@", text if key == field else _BENIGN.get(key, "ok"))
    return body


@FUZZ
@given(st.sampled_from(STRING_FIELDS), STRING_TEXT)
def test_strange_strings_parse_to_unicode_or_a_clean_error(where: tuple[str, str], text: str) -> None:
    template, field = where
    for websocket in (False, True):
        body = _fill(template, field, text, websocket=websocket)
        req = _parse_ws(body) if websocket else _parse_http(body.encode())
        if req is not None:
            # Whatever the parser accepts is Unicode text: nothing past it can fail to encode it.
            json.dumps(req.input, ensure_ascii=False).encode()
            (req.instructions or "").encode()
            req.model.encode()


class _ThreadedServer:
    """A :class:`SimServer` on its own loop in a thread, so that a synchronous hypothesis test can use it."""

    def __init__(self, **options: Any) -> None:
        import threading

        from labkit.live.server import SimServer

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(SimServer.start(**options), self.loop).result(30)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def threaded_server() -> Any:
    server = _ThreadedServer(profile="websocket", workload="fast_test", instant=True, max_lanes=1000)
    try:
        yield server.server
    finally:
        server.close()


_TERMINAL = {"response.completed", "response.incomplete", "response.failed", "error"}
STRANGE = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@STRANGE
@given(where=st.sampled_from(STRING_FIELDS), text=STRING_TEXT)
def test_strange_strings_live_over_http(threaded_server: Any, where: tuple[str, str], text: str) -> None:
    import httpx

    body = _fill(*where, text, websocket=False).encode()
    r = httpx.post(
        threaded_server.base_url + "/responses",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:200], body[:200])
    assert r.headers["Content-Type"].startswith("application/json")
    payload = r.json()
    if r.status_code == 200:
        assert payload["status"] in ("completed", "incomplete"), payload
    else:
        assert set(payload) == {"error"} and isinstance(payload["error"]["message"], str)


@STRANGE
@given(where=st.sampled_from(STRING_FIELDS), text=STRING_TEXT)
def test_strange_strings_live_over_websocket(threaded_server: Any, where: tuple[str, str], text: str) -> None:
    from websockets.sync.client import connect

    message = _fill(*where, text, websocket=True)
    # Valid UTF-8 goes in a text frame; a message that is not (a raw control character is still UTF-8) could
    # not be sent as text anyway.
    with connect(threaded_server.ws_url, max_size=None, open_timeout=10) as ws:
        ws.send(message)
        events = []
        while not events or events[-1]["type"] not in _TERMINAL:
            events.append(json.loads(ws.recv(timeout=10)))  # silence raises TimeoutError
        last = events[-1]
        assert last["type"] != "response.failed", (last, message[:200])
        if last["type"] == "error":
            assert 400 <= last["status"] < 500 and isinstance(last["error"]["message"], str), last
        # The connection is still usable.
        ws.send('{"type":"response.create","model":"gpt-5","input":"hi \U0001f600"}')
        while (event := json.loads(ws.recv(timeout=10)))["type"] not in _TERMINAL:
            pass
        assert event["type"] == "response.completed", event
