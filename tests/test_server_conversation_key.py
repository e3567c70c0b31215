"""A stateless conversation's key: a digest of its first input item's sorted encoding, kept per encoding."""

from __future__ import annotations

import hashlib
import json

import orjson

from labkit.live.server.engine import _conversation_key, _KeyCache
from labkit.wire.protocol import parse_create_body


def _digest(item: object) -> str:
    return "conv_" + hashlib.blake2b(orjson.dumps(item, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


def test_the_key_is_the_digest_of_the_first_items_sorted_encoding_found_or_not() -> None:
    first = {"type": "message", "role": "user", "content": "Fix the failing test."}
    body = {"model": "m", "input": [first, {"type": "message", "role": "user", "content": "more"}]}
    key = _conversation_key(parse_create_body(json.dumps(body)))
    assert key == _digest(first)
    assert _conversation_key(parse_create_body(json.dumps(body))) == key  # found in the cache this time
    reordered = {"input": [dict(reversed(list(first.items())))], "model": "m"}
    assert _conversation_key(parse_create_body(json.dumps(reordered))) == key


def test_equal_numbers_of_different_json_are_different_conversations() -> None:
    # 1, 1.0 and true hash alike in Python but encode differently: the cache is keyed by the encoding.
    keys = {
        _conversation_key(
            parse_create_body(
                {"model": "m", "input": [{"type": "message", "role": "user", "content": "hi", "n": value}]}
            )
        )
        for value in (1, 1.0, True)
    }
    assert len(keys) == 3


def test_the_cache_is_bounded_by_bytes() -> None:
    cache = _KeyCache(max_bytes=100)
    for i in range(10):
        cache.put(b"x" * 30 + bytes([i]), f"k{i}")
        assert cache._bytes <= 100
    assert cache.get(b"x" * 30 + bytes([9])) == "k9"
    cache.put(b"y" * 101, "too big")
    assert cache.get(b"y" * 101) is None
