"""Extract the Responses API's component schemas from OpenAI's published OpenAPI spec (openai/openai-openapi).

The whole spec is ~3.4 MB; the schema tests need only what the Responses endpoints and events reference. This
keeps the closure of the roots below (every ``$ref`` they reach), unchanged, and writes it as a self-contained
OAS 3.1 document (``components.schemas`` only) with the source commit recorded in it::

    python tools/vendor_openapi.py openapi.json COMMIT > tests/schema/openapi-responses.json

``tests/schema/SOURCE.md`` says where it comes from and under which licence (MIT).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

#: What labkit's server sends or accepts: the bodies of ``/v1/responses*``, its SSE and WebSocket events and the
#: WebSocket client event.
ROOTS = (
    "CreateResponse",
    "Response",
    "ResponseStreamEvent",
    "ResponsesClientEvent",
    "ResponsesWebSocketStreamEvent",
    "ResponseWsError",
    "ResponseItemList",
    "CompactResponseMethodPublicBody",
    "CompactResource",
    "TokenCountsBody",
    "TokenCountsResource",
    "Error",
    "ErrorResponse",
)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def extract(spec: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    keep: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in keep:
            keep.add(name)
            stack.extend(_refs(schemas[name]))
    return {name: schemas[name] for name in sorted(keep)}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: vendor_openapi.py OPENAPI_JSON COMMIT", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    doc = {
        "openapi": spec["openapi"],
        "info": {
            "title": spec["info"]["title"] + " (Responses API subset)",
            "version": spec["info"]["version"],
            "x-source": {"repository": "openai/openai-openapi", "path": "openapi.json", "commit": argv[1]},
            "x-roots": list(ROOTS),
        },
        "paths": {},
        "components": {"schemas": extract(spec)},
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=False, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
