"""What the simulated model outputs: sizes and texts of a response's items (the wire carries them, this sizes them).

The wire protocol (:mod:`labkit.wire.protocol`) knows event shapes only; the decision of how much a turn says,
in which items, belongs to the simulator. Sizes come from the turn's :class:`~labkit.model.TurnSpec`:

- ``reasoning_tokens`` become a ``reasoning`` item (decoded before the first visible delta: the plan's
  ``reasoning`` stage); its summary (only when ``reasoning.summary`` is requested) streams during that stage;
- ``output_tokens`` become one ``message`` (the final turn) or ``tool_calls`` ``function_call`` items
  (parallel calls; one when the request sets ``parallel_tool_calls: false``), the tokens split among them;
- ``max_output_tokens`` bounds reasoning plus visible output, as on the API; a cut response ends
  ``incomplete`` (``reason: max_output_tokens``).

Texts are deterministic filler of exactly the planned estimated tokens (:func:`labkit.wire.tokens.filler_text`),
so a client that counts them sees the workload's sizes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from labkit.wire.protocol import function_arguments, split_tokens
from labkit.wire.tokens import estimate_tokens, filler_text

ItemKind = Literal["reasoning", "message", "function_call"]

#: Reasoning tokens when a request asks for reasoning but the workload has none (simulator defaults by
#: ``reasoning.effort``; ``none`` turns reasoning off whatever the workload says).
EFFORT_TOKENS = {"none": 0, "minimal": 16, "low": 64, "medium": 256, "high": 1024, "xhigh": 2048}
#: A reasoning summary is about one token per this many reasoning tokens, at most ``SUMMARY_MAX_TOKENS``.
SUMMARY_RATIO = 8
SUMMARY_MAX_TOKENS = 200


@dataclass(frozen=True, slots=True)
class ItemPlan:
    """One output item: its kind and the chunks its deltas carry (one estimated token each)."""

    kind: ItemKind
    tokens: tuple[str, ...]
    name: str | None = None
    summary: bool = False
    encrypted_content: str | None = None
    #: ``max_output_tokens`` cut this item short.
    truncated: bool = False
    #: The item's whole text (its chunks joined once: an answer assembled whole carries it as is).
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", "".join(self.tokens))


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """A response's output: an optional reasoning item, then the visible items in order."""

    reasoning: ItemPlan | None
    items: tuple[ItemPlan, ...]
    reasoning_tokens: int
    #: ``max_output_tokens`` cut the output: the response ends ``incomplete``.
    truncated: bool
    #: Tokens of the visible items (counted once; the engine reads it several times a request).
    visible_tokens: int = field(init=False, repr=False, compare=False)
    #: The visible items' estimated tokens as a continuation counts them (:func:`labkit.wire.protocol.item_tokens`
    #: of each whole item: a message's text, a call's arguments; a reasoning item counts none).
    item_tokens: int = field(init=False, repr=False, compare=False)
    #: ``function_call`` items (a response without any owes no tool output).
    function_calls: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "visible_tokens", sum(len(i.tokens) for i in self.items))
        object.__setattr__(self, "item_tokens", sum(estimate_tokens(i.text) for i in self.items))
        object.__setattr__(self, "function_calls", sum(1 for i in self.items if i.kind == "function_call"))

    def to_dict(self) -> dict[str, object]:
        return {
            "reasoning_tokens": self.reasoning_tokens,
            "items": [{"kind": i.kind, "tokens": len(i.tokens), "name": i.name} for i in self.items],
            "truncated": self.truncated,
        }


def output_text(kind: Literal["message", "function_call"], n_tokens: int, salt: int = 0) -> str:
    """The simulated model's output: a message text or function arguments of exactly ``n_tokens``."""
    if kind == "message":
        return filler_text(max(1, n_tokens), salt)
    return function_arguments(n_tokens, filler_text(max(0, n_tokens - 2), salt))


def _value(schema: Any, depth: int = 0) -> Any:
    """A small value valid for a JSON Schema (the subset tools use): its default, first enum, or by type."""
    if not isinstance(schema, dict) or depth > 4:
        return ""
    if "default" in schema:
        return schema["default"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _value(schema[key][0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _value(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return max(1, int(schema.get("minimum", 1))) if kind == "integer" else 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return ""


def tool_arguments(parameters: Any, n_tokens: int, salt: int = 0) -> str:
    """Function-call arguments valid for the tool's ``parameters`` schema, about ``n_tokens`` long.

    Every property gets a value of its type (so an agent framework that validates arguments runs the tool);
    the first string property carries filler to reach the planned size. Without a schema with string
    properties the arguments are ``{"q": ...}`` of exactly ``n_tokens``.
    """
    args = _value(parameters) if isinstance(parameters, dict) and parameters.get("properties") else None
    if not isinstance(args, dict) or not args:
        return output_text("function_call", n_tokens, salt)
    pad = next((k for k, v in args.items() if isinstance(v, str)), None)
    if pad is None:
        return json.dumps(args, separators=(",", ":"))
    base = len(json.dumps(args, separators=(",", ":")).encode())
    args[pad] = filler_text(max(0, (4 * n_tokens - base) // 4), salt).rstrip() or "x"
    return json.dumps(args, separators=(",", ":"))


def reasoning_tokens_for(workload_tokens: int, reasoning: dict[str, object] | None) -> int:
    """The turn's reasoning tokens: the workload's, unless the request turns reasoning off or asks for it."""
    effort = (reasoning or {}).get("effort")
    if effort == "none":
        return 0
    if workload_tokens:
        return workload_tokens
    if reasoning is None:
        return 0
    return EFFORT_TOKENS.get(str(effort or "medium"), EFFORT_TOKENS["medium"])


def _encrypted(n_tokens: int, salt: int) -> str:
    # Opaque like the API's: a stable digest, so a replayed item is byte-identical.
    digest = hashlib.sha256(f"{n_tokens}:{salt}".encode()).digest()
    return "gAAAAA" + base64.urlsafe_b64encode(digest * 2).decode()


# A server plans every turn's output, and agents ask for the same sizes turn after turn: the chunks of a
# (size, salt, schema) and whole plans are built once. Bounded, and immutable (frozen plans of tuples of strings).
@functools.lru_cache(maxsize=4096)
def _message_chunks(n_tokens: int, salt: int) -> tuple[str, ...]:
    return tuple(split_tokens(output_text("message", n_tokens, salt)))


@functools.lru_cache(maxsize=4096)
def _cached_argument_chunks(schema: str | None, n_tokens: int, salt: int) -> tuple[str, ...]:
    return tuple(split_tokens(tool_arguments(None if schema is None else json.loads(schema), n_tokens, salt)))


#: A tool schema's cache key: its JSON text in its own key order (the order decides which property is padded).
#: Built once: ``json.dumps`` with options builds an encoder per call.
_SCHEMA_KEY = json.JSONEncoder(separators=(",", ":"))


def plan_output(
    *,
    kind: Literal["message", "function_call"],
    output_tokens: int,
    reasoning_tokens: int = 0,
    tool_names: tuple[str, ...] = (),
    tool_parameters: tuple[Any, ...] = (),
    tool_calls: int = 1,
    summary: bool = False,
    encrypted: bool = False,
    max_output_tokens: int | None = None,
    salt: int = 0,
) -> OutputPlan:
    """Size a response's items; ``max_output_tokens`` counts reasoning and visible tokens, as on the API.

    ``tool_parameters`` are the JSON Schemas of ``tool_names`` (in the same order): arguments follow them.
    A plan is pure in these arguments, so each distinct one is built once (tools by their schemas' JSON text).
    """
    if not tool_parameters:  # a message or schema-less calls (most plans): nothing to encode for the key
        return _cached_plan(
            kind, output_tokens, reasoning_tokens, tool_names, (), True, tool_calls, summary, encrypted,
            max_output_tokens, salt,
        )  # fmt: skip
    plan: Callable[..., OutputPlan] = _cached_plan
    try:
        params = tuple(None if p is None else _SCHEMA_KEY.encode(p) for p in tool_parameters)
        as_json = True
    except (TypeError, ValueError):  # not JSON: planned as is, not cached
        plan, params, as_json = _plan, tool_parameters, False
    return plan(
        kind, output_tokens, reasoning_tokens, tool_names, params, as_json, tool_calls, summary, encrypted,
        max_output_tokens, salt,
    )  # fmt: skip


def _plan(
    kind: Literal["message", "function_call"],
    output_tokens: int,
    reasoning_tokens: int,
    tool_names: tuple[str, ...],
    tool_parameters: tuple[Any, ...],
    as_json: bool,
    tool_calls: int,
    summary: bool,
    encrypted: bool,
    max_output_tokens: int | None,
    salt: int,
) -> OutputPlan:
    """:func:`plan_output`'s plan; ``as_json``: ``tool_parameters`` are the schemas' JSON texts."""
    budget = max_output_tokens if max_output_tokens is not None else None
    r = reasoning_tokens if budget is None else min(reasoning_tokens, budget)
    reasoning = None
    if r > 0:
        s = min(SUMMARY_MAX_TOKENS, max(1, r // SUMMARY_RATIO)) if summary else 0
        reasoning = ItemPlan(
            "reasoning",
            tuple(split_tokens(filler_text(s, salt + 3))) if s else (),
            summary=summary,
            encrypted_content=_encrypted(r, salt) if encrypted else None,
            truncated=r < reasoning_tokens,
        )
    left = None if budget is None else budget - r
    want = max(1, output_tokens)
    items: list[ItemPlan] = []
    if kind == "message":
        n = want if left is None else min(want, left)
        if n > 0:
            items.append(ItemPlan("message", _message_chunks(n, salt), truncated=n < want))
    else:
        if not tool_names:
            raise ValueError("tool_names: a function-call turn needs at least one tool")
        calls = max(1, tool_calls)
        # Split the turn's output among its calls; each call's arguments are at least "{}" (one token).
        sizes = [max(1, want // calls + (1 if i < want % calls else 0)) for i in range(calls)]
        for i, size in enumerate(sizes):
            n = size if left is None else min(size, left)
            if n <= 0:
                break
            k = i % len(tool_names)
            params = tool_parameters[k] if k < len(tool_parameters) else None
            if as_json:
                chunks = _cached_argument_chunks(params, size, salt + i)
            else:
                chunks = tuple(split_tokens(tool_arguments(params, size, salt + i)))
            text = chunks[:n]
            items.append(ItemPlan("function_call", text, name=tool_names[k], truncated=n < len(chunks)))
            if left is not None:
                left -= n
    truncated = (reasoning is not None and reasoning.truncated) or any(i.truncated for i in items)
    if kind == "function_call" and len(items) < max(1, tool_calls):
        truncated = True
    if kind == "message" and not items:
        truncated = True
    return OutputPlan(reasoning, tuple(items), r, truncated)


_cached_plan = functools.lru_cache(maxsize=4096)(_plan)
