"""A non-streaming answer assembled whole from its plan: the Response object, without a single stream event.

The answer is byte for byte the Response that ``response.completed`` (or ``response.incomplete``) carries when the
same plan is streamed: its items take their ids in the order a stream draws them (the item's id, then a function
call's ``call_id``), carry the plan's whole texts, and the usage counts every planned token. A JSON answer never
sends a stream event, so it builds none: one dict per item instead of one event per delta
(``tests/test_server_json_answer.py`` compares the two for every shape of response the server makes).

Both non-streaming paths use it: an answer due at once (:meth:`labkit.live.server.engine.Engine.answer_at_once`,
instant mode) and one due when its plan ends (:meth:`labkit.live.server.schedule.Pacer.assemble`).
"""

from __future__ import annotations

from typing import Any

from labkit.live.server.output import OutputPlan
from labkit.wire.protocol import CreateRequest
from labkit.wire.response import ITEM_PREFIX, IdSource, output_item, response_object, usage_object

__all__ = ["assemble_response"]

#: An ``incomplete`` answer's ``incomplete_details`` when ``max_output_tokens`` cut its output.
_CUT = "max_output_tokens"


def assemble_response(
    request: CreateRequest,
    plan: OutputPlan,
    *,
    response_id: str,
    created_at: int,
    ids: IdSource,
    input_tokens: int,
    cached_tokens: int,
) -> dict[str, Any]:
    """The Response ``request`` ends with when its output is ``plan``, decoded whole.

    A warm-up (``generate: false``) completes with no output: the state is ready, nothing is sampled. An output
    cut by ``max_output_tokens`` ends ``incomplete`` with that reason, its cut item ``incomplete`` too.
    """
    if not request.generate:
        usage = usage_object(input_tokens, 0, cached_tokens)
        return response_object(request, response_id, created_at, "completed", [], usage)
    output: list[dict[str, Any]] = []
    r = plan.reasoning
    reasoning_tokens = 0
    if r is not None:
        # A reasoning item has no status of its own; its summary is the whole planned summary, if asked for.
        output.append(
            output_item(
                "reasoning",
                ids("rs"),
                r.text,
                "completed",
                summary=r.summary,
                encrypted_content=r.encrypted_content,
            )
        )
        reasoning_tokens = plan.reasoning_tokens
    for item in plan.items:
        kind = item.kind
        item_id = ids(ITEM_PREFIX[kind])
        output.append(
            output_item(
                kind,
                item_id,
                item.text,
                "incomplete" if item.truncated else "completed",
                name=item.name,
                call_id=ids("call") if kind == "function_call" else None,
            )
        )
    usage = usage_object(input_tokens, plan.visible_tokens + reasoning_tokens, cached_tokens, reasoning_tokens)
    if plan.truncated:
        return response_object(
            request, response_id, created_at, "incomplete", output, usage, incomplete_details={"reason": _CUT}
        )
    return response_object(request, response_id, created_at, "completed", output, usage)
