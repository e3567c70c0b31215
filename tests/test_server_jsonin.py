"""The server decodes request bodies with orjson where it reads them as the standard library does, and hands
everything else to ``load_json``: the value (types included) and every error must be ``load_json``'s."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.live.server.jsonin import load_body
from labkit.wire.protocol import ProtocolError, load_json

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _outcome(decode, data):
    """The decoded value as its repr (an int and an equal float differ there), or the error's code and message."""
    try:
        return "ok", repr(decode(data, "body"))
    except ProtocolError as exc:
        return "error", exc.code, exc.message


def _same(data):
    assert _outcome(load_body, data) == _outcome(load_json, data)


@settings(max_examples=300, deadline=None)
@given(_values, st.booleans(), st.booleans())
def test_generated_json_decodes_as_the_standard_library_decodes_it(value, ascii_only, as_text):
    text = json.dumps(value, ensure_ascii=ascii_only)
    _same(text if as_text else text.encode())


@pytest.mark.parametrize(
    "data",
    [
        b"[18446744073709551616]",  # beyond 64 bits: orjson would read a float
        b"[-9223372036854775809]",
        b'{"n": 123456789012345678901234567890}',
        b"[9223372036854775807, 1.5e300, -0.0]",
        b'["\\ud800"]',  # a lone surrogate escape: rejected as invalid JSON
        b'["\\udc00 tail"]',
        b'["\\ud83d\\ude00"]',  # a pair: one character
        b'["\\ud83d\\u0041", "\\uDBFF\\uDFFFx", "a\\ud83d\\ude00b\\ud83d"]',  # halves, pairs in upper case
        b"[NaN, Infinity, -Infinity]",
        b"[1e400]",
        b"\xef\xbb\xbf[1]",  # a byte order mark
        '{"a": 1}'.encode("utf-16"),
        b'{"a": 1, "a": 2}',
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate
        b"[1,]",
        b"",
        b'{"model": "m", "input": "hi"} trailing',
        b"\t[ 1 ,\n2 ]\r\n",
    ],
)
def test_what_orjson_reads_differently_or_refuses_is_the_standard_librarys(data):
    _same(data)
    _same(data.decode("utf-8", "surrogatepass") if not data.startswith(b"\xff\xfe") else data)


@pytest.mark.parametrize("depth", [100, 511, 512, 900, 990, 995, 1000, 1024, 1025, 5000])
def test_nesting_is_refused_at_the_same_depth(depth):
    _same(b"[" * depth + b"]" * depth)
    _same(b'{"a":' * depth + b"1" + b"}" * depth)


def test_a_long_body_with_many_items_decodes_whole():
    items = [{"type": "message", "role": "user", "content": f"item {i}"} for i in range(2000)]
    data = json.dumps({"model": "m", "input": items}).encode()
    _same(data)
    assert load_body(data, "body")["input"][1999]["content"] == "item 1999"
