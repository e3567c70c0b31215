"""The server's JSON out: answers and stored bodies as compact UTF-8 JSON, encoded by orjson.

Compact UTF-8 is the form every streamed event already has (:mod:`labkit.wire.events`), so a non-streaming
answer is the same text as the ``response`` its ``response.completed`` event carries (a float in exponent
form aside: orjson writes ``1e-7`` where the standard library writes ``1e-07``, the same number). orjson encodes the
benchmark's 2.4 KB Response in 1.4 us against the standard library's 12 us, and a non-streaming create
encodes one per answer (docs/guides/benchmarks.md, "server").

What orjson refuses, the standard library writes as before: an integer beyond 64 bits (a client's tool schema
may hold one, and the Response echoes it) and a string that is not Unicode text (a lone surrogate, possible
only in a body handed in as a mapping: the server's JSON decoding rejects one). Error bodies keep
``web.json_response``, byte for byte as before.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "kept"]

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON (a string that is not Unicode text as an ASCII escape)."""
    try:
        return orjson.dumps(obj)
    except (orjson.JSONEncodeError, TypeError):
        return _fallback(obj)


def kept(data: bytes) -> bytes:
    """``data`` in a buffer of its own size, for JSON kept beyond the request (a stored body, a cache's key).

    orjson (3.12 on) hands its output back in the buffer it wrote into and does not shrink it: ~4 KB for a short
    text, 16 KB for the benchmark's 2.4 KB Response (measured with ``tracemalloc``). A store of 10,000 bodies whose
    input JSON is 44 bytes would hold 40 MB for them, unseen by ``len()`` and so by the store's byte cap."""
    return bytes(memoryview(data))


def _fallback(obj: Any) -> bytes:
    try:
        return _COMPACT.encode(obj).encode()
    except UnicodeEncodeError:
        return _COMPACT_ASCII.encode(obj).encode()
