"""Check what the simulator sends against OpenAI's published OpenAPI spec and the official SDK's models.

Two checks per object, because they catch different things:

- the vendored spec (``tests/schema/openapi-responses.json``, OAS 3.1 = JSON Schema 2020-12) with ``jsonschema``:
  types, enums, required fields of every body and event;
- the ``openai`` package's pydantic models: the object parses, and no field is left over that the SDK does not
  know (``model_extra`` anywhere in the tree), which the spec's open objects would let through.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).parent / "schema" / "openapi-responses.json"
_URI = "urn:openai-openapi:responses"


@functools.cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    # Imported here: jsonschema and referencing take ~1 s to import, paid by every pytest process (each xdist
    # worker) at collection if imported at the top, though only the schema tests validate.
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry: Registry = Registry().with_resource(
        _URI, Resource.from_contents(_patched(spec()), default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{_URI}#/components/schemas/{name}"}, registry=registry)


@functools.cache
def event_schemas() -> dict[str, str]:
    """Event ``type`` -> the spec's schema of that event (the branches of ``ResponseStreamEvent``)."""
    schemas = spec()["components"]["schemas"]
    out = {}
    for branch in schemas["ResponseStreamEvent"]["anyOf"]:
        name = branch["$ref"].rsplit("/", 1)[-1]
        kind = schemas[name].get("properties", {}).get("type", {})
        for value in kind.get("enum", ()):
            out[value] = name
    return out


def schema_errors(obj: Any, name: str) -> list[str]:
    """Where ``obj`` breaks the spec's component schema ``name`` (empty when it validates).

    An event union (``ResponseStreamEvent``, ``ResponsesWebSocketStreamEvent``) is checked against the branch of
    the event's ``type``, so an error names the field rather than "matches no branch".
    """
    if name in ("ResponseStreamEvent", "ResponsesWebSocketStreamEvent") and isinstance(obj, dict):
        branch = event_schemas().get(str(obj.get("type")))
        if branch is None:
            return [f"{name}: no event of type {obj.get('type')!r} in the spec"]
        errors = schema_errors(obj, branch)
        if name == "ResponsesWebSocketStreamEvent" and not isinstance(obj.get("stream_id", ""), str):
            errors.append(f"{name}: stream_id must be a string")
        return errors
    errors = []
    for err in _validator(name).iter_errors(obj):
        # anyOf failures nest the real reason; report the deepest one.
        best = err
        while best.context:
            best = min(best.context, key=lambda e: len(e.context or ()))
        where = "/".join(str(p) for p in err.absolute_path)
        errors.append(f"{name} at /{where}: {best.message[:300]}")
    return errors


#: Fields the real API sends that the SDK's models leave out, by path in the checked object (with the evidence).
KNOWN_UNMODELLED = {
    # The spec's own Response and response.created examples carry "store": true.
    "store",
    "response.store",
    # WebSocket mode: events of a named lane echo it (the spec's ResponsesWebSocketStreamEvent adds it).
    "stream_id",
}
#: ... and per event type: the spec requires ``name`` on ``response.function_call_arguments.done``.
KNOWN_UNMODELLED_BY_TYPE = {"response.function_call_arguments.done": {"name"}}

#: Where the spec's schema is stricter than its own examples of what the API sends: the examples win. The
#: ``response.created`` example (components.schemas.ResponseCreatedEvent x-oaiMeta) has ``"usage": null`` and
#: ``"user": null``; the SDK's models type both as optional.
_NULLABLE = (("Response", "usage"), ("ModelResponseProperties", "user"))


def _patched(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    schemas = doc["components"]["schemas"]
    for name, prop in _NULLABLE:
        node = schemas[name]
        holders = [node, *[s for s in node.get("allOf", ()) if "properties" in s]]
        for holder in holders:
            if prop in holder.get("properties", {}):
                holder["properties"][prop] = {"anyOf": [holder["properties"][prop], {"type": "null"}]}
    # Steering is newer than the vendored spec: openai 3.60's Response.incomplete_details.reason adds "steered"
    # ("the response stopped at a safe output boundary after a WebSocket response.steer").
    reason = schemas["Response"]["allOf"][2]["properties"]["incomplete_details"]["anyOf"][0]["properties"]["reason"]
    reason["enum"] = [*reason["enum"], "steered"]
    return doc


def _extras(model: Any, path: str = "", allowed: frozenset[str] = frozenset()) -> list[str]:
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            where = f"{path}.{key}".lstrip(".")
            if where not in KNOWN_UNMODELLED and where not in allowed:
                found.append(where)
        for key in type(model).model_fields:
            found += _extras(getattr(model, key), f"{path}.{key}")
    elif isinstance(model, list | tuple):
        for i, value in enumerate(model):
            found += _extras(value, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += _extras(value, f"{path}.{key}")
    return found


@functools.cache
def _sdk_types() -> dict[str, Any]:
    from openai.types.responses import (
        CompactedResponse,
        Response,
        ResponseItem,
        ResponsesServerEvent,
        ResponseStreamEvent,
    )
    from openai.types.responses.input_token_count_response import InputTokenCountResponse
    from openai.types.responses.response_item_list import ResponseItemList

    return {
        "Response": TypeAdapter(Response),
        "ResponseStreamEvent": TypeAdapter(ResponseStreamEvent),
        # WebSocket mode's server events: the stream events plus steering (response.steer.*).
        "ResponsesServerEvent": TypeAdapter(ResponsesServerEvent),
        "ResponseItemList": TypeAdapter(ResponseItemList),
        "ResponseItem": TypeAdapter(ResponseItem),
        "CompactResource": TypeAdapter(CompactedResponse),
        "TokenCountsResource": TypeAdapter(InputTokenCountResponse),
    }


def sdk_errors(obj: Any, name: str) -> list[str]:
    """Where ``obj`` fails the SDK's model for ``name``, or carries fields the SDK does not know."""
    adapter = _sdk_types().get(name)
    if adapter is None:
        return []
    try:
        model = adapter.validate_python(obj)
    except Exception as exc:  # pydantic's ValidationError, reported as text
        return [f"sdk {name}: {str(exc)[:400]}"]
    allowed = (
        frozenset(KNOWN_UNMODELLED_BY_TYPE.get(str(obj.get("type")), ())) if isinstance(obj, dict) else frozenset()
    )
    return [f"sdk {name}: unknown field {extra}" for extra in _extras(model, "", allowed)]


def check(obj: Any, name: str, *, sdk: str | None = None) -> list[str]:
    """Both checks; ``sdk`` names the SDK model when it differs from the spec's (``None``: the same name; ``"-"``
    for either: no such check)."""
    return (schema_errors(obj, name) if name != "-" else []) + (sdk_errors(obj, sdk or name) if sdk != "-" else [])
