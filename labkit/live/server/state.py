"""What the simulated server remembers between requests: response records, the store, the replicas.

Records hold token counts only, never texts: the timing model needs sizes, and a long soak run must not
grow the server's memory with conversation text.
"""

from __future__ import annotations

import json
import random
import zlib
from collections import OrderedDict
from typing import Any, NamedTuple

from labkit.live.server.jsonout import dumps, kept
from labkit.model import Routing
from labkit.util.fields import from_fields


class ResponseRecord(NamedTuple):
    """One completed response (or ``generate: false`` warm-up), as a continuation needs it.

    Immutable; a named tuple because one is built per response (a frozen dataclass costs ~3x more to build).
    """

    id: str
    #: Model responses in the chain up to and including this one (a warm-up adds none).
    model_turns: int
    #: Tokens of everything the model has seen in this chain, plus its own output.
    conversation_tokens: int
    #: Tokens of this request's instructions (instructions are not carried over to a continuation).
    instructions_tokens: int
    #: Identity of the conversation, for replica routing of its rendered-token cache.
    conversation_key: str
    #: ``call_id`` of every function call this response made: a continuation owes an output for each.
    call_ids: tuple[str, ...] = ()


#: A record from the plain tuple of all its fields, in order (:func:`labkit.util.fields.from_fields`).
record_from_fields = from_fields(ResponseRecord)


def _from_flat(fields: tuple[Any, ...]) -> ResponseRecord:
    return record_from_fields((*fields[:5], fields[5:]))


class Store:
    """Responses created with ``store=true``, server-wide, least recently used first out.

    A record is kept as one flat tuple of plain values (its fields, its ``call_ids`` spread at the end): the garbage
    collector stops tracking such a tuple at the first collection that sees it, where a named tuple stays in every
    full collection's walk, and a store holds up to ``capacity`` of them (100,000 by default). Flat, because a tuple
    is untracked only after every tuple in it, and a collection that reaches the outer one first (it orders them by
    reachability, not age) leaves it tracked for a later, older generation's walk."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("max_stored: must be >= 1")
        self.capacity = capacity
        self._records: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def get(self, response_id: str) -> ResponseRecord | None:
        fields = self._records.get(response_id)
        if fields is None:
            return None
        self._records.move_to_end(response_id)
        return _from_flat(fields)

    def put(self, record: ResponseRecord) -> None:
        records, rid = self._records, record.id
        fields = record[:5] + record.call_ids  # flat (see the class's notes)
        if rid in records:  # stored again: now the most recently used
            records[rid] = fields
            records.move_to_end(rid)
            return
        records[rid] = fields  # a new key goes last
        while len(records) > self.capacity:
            records.popitem(last=False)

    def delete(self, response_id: str) -> bool:
        return self._records.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._records


#: Default cap on the JSON bytes of the stored bodies together (``max_stored_bytes``).
DEFAULT_MAX_STORED_BYTES = 64 * 1024 * 1024


def body_size(
    response: dict[str, Any], input_items: tuple[dict[str, Any], ...], response_bytes: int | None = None
) -> int:
    """A stored body's size: the bytes of its compact UTF-8 JSON (what reading it back sends).

    ``response_bytes``: the response's, when the caller has encoded it already. A lone surrogate (possible
    only in a body handed in as a mapping) counts as its ASCII escape (:func:`labkit.live.server.jsonout.dumps`)
    instead of failing to encode."""
    return (len(dumps(response)) if response_bytes is None else response_bytes) + len(dumps(input_items))


class Bodies:
    """Stored responses as clients read them back (``GET /v1/responses/{id}``, ``/input_items``).

    Separate from :class:`Store` and smaller: a body holds texts, and a long soak run must not grow the
    server's memory with them. Two bounds, least recently stored first out: ``capacity`` bodies and
    ``max_bytes`` of their JSON together (:func:`body_size`; a body bigger than ``max_bytes`` alone is not
    kept). A response whose body was evicted can still be continued from (its record) but no longer read back.

    A body is kept as JSON, not as objects: sizing it encodes it anyway, a retrieve sends the response's bytes as
    they are, and bytes are invisible to the garbage collector (tens of thousands of stored bodies as dicts made
    every full collection walk them all). The response's JSON is its bytes, or, for an answer filled into a
    template (:mod:`labkit.live.server.answer_template`), the template's format (one bytes object, shared by every
    answer of the template) and the answer's values: ~10% of the bytes, so a store of bodies writes that much new
    memory per create. The input's JSON is its bytes. Each entry is one flat tuple of plain values, ``(input JSON,
    size, response JSON)`` or ``(input JSON, size, format, *values)``: untracked by the garbage collector at the
    first collection that sees it (see :class:`Store`).
    """

    def __init__(self, capacity: int = 10_000, max_bytes: int = DEFAULT_MAX_STORED_BYTES) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
            raise ValueError(f"max_stored_bodies: must be an integer >= 0, got {capacity!r}")
        if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0:
            raise ValueError(f"max_stored_bytes: must be an integer >= 0, got {max_bytes!r}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        #: JSON bytes of the bodies held now.
        self.bytes = 0
        self._bodies: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def put(
        self, response: dict[str, Any], input_items: tuple[dict[str, Any], ...], encoded: bytes | None = None
    ) -> None:
        """Keep ``response`` and its input; ``encoded``: the response's JSON, if the caller encoded it."""
        if self.capacity and self.max_bytes:
            self.keep(response["id"], dumps(response) if encoded is None else encoded, input_items)

    def keep(self, response_id: str, encoded: bytes, input_items: tuple[dict[str, Any], ...]) -> None:
        """Keep a response by its id and JSON (``encoded``), and its input."""
        self._keep(response_id, (kept(encoded),), len(encoded), input_items)

    def keep_filled(
        self,
        response_id: str,
        filled: tuple[bytes, tuple[bytes | int, ...]],
        size: int,
        input_items: tuple[dict[str, Any], ...],
    ) -> None:
        """Keep a response whose JSON is ``format % values`` (``filled``; ``size``: its bytes), and its input."""
        form, values = filled
        self._keep(response_id, (form, *values), size, input_items)

    def _keep(
        self, response_id: str, response: tuple[Any, ...], size: int, input_items: tuple[dict[str, Any], ...]
    ) -> None:
        """``response``: the response's JSON, or its template's format and its values, as one tuple."""
        if self.capacity == 0 or self.max_bytes == 0:
            return
        encoded_input = kept(dumps(input_items))
        size += len(encoded_input)
        bodies = self._bodies
        if response_id in bodies:
            self.delete(response_id)
        if size > self.max_bytes:
            return
        bodies[response_id] = (encoded_input, size, *response)
        self.bytes += size
        while len(bodies) > self.capacity or self.bytes > self.max_bytes:
            self.bytes -= bodies.popitem(last=False)[1][1]

    def get(self, response_id: str) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]] | None:
        """The stored response and its input items, decoded (by the json module: orjson would read an integer
        beyond 64 bits as a float, and an escaped lone surrogate not at all)."""
        body = self._bodies.get(response_id)
        if body is None:
            return None
        return json.loads(_response_json(body)), tuple(json.loads(body[0]))

    def response_json(self, response_id: str) -> bytes | None:
        """The stored response's JSON, as a retrieve sends it."""
        body = self._bodies.get(response_id)
        return None if body is None else _response_json(body)

    def delete(self, response_id: str) -> bool:
        body = self._bodies.pop(response_id, None)
        if body is None:
            return False
        self.bytes -= body[1]
        return True

    def __len__(self) -> int:
        return len(self._bodies)


def _response_json(body: tuple[Any, ...]) -> bytes:
    """A stored body's response JSON: its bytes, or its template's format filled with its values."""
    if len(body) == 3:
        return body[2]
    return body[2] % body[3:]


class Replicas:
    """N API replicas, each with its own rendered-token cache of conversations.

    A conversation's rendered tokens sit on the replica that served its latest turn. ``sticky`` routing
    sends every request of a conversation to one replica (a hash of its key); ``random`` picks one
    uniformly per request, so a continuation finds its rendered tokens only with probability 1/N, which
    is what :func:`labkit.model.hit_probability` assumes.
    """

    def __init__(self, count: int, routing: Routing, rng: random.Random, capacity: int = 100_000) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("replicas: must be an integer >= 1")
        if routing not in ("sticky", "random"):
            raise ValueError(f"routing: must be 'sticky' or 'random', got {routing!r}")
        self.count = count
        self.routing = routing
        self._rng = rng
        self._capacity = capacity
        self._latest: OrderedDict[str, int] = OrderedDict()

    def route(self, conversation_key: str) -> int:
        if self.count == 1:
            return 0
        if self.routing == "random":
            return self._rng.randrange(self.count)
        # A stable hash (Python's str hash is salted per process).
        return zlib.crc32(conversation_key.encode()) % self.count

    def holds(self, replica: int, conversation_key: str) -> bool:
        return self._latest.get(conversation_key) == replica

    def remember(self, replica: int, conversation_key: str) -> None:
        latest = self._latest
        if conversation_key in latest:  # a conversation seen before: now the most recent
            latest[conversation_key] = replica
            latest.move_to_end(conversation_key)
            return
        latest[conversation_key] = replica
        while len(latest) > self._capacity:
            latest.popitem(last=False)
