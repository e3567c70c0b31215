"""Items as the Responses API returns them: stored input items, compaction output, echoed tools (sans-I/O).

A request may send items in their short forms (a message's ``content`` as a string, no ``id``, no
``status``); the API answers with the resource forms of OpenAI's OpenAPI spec (``ItemResource`` in
``GET /v1/responses/{id}/input_items``, ``ItemField`` in ``POST /v1/responses/compact``): a message's content
is a list of ``input_text`` (``output_text`` for an assistant) parts, and every item has an ``id`` and a
``status``. The official SDK reads ``item.content[0].text``, which a string content breaks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["echo_tool", "resource_item", "text_parts"]

#: Item types whose resource form carries a ``status`` (the spec's ``*Resource`` schemas require it).
_WITH_STATUS = frozenset({"message", "function_call", "function_call_output"})


def text_parts(content: Any, role: str) -> list[dict[str, Any]]:
    """A message's ``content`` as the API returns it: a list of parts (a string becomes one text part)."""
    if not isinstance(content, str):
        return [dict(p) if isinstance(p, Mapping) else p for p in content or ()]
    if role == "assistant":
        return [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]
    return [{"type": "input_text", "text": content}]


def resource_item(item: Mapping[str, Any], item_id: str) -> dict[str, Any]:
    """One input item in its resource form: ``id`` (``item_id`` unless it has one), ``status``, list content."""
    out = {"id": item.get("id") or item_id, **item}
    kind = out.get("type", "message")
    out["type"] = kind
    if kind == "message":
        out["content"] = text_parts(out.get("content"), str(out.get("role")))
    if kind in _WITH_STATUS:
        out.setdefault("status", "completed")
    return out


def echo_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """A tool as the Response object echoes it: a function tool always has ``strict`` and ``parameters``.

    The spec's ``FunctionTool`` requires both (``strict`` defaults to true on the Responses API, ``parameters``
    may be null); the request may omit them.
    """
    out = dict(tool)
    if out.get("type") == "function":
        out.setdefault("strict", True)
        out.setdefault("parameters", None)
        out.setdefault("description", None)
    return out
