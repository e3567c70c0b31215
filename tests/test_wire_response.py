"""The Response object of a request without settings is built from the API's defaults without looking each up:
it must be the object the general path builds, key for key and in the same order (its JSON is the answer)."""

from __future__ import annotations

import itertools
import json

import pytest

from labkit.wire.protocol import CreateRequest, ResponseEvents, user_message
from labkit.wire.response import _response_echo, output_item

_ids = itertools.count()


def _events(request: CreateRequest) -> ResponseEvents:
    return ResponseEvents(request, ids=lambda prefix: f"{prefix}_{next(_ids)}", clock=lambda: 1_700_000_000.0)


REQUESTS = [
    CreateRequest(model="m", input=(user_message("hi"),)),
    CreateRequest(
        model="m",
        input=(user_message("hi"),),
        instructions="be brief",
        previous_response_id="resp_1",
        store=False,
        max_output_tokens=64,
        metadata={"k": "v"},
    ),
    CreateRequest(
        model="m",
        input=(),
        tools=({"type": "function", "name": "f"}, {"type": "web_search"}),
        generate=False,
        stream_id="lane-1",
    ),
]


def _ended(ev: ResponseEvents, how: str) -> ResponseEvents:
    ev.assemble()
    if how == "failed":
        ev.conclude("failed", error=("server_error", "boom"))
        return ev
    ev.set_usage(10, 3, 4)
    ev.conclude(how)  # type: ignore[arg-type]
    ev.output.append(output_item("message", "msg_1", "hello there", how))
    return ev


@pytest.mark.parametrize("request_", REQUESTS, ids=["plain", "chained", "tools"])
@pytest.mark.parametrize("how", ["new", "completed", "incomplete", "failed"])
def test_defaults_path_is_the_general_path_with_nothing_to_echo(request_, how):
    ev = _events(request_)
    if how != "new":
        _ended(ev, how)
    fast = ev.response()
    general = _response_echo(
        request_, {}, ev.id, ev.created_at, ev.status, list(ev.output), ev.usage, ev.error, ev.incomplete_details
    )
    assert list(fast) == list(general)
    assert json.dumps(fast) == json.dumps(general)


def test_a_request_with_settings_echoes_them():
    request = CreateRequest(model="m", input=(), extra={"temperature": 0.2, "tool_choice": "none"})
    body = _events(request).response()
    assert body["temperature"] == 0.2 and body["tool_choice"] == "none" and body["top_p"] == 1.0


def test_a_request_without_settings_shares_no_mutable_default():
    first, second = _events(REQUESTS[0]).response(), _events(REQUESTS[0]).response()
    first["text"]["verbosity"] = "low"
    first["reasoning"]["effort"] = "high"
    first["tools"].append({})
    assert second["text"]["verbosity"] == "medium" and second["reasoning"]["effort"] is None and second["tools"] == []
    with pytest.raises(TypeError):
        REQUESTS[0].extra["temperature"] = 0.5  # type: ignore[index]
