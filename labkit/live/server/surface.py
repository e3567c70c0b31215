"""The rest of the Responses API surface that clients touch, beside creating responses (transport-free).

- ``GET /v1/responses/{id}``, ``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``:
  stored responses (``store: true``) as the official SDK's ``retrieve``, ``delete`` and
  ``input_items.list`` read them (openai 3.57 ``resources/responses/``);
- ``POST /v1/responses/{id}/cancel``: the API cancels only responses created with ``background: true``,
  which the simulator does not run, so a known response gets that 400 and an unknown one a 404;
- ``POST /v1/responses/input_tokens``: ``{"object": "response.input_tokens", "input_tokens": N}``;
- ``POST /v1/responses/compact``: a ``response.compaction`` whose ``output`` is the input's user messages
  followed by one ``compaction`` item; a later ``response.create`` accepts that output as its input (the
  WebSocket-mode guide's recovery path after ``previous_response_not_found``). The item's opaque content is
  sized to a tenth of the compacted conversation (a simulator choice), which is what it costs a new chain.
- ``GET /v1/models`` and ``GET /v1/models/{id}``: the catalogue the server advertises, as the official SDK's
  ``client.models.list()`` and ``retrieve()`` read it (``{object: "list", data: [Model]}``, a Model being
  ``{id, object: "model", created, owned_by}``); an id outside it is a 404 ``model_not_found`` with the real
  API's message. Creates accept any model name (the simulator models one latency profile, whatever the name).

Each function returns the JSON body or raises :class:`~labkit.wire.protocol.ProtocolError` (with ``status``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkit.live.server.ids import new_id
from labkit.wire.items import resource_item
from labkit.wire.protocol import ProtocolError, input_tokens, parse_input_items
from labkit.wire.tokens import estimate_tokens, filler_text
from labkit.wire.validation import check_create

if TYPE_CHECKING:
    from labkit.live.server.engine import Engine

#: Share of the compacted conversation's tokens that its compaction item carries (simulator choice).
COMPACTION_RATIO = 0.1
_COUNT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "tools",
        "conversation",
        "parallel_tool_calls",
        "reasoning",
        "text",
        "tool_choice",
        "truncation",
        "personality",
    }
)
_COMPACT_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "previous_response_id",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "service_tier",
        "image",
    }
)


def not_found(response_id: str) -> ProtocolError:
    return ProtocolError(None, f"Response with id '{response_id[:80]}' not found.", None, status=404)


def retrieve(engine: Engine, response_id: str) -> bytes:
    """The stored response's JSON, the bytes the create answered with."""
    body = engine.bodies.response_json(response_id)
    if body is None:
        raise not_found(response_id)
    return body


def delete(engine: Engine, response_id: str) -> dict[str, Any]:
    found = engine.bodies.delete(response_id)
    found = engine.store.delete(response_id) or found
    if not found:
        raise not_found(response_id)
    return {"id": response_id, "object": "response", "deleted": True}


def input_items(engine: Engine, response_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The response's input items, newest first by default (``order``, ``limit``, ``after`` as the API's)."""
    body = engine.bodies.get(response_id)
    if body is None:
        raise not_found(response_id)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ProtocolError("invalid_value", "order: must be 'asc' or 'desc'", "order")
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise ProtocolError("invalid_type", "limit: must be an integer", "limit") from None
    if not 1 <= limit <= 100:
        raise ProtocolError("invalid_value", "limit: must be between 1 and 100", "limit")
    stored = body[1]

    def item_id(i: int) -> str:
        # Stored items get stable ids (the API returns every input item with one).
        return str(stored[i].get("id") or f"{_prefix(stored[i])}_{response_id[5:]}{i:04d}")

    # Only the page is built in its resource form: a long history's other items are never sent.
    order_idx = list(range(len(stored)))
    if order == "desc":
        order_idx.reverse()
    after = query.get("after")
    if after is not None:
        ids = [item_id(i) for i in order_idx]
        order_idx = order_idx[ids.index(after) + 1 :] if after in ids else []
    page = [resource_item(stored[i], item_id(i)) for i in order_idx[:limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(order_idx) > limit,
    }


def _prefix(item: Mapping[str, Any]) -> str:
    return {"function_call": "fc", "function_call_output": "fco", "compaction": "cmp"}.get(str(item.get("type")), "msg")


def cancel(engine: Engine, response_id: str) -> dict[str, Any]:
    if (
        response_id not in engine.inflight
        and engine.bodies.response_json(response_id) is None
        and response_id not in engine.store
    ):
        raise not_found(response_id)
    raise ProtocolError(None, "Only responses created with background=true can be cancelled.", None)


def _body(obj: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ProtocolError("invalid_type", "body: must be a JSON object", None)
    for key in obj:
        if key not in allowed:
            raise ProtocolError("unknown_parameter", f"Unknown parameter: '{key[:64]}'.", key[:64])
    if (bad := check_create(obj)) is not None:  # the create body's table: the fields these bodies share with it
        raise ProtocolError(bad.code, bad.message, bad.param)
    return obj


def _conversation_tokens(engine: Engine, obj: Mapping[str, Any]) -> tuple[int, tuple[dict[str, Any], ...]]:
    instructions = obj.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ProtocolError("invalid_type", "instructions: must be a string", "instructions")
    raw = obj.get("input")
    items = parse_input_items(raw) if raw is not None else ()
    total = input_tokens(items, instructions)
    prev = obj.get("previous_response_id")
    if prev is not None:
        parent = engine.store.get(prev) if isinstance(prev, str) else None
        if parent is None:
            raise ProtocolError(
                "previous_response_not_found",
                f"Previous response with id '{str(prev)[:80]}' not found.",
                "previous_response_id",
            )
        total += parent.conversation_tokens - parent.instructions_tokens
    return total, items


def count_input_tokens(engine: Engine, obj: Any) -> dict[str, Any]:
    body = _body(obj, _COUNT_FIELDS)
    total, _ = _conversation_tokens(engine, body)
    return {"object": "response.input_tokens", "input_tokens": total}


def compact(engine: Engine, obj: Any) -> dict[str, Any]:
    body = _body(obj, _COMPACT_FIELDS)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ProtocolError("missing_required_parameter", "model: missing required parameter", "model")
    total, items = _conversation_tokens(engine, body)
    kept = [
        resource_item(it, new_id("msg")) for it in items if it.get("type") == "message" and it.get("role") == "user"
    ]
    size = max(1, round(total * COMPACTION_RATIO))
    item = {
        "id": new_id("cmp"),
        "type": "compaction",
        "encrypted_content": filler_text(size, salt=total),
        "created_by": "labkit",
    }
    out_tokens = estimate_tokens(item["encrypted_content"])
    return {
        "id": new_id("resp"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": [*kept, item],
        "usage": {
            "input_tokens": total,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": total + out_tokens,
        },
    }


#: The models ``GET /v1/models`` lists by default (``SimServer(models=...)`` replaces them).
DEFAULT_MODELS = ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-codex", "gpt-4.1", "gpt-4o")


def model_object(model_id: str, created: int) -> dict[str, Any]:
    """One Model as the API returns it (``openai.types.Model``)."""
    return {"id": model_id, "object": "model", "created": created, "owned_by": "system"}


def list_models(models: tuple[str, ...], created: int) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(m, created) for m in models]}


def retrieve_model(models: tuple[str, ...], model_id: str, created: int) -> dict[str, Any]:
    if model_id not in models:
        raise ProtocolError(
            "model_not_found",
            f"The model `{model_id[:256]}` does not exist or you do not have access to it.",
            None,
            status=404,
        )
    return model_object(model_id, created)
