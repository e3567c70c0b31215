"""Request validation as the Responses API does it: types, enums, ranges and unknown keys, by a table (sans-I/O).

The table (:data:`CREATE_RULES`) holds every field of a create body that labkit accepts but does not model
itself (sampling settings, ``text.format``, ``stream_options``, ``reasoning``, ``include``, ...) and the keys of a
function tool (``tools[*]``), as OpenAI's OpenAPI spec (``CreateResponse``, openai/openai-openapi) types them;
``tests/test_request_validation.py`` checks the table against the vendored spec. The fields that
:mod:`labkit.wire.protocol` models (``model``, ``input``, ``store``, ``metadata``, ...) are checked there.

Errors follow the API's codes and wording, with the field's path in ``param``:

- ``unknown_parameter``: ``Unknown parameter: 'text.format.foo'.``
- ``invalid_type``: ``Invalid type for 'temperature': expected a decimal, but got a string instead.``
- ``invalid_value``: ``Invalid value: 'sometimes'. Supported values are: 'auto' and 'disabled'.``
- ranges: ``decimal_above_max_value`` (``integer_below_min_value``, ...): ``Invalid 'temperature': decimal above
  maximum value. Expected a value <= 2, but got 5 instead.``

Standard library only, like the rest of :mod:`labkit.wire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CREATE_RULES", "FUNCTION_TOOL_RULES", "Invalid", "Rule", "check_create", "json_type"]


@dataclass(frozen=True, slots=True)
class Invalid:
    """One rejected field: the API's ``code``, its ``message`` and the field's path (``param``)."""

    code: str
    message: str
    param: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "param": self.param}


@dataclass(frozen=True, slots=True)
class Rule:
    """What one field may hold.

    ``types`` are JSON types (``string``, ``integer``, ``number``, ``boolean``, ``object``, ``array``, ``null``;
    empty: anything). ``enum`` applies to strings. ``fields`` are an object's known keys (others are
    ``unknown_parameter``; ``None``: any keys); ``by_type`` picks the known keys by the object's ``type`` (a
    discriminated union such as ``text.format``). ``items`` checks each array element.
    """

    types: frozenset[str] = frozenset()
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    fields: Mapping[str, Rule] | None = None
    by_type: Mapping[str, Mapping[str, Rule]] | None = None
    items: Rule | None = None
    required: tuple[str, ...] = field(default=())


def _r(*types: str, **kw: Any) -> Rule:
    return Rule(frozenset(types), **kw)


_ANY = Rule()
_TEXT_FORMATS: dict[str, Mapping[str, Rule]] = {
    "text": {"type": _r("string")},
    "json_object": {"type": _r("string")},
    "json_schema": {
        "type": _r("string"),
        "name": _r("string"),
        "schema": _r("object"),
        "description": _r("string"),
        "strict": _r("boolean", "null"),
    },
}
_SUMMARY = ("auto", "concise", "detailed")
INCLUDE_VALUES = (
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
)

#: Top-level create fields labkit accepts without modelling them, as ``CreateResponse`` types them. Fields the
#: vendored spec does not have (``background_options``, ``prompt_cache_options``, ``access_programs``,
#: ``image``: newer SDK parameters) are accepted with any value.
CREATE_RULES: Mapping[str, Rule] = {
    "temperature": _r("number", "null", minimum=0, maximum=2),
    "top_p": _r("number", "null", minimum=0, maximum=1),
    "top_logprobs": _r("integer", minimum=0, maximum=20),
    "max_tool_calls": _r("integer", "null"),
    "max_output_tokens": _r("integer", "null"),
    "parallel_tool_calls": _r("boolean", "null"),
    "truncation": _r("string", "null", enum=("auto", "disabled")),
    "service_tier": _r("string", "null", enum=("auto", "default", "flex", "scale", "priority", "fast", "ultrafast")),
    "prompt_cache_retention": _r("string", "null", enum=("in_memory", "24h")),
    "prompt_cache_key": _r("string", "null"),
    "safety_identifier": _r("string", "null", max_length=64),
    "user": _r("string"),
    "include": _r("array", "null", items=_r("string", enum=INCLUDE_VALUES)),
    "stream_options": _r("object", "null", fields={"include_obfuscation": _r("boolean")}),
    "text": _r(
        "object",
        fields={
            "format": _r("object", by_type=_TEXT_FORMATS, required=("type",)),
            "verbosity": _r("string", "null", enum=("low", "medium", "high")),
        },
    ),
    # ``reasoning.effort``'s values are checked by labkit.wire.protocol (REASONING_EFFORTS).
    "reasoning": _r(
        "object",
        "null",
        fields={
            "effort": _r("string", "null"),
            "summary": _r("string", "null", enum=_SUMMARY),
            "generate_summary": _r("string", "null", enum=_SUMMARY),
            "context": _r("string", "null", enum=("auto", "current_turn", "all_turns")),
            "mode": _r("string"),
        },
    ),
    "tool_choice": _r("string", "object", enum=("none", "auto", "required")),
    "conversation": _r("string", "object", "null"),
    "prompt": _r("object", "null"),
    "context_management": _r("array", "null"),
    "moderation": _r("object", "null"),
    "background_options": _ANY,
    "prompt_cache_options": _ANY,
    "access_programs": _ANY,
    "image": _ANY,
}

#: The keys of a function tool (the spec's ``FunctionTool``); other tool types are passed through.
FUNCTION_TOOL_RULES: Mapping[str, Rule] = {
    "type": _r("string"),
    "name": _r("string"),
    "description": _r("string", "null"),
    "parameters": _r("object", "null"),
    "strict": _r("boolean", "null"),
    "output_schema": _r("object", "null"),
    "defer_loading": _r("boolean"),
    "allowed_callers": _r("array", "null"),
}


def json_type(value: Any) -> str:
    """The JSON type of a decoded value (``integer`` and ``number`` apart, as JSON Schema has them)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


# The API's words for JSON types ("expected a decimal, but got a string instead").
_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _accepts(types: frozenset[str], kind: str) -> bool:
    return not types or kind in types or (kind == "integer" and "number" in types)


def _listing(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _type_error(path: str, rule: Rule, kind: str) -> Invalid:
    wanted = [_NAMES[t] for t in sorted(rule.types - {"null"})] or ["null"]
    expected = wanted[0] if len(wanted) == 1 else "one of " + " or ".join(wanted)
    return Invalid(
        "invalid_type", f"Invalid type for '{path}': expected {expected}, but got {_NAMES[kind]} instead.", path
    )


def _range_error(path: str, value: float, rule: Rule, bound: float, above: bool) -> Invalid:
    noun = "integer" if "integer" in rule.types else "decimal"
    side, op = ("above maximum", "<=") if above else ("below minimum", ">=")
    code = f"{noun}_{'above_max' if above else 'below_min'}_value"
    return Invalid(
        code,
        f"Invalid '{path}': {noun} {side} value. Expected a value {op} {bound:g}, but got {value:g} instead.",
        path,
    )


def _check(value: Any, rule: Rule, path: str) -> Invalid | None:
    kind = json_type(value)
    if kind not in _NAMES or not _accepts(rule.types, kind):
        return _type_error(path, rule, kind if kind in _NAMES else "object")
    if kind == "string":
        if rule.enum is not None and value not in rule.enum:
            return Invalid(
                "invalid_value", f"Invalid value: '{value[:64]}'. Supported values are: {_listing(rule.enum)}.", path
            )
        if rule.max_length is not None and len(value) > rule.max_length:
            return Invalid(
                "string_above_max_length",
                f"Invalid '{path}': string too long. Expected a string with maximum length {rule.max_length}, "
                f"but got a string with length {len(value)} instead.",
                path,
            )
    elif kind in ("integer", "number"):
        if rule.maximum is not None and value > rule.maximum:
            return _range_error(path, value, rule, rule.maximum, True)
        if rule.minimum is not None and value < rule.minimum:
            return _range_error(path, value, rule, rule.minimum, False)
    elif kind == "array" and rule.items is not None:
        for i, element in enumerate(value):
            if (bad := _check(element, rule.items, f"{path}[{i}]")) is not None:
                return bad
    elif kind == "object":
        return _check_object(value, rule, path)
    return None


def _check_object(value: dict[str, Any], rule: Rule, path: str) -> Invalid | None:
    for name in rule.required:
        if name not in value:
            return Invalid(
                "missing_required_parameter", f"Missing required parameter: '{path}.{name}'.", f"{path}.{name}"
            )
    fields = rule.fields
    if rule.by_type is not None:
        tag = value.get("type")
        type_rule = _r("string", enum=tuple(rule.by_type))
        if (bad := _check(tag, type_rule, f"{path}.type")) is not None:
            return bad
        fields = rule.by_type[str(tag)]
    if fields is None:
        return None
    for key, sub in value.items():
        where = f"{path}.{key[:64]}"
        if key not in fields:
            return Invalid("unknown_parameter", f"Unknown parameter: '{where}'.", where)
        if (bad := _check(sub, fields[key], where)) is not None:
            return bad
    return None


def check_create(body: Mapping[str, Any]) -> Invalid | None:
    """The first field of a create body (or ``response.create``) the API would reject, or ``None``.

    Checks the fields of :data:`CREATE_RULES` that are present and each function tool's keys; absent fields
    and the fields :mod:`labkit.wire.protocol` models are left to it.
    """
    for name, rule in CREATE_RULES.items():
        if name in body and (bad := _check(body[name], rule, name)) is not None:
            return bad
    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            if isinstance(tool, dict) and tool.get("type") == "function":
                bad = _check_object(tool, Rule(frozenset({"object"}), fields=FUNCTION_TOOL_RULES), f"tools[{i}]")
                if bad is not None:
                    return bad
    return None
