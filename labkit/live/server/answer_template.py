"""A non-streaming answer's JSON filled into a template: an assembled Response encoded once, with holes.

An answer due at once (:meth:`labkit.live.server.engine.Engine.answer_at_once`) to a request without tools or
settings is the Response :func:`~labkit.live.server.assembly.assemble_response` builds from what the request echoes
(model, instructions, metadata, ``store``, ``max_output_tokens``) and from its output plan, and plans repeat: the
workload's turns are few and each turn's plan is built once (:func:`labkit.live.server.output.plan_output`). Two
such answers differ only in the response's id, ``created_at``, ``previous_response_id``, the input side of
``usage`` and the items' ids. So the server encodes the Response once per plan and echo, with a marker in each of
those places, and answers by joining the bytes between the markers with the values of this response: the same
bytes as encoding the assembled Response (``tests/test_server_answer_template.py``), without building ~10 dicts
and encoding ~2.4 KB per answer.

A marker is a string no client can write: a control character, a per-process random nonce and the hole's number.
A template is used only if every hole appears in its encoding exactly once, and a value that orjson will not
encode (a lone surrogate in ``previous_response_id``) sends the answer down the assembling path, whose encoder
decides how it is written.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson

from labkit.live.server.assembly import assemble_response
from labkit.live.server.output import OutputPlan
from labkit.wire.protocol import CreateRequest
from labkit.wire.response import IdSource

__all__ = ["AnswerTemplate", "AnswerTemplates"]

_NONCE = secrets.token_hex(16)
#: An encoded hole: the JSON string of a marker (orjson writes a control character as ``\\u00XX``).
_HOLE = re.compile(rb'"\\u0002' + _NONCE.encode() + rb"(\d+)\\u0003\"")

# The holes every template has, numbered; the items' ids follow, in the order they are drawn.
_RESPONSE_ID, _CREATED_AT, _PREVIOUS, _INPUT_TOKENS, _CACHED_TOKENS, _TOTAL_TOKENS = range(6)
_FIRST_ITEM = 6
#: Each hole's %-conversion: a count or a time as a number, ``previous_response_id`` as its JSON (a string or
#: ``null``), and an id (the response's and its items') as the body of a JSON string whose quotes the format holds.
_CONVERSIONS = {
    _CREATED_AT: b"%d",
    _INPUT_TOKENS: b"%d",
    _CACHED_TOKENS: b"%d",
    _TOTAL_TOKENS: b"%d",
    _PREVIOUS: b"%s",
}


def _marker(hole: int) -> str:
    return f"\x02{_NONCE}{hole}\x03"


class AnswerTemplate:
    """One plan's answer to one echo of a request, as encoded bytes with holes (see the module's notes)."""

    __slots__ = ("_format", "_holes", "_output_tokens", "item_prefixes", "plan", "status")

    def __init__(
        self,
        plan: OutputPlan,
        literals: tuple[bytes, ...],
        holes: tuple[int, ...],
        item_prefixes: tuple[str, ...],
        output_tokens: int,
        status: str,
    ) -> None:
        """``literals``: the encoding's bytes between the holes; ``holes``: the hole after each literal but the
        last, in the order they appear in the encoding."""
        #: The plan it was built from (a template is found by the plan's identity and checked against it).
        self.plan = plan
        # One bytes %-format (PEP 461) of the literals, '%' escaped, and a conversion per hole: %d for a count or
        # a time, %s for the JSON of a string (or null); filling is one call in C.
        pieces = [literals[0].replace(b"%", b"%%")]
        for hole, literal in zip(holes, literals[1:], strict=True):
            pieces.append(_CONVERSIONS.get(hole, b'"%s"'))  # an id: its quotes here, its text a value
            pieces.append(literal.replace(b"%", b"%%"))
        self._format = b"".join(pieces)
        self._holes = holes
        #: The prefix of each item id the answer draws, in the order the assembling path draws them.
        self.item_prefixes = item_prefixes
        self._output_tokens = output_tokens
        #: The answer's ``status``: ``completed``, or ``incomplete`` for a plan cut by ``max_output_tokens``.
        self.status = status

    @property
    def format(self) -> bytes:
        """The answer's bytes with a %-conversion per hole: ``format % values`` is an answer."""
        return self._format

    def values(
        self,
        response_id: str,
        created_at: int,
        ids: IdSource,
        previous_response_id: str | None,
        input_tokens: int,
        cached_tokens: int,
    ) -> tuple[bytes | int, ...] | None:
        """This response's values for :attr:`format`, in its order: plain bytes and integers (a stored answer keeps
        them, not its bytes); ``None`` (no id drawn) if ``previous_response_id`` is not text orjson encodes.

        Ids come from the engine's id source (tests pass their own), so they are encoded, not assumed safe."""
        try:
            previous = b"null" if previous_response_id is None else b'"%s"' % _string_body(previous_response_id)
            values: list[bytes | int] = [
                _string_body(response_id),
                created_at,
                previous,
                input_tokens,
                cached_tokens,
                input_tokens + self._output_tokens,
            ]
        except orjson.JSONEncodeError:
            return None
        for prefix in self.item_prefixes:
            values.append(_string_body(ids(prefix)))
        return tuple(map(values.__getitem__, self._holes))


def _string_body(text: str) -> bytes:
    """``text`` as the inside of a JSON string (its escapes, without the quotes), in a buffer of its own size.

    An id is letters, digits and underscores (``resp_`` and 48 hex digits), which JSON writes as they are: encoded
    directly. Anything else goes through orjson (which refuses a lone surrogate: ``JSONEncodeError``), whose output
    buffer the slice leaves behind (it is ~4 KB however short the text, and a stored answer keeps its values)."""
    if text.isascii() and text.isidentifier():
        return text.encode()
    return orjson.dumps(text)[1:-1]


def build_template(request: CreateRequest, plan: OutputPlan) -> AnswerTemplate | None:
    """The template of ``plan``'s answer to requests echoing what ``request`` echoes; ``None`` if its encoding does
    not hold every hole exactly once, or is not orjson's."""
    prefixes: list[str] = []

    def marker_ids(prefix: str) -> str:
        prefixes.append(prefix)
        return _marker(_FIRST_ITEM + len(prefixes) - 1)

    final: dict[str, Any] = assemble_response(
        request, plan, response_id=_marker(_RESPONSE_ID), created_at=0, ids=marker_ids, input_tokens=0, cached_tokens=0
    )
    final["created_at"] = _marker(_CREATED_AT)
    final["previous_response_id"] = _marker(_PREVIOUS)
    usage = final["usage"]
    output_tokens = usage["output_tokens"]
    usage["input_tokens"] = _marker(_INPUT_TOKENS)
    usage["input_tokens_details"]["cached_tokens"] = _marker(_CACHED_TOKENS)
    usage["total_tokens"] = _marker(_TOTAL_TOKENS)
    try:
        encoded = orjson.dumps(final)
    except (orjson.JSONEncodeError, TypeError):
        return None  # the assembling path's encoder decides how such a text is written
    pieces = _HOLE.split(encoded)
    holes = tuple(int(hole) for hole in pieces[1::2])
    if sorted(holes) != list(range(_FIRST_ITEM + len(prefixes))):
        return None
    return AnswerTemplate(plan, tuple(pieces[0::2]), holes, tuple(prefixes), output_tokens, final["status"])


class AnswerTemplates:
    """The templates of the answers a server has made, by plan and echo; bounded (cleared when full)."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._templates: dict[tuple[Any, ...], AnswerTemplate | None] = {}

    def get(self, request: CreateRequest, plan: OutputPlan) -> AnswerTemplate | None:
        """The template for ``request``'s answer from ``plan``, built on first use; ``None`` for an answer the
        assembling path makes: a warm-up, a request with tools or settings, an output with function calls (their
        ids are owed outputs, read from the answer), or one whose template could not be built."""
        if not request.generate or request.tools or request.extra or plan.function_calls:
            return None
        metadata = request.metadata
        key = (
            id(plan),
            request.model,
            request.instructions,
            request.store,
            request.max_output_tokens,
            tuple(metadata.items()) if metadata else None,
        )
        templates = self._templates
        if key in templates:
            template = templates[key]
            # A plan's id names it only while it lives: a template built for another plan at that address is rebuilt.
            if template is None or template.plan is plan:
                return template
        if len(templates) >= self.capacity:
            templates.clear()
        template = templates[key] = build_template(request, plan)
        return template
