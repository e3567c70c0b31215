"""labkit.wire.protocol: client events round-trip, validation names the field, server events parse in the SDK."""

from __future__ import annotations

import json

import pytest

from labkit.live.server.ids import new_id, wall_clock
from labkit.live.server.output import output_text
from labkit.wire import protocol as P
from labkit.wire.tokens import estimate_tokens, filler_text

TOOLS = [{"type": "function", "name": "run_tool", "parameters": {"type": "object", "properties": {}}}]


def test_build_and_parse_round_trip() -> None:
    items = [P.user_message("fix the bug"), P.function_call_output("call_1", "ok")]
    event = P.build_create(
        "gpt-test",
        items,
        instructions="be brief",
        tools=TOOLS,
        previous_response_id="resp_1",
        store=False,
        max_output_tokens=64,
        metadata={"k": "v"},
        stream_id="lane.1",
        generate=False,
        temperature=0.5,
    )
    req = P.parse_client_event(json.dumps(event))
    assert req.model == "gpt-test"
    assert req.input == tuple(items)
    assert req.instructions == "be brief"
    assert req.tool_names == ("run_tool",)
    assert req.previous_response_id == "resp_1"
    assert req.store is False and req.generate is False
    assert req.max_output_tokens == 64
    assert req.metadata == {"k": "v"}
    assert req.stream_id == "lane.1"
    assert req.extra == {"temperature": 0.5}
    # Bytes parse the same way, and a bare string input becomes one user message.
    req2 = P.parse_client_event(json.dumps(P.build_create("m", "hello")).encode())
    assert req2.input == ({"type": "message", "role": "user", "content": "hello"},)
    assert req2.store is True and req2.generate is True


def test_http_body_round_trip_and_ws_only_fields() -> None:
    body = P.build_create("m", "hi", stream=True, websocket=False)
    assert "type" not in body
    req = P.parse_create_body(json.dumps(body))
    assert req.stream is True
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_create_body({"model": "m", "input": "x", "stream_id": "a"})
    assert exc.value.param == "stream_id"
    with pytest.raises(ValueError, match="^stream_id"):
        P.build_create("m", "x", stream_id="a", websocket=False)


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "response.create", "input": "x"}, "missing_required_parameter", "model"),
        ({"type": "response.create", "model": 3, "input": "x"}, "invalid_type", "model"),
        ({"type": "response.create", "model": "m"}, "missing_required_parameter", "input"),
        ({"type": "response.create", "model": "m", "input": 5}, "invalid_type", "input"),
        ({"type": "response.create", "model": "m", "input": [7]}, "invalid_type", "input[0]"),
        ({"type": "response.create", "model": "m", "input": [{"type": "bogus"}]}, "invalid_value", "input[0].type"),
        (
            {"type": "response.create", "model": "m", "input": [{"type": "function_call_output", "output": "x"}]},
            "missing_required_parameter",
            "input[0].call_id",
        ),
        (
            {"type": "response.create", "model": "m", "input": [{"role": "robot", "content": "x"}]},
            "invalid_value",
            "input[0].role",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "tools": {}}, "invalid_type", "tools"),
        (
            {"type": "response.create", "model": "m", "input": "x", "tools": [{"type": "function", "name": "a b"}]},
            "invalid_value",
            "tools[0].name",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "store": "yes"}, "invalid_type", "store"),
        ({"type": "response.create", "model": "m", "input": "x", "generate": 1}, "invalid_type", "generate"),
        (
            {"type": "response.create", "model": "m", "input": "x", "max_output_tokens": 0},
            "invalid_value",
            "max_output_tokens",
        ),
        (
            # A boolean is not an integer: a type error, as the API answers it (issue 19).
            {"type": "response.create", "model": "m", "input": "x", "max_output_tokens": True},
            "invalid_type",
            "max_output_tokens",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "metadata": {"a": 1}}, "invalid_type", "metadata.a"),
        (
            {"type": "response.create", "model": "m", "input": "x", "previous_response_id": ""},
            "invalid_type",
            "previous_response_id",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "stream_id": "a b"}, "invalid_stream_id", "stream_id"),
        (
            {"type": "response.create", "model": "m", "input": "x", "stream_id": "a" * 257},
            "invalid_stream_id",
            "stream_id",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "stream": "yes"}, "invalid_type", "stream"),
        ({"type": "response.create", "model": "m", "input": "x", "background": True}, "invalid_value", "background"),
        (
            {"type": "response.create", "model": "m", "input": "x", "reasoning": {"effort": "max"}},
            "invalid_value",
            "reasoning.effort",
        ),
        (
            {"type": "response.create", "model": "m", "input": "x", "parallel_tool_calls": "no"},
            "invalid_type",
            "parallel_tool_calls",
        ),
        ({"type": "response.create", "model": "m", "input": "x", "bogus": 1}, "unknown_parameter", "bogus"),
        ({"type": "response.append", "model": "m"}, "unknown_event_type", "type"),
        ({"model": "m", "input": "x"}, "missing_required_parameter", "type"),
        ({"type": 5}, "invalid_type", "type"),
    ],
)
def test_validation_errors_name_the_field(event: dict, code: str, param: str) -> None:
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_client_event(json.dumps(event))
    err = exc.value
    assert (err.code, err.param) == (code, param)
    # labkit's own messages start with the field; where it copies the API's wording, that names it in quotes.
    assert err.message.startswith(param) or f"'{param}'" in err.message
    wire = err.event()
    assert wire["type"] == "error"
    assert wire["error"] == {"type": "invalid_request_error", "code": code, "message": err.message, "param": param}


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", b"\xff\xfe", "null"])
def test_malformed_messages(data: str | bytes) -> None:
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_client_event(data)
    assert exc.value.code in ("invalid_json", "invalid_type")


@pytest.mark.parametrize("body", [[1], 5, None, "[]", b"null"])
def test_http_body_must_be_an_object(body) -> None:
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_create_body(body)
    assert exc.value.code == "invalid_type" and exc.value.param == "body"


def test_oversize_message_is_rejected_before_parsing() -> None:
    data = json.dumps(P.build_create("m", "x" * 5000))
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_client_event(data, max_bytes=1000)
    assert exc.value.code == "message_too_large"
    assert P.parse_client_event(data, max_bytes=10_000).model == "m"


def test_token_accounting_matches_the_latency_model() -> None:
    task = filler_text(100, 1)
    out_args = output_text("function_call", 30, 2)
    items = [
        P.user_message(task),
        {"type": "function_call", "call_id": "call_1", "name": "run_tool", "arguments": out_args},
        P.function_call_output("call_1", filler_text(40, 3)),
    ]
    assert estimate_tokens(out_args) == 30
    assert json.loads(out_args) == {"q": out_args[6:-2]}
    assert P.conversation_split(items) == (1, 130, 40)
    assert P.conversation_split(items[:1]) == (0, 0, 100)
    assert P.input_tokens(items, filler_text(5)) == 175
    # Consecutive model outputs count as one earlier response.
    two = [items[0], items[1], {"type": "message", "role": "assistant", "content": "ok"}, items[2]]
    assert P.conversation_split(two)[0] == 1
    assert estimate_tokens(output_text("message", 17)) == 17
    assert output_text("function_call", 1) == "{}"
    # A compaction item stands for the conversation it compacted: its opaque content is counted.
    assert P.item_tokens({"type": "compaction", "encrypted_content": filler_text(9)}) == 9


def _all(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_text_turn_events_in_order() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi")))
    events = list(P.turn_events(req, ids=new_id, clock=wall_clock, text=filler_text(5), input_tokens=1))
    assert _all(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    done = events[-1]["response"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert done["output"][0]["content"][0]["text"] == text == events[-4]["text"]
    assert done["id"].startswith("resp_") and done["output"][0]["id"].startswith("msg_")
    assert done["usage"]["output_tokens"] == 5 and done["usage"]["total_tokens"] == 6
    assert done["status"] == "completed"


def test_tool_turn_events_and_ids() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi", tools=TOOLS, stream_id="s1")))
    events = list(
        P.turn_events(
            req,
            ids=new_id,
            clock=wall_clock,
            text=output_text("function_call", 12),
            kind="function_call",
            tool_name="run_tool",
        )
    )
    types = _all(events)
    assert types[2] == "response.output_item.added"
    assert types.count("response.function_call_arguments.delta") == 12
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert all(e["stream_id"] == "s1" for e in events)
    item = events[-1]["response"]["output"][0]
    assert item["type"] == "function_call" and item["name"] == "run_tool"
    assert item["id"].startswith("fc_") and item["call_id"].startswith("call_")
    assert json.loads(item["arguments"])["q"]
    with pytest.raises(ValueError, match="^name"):
        P.ResponseEvents(req, ids=new_id, clock=wall_clock).open_item("function_call")


def test_warmup_has_no_output() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi", generate=False)))
    events = list(P.turn_events(req, ids=new_id, clock=wall_clock, text=filler_text(5)))
    assert _all(events) == ["response.created", "response.in_progress", "response.completed"]
    assert events[-1]["response"]["output"] == []


def test_failed_event_and_framings() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi")))
    ev = P.ResponseEvents(req, ids=new_id, clock=wall_clock)
    ev.start()
    failed = ev.failed()
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    frame = P.sse_frame(failed)
    assert frame.startswith(b"event: response.failed\ndata: {") and frame.endswith(b"\n\n")
    assert P.parse_server_event(frame.split(b"data: ", 1)[1].strip()) == failed
    assert P.parse_server_event(P.ws_frame(failed)) == failed
    with pytest.raises(ValueError, match="^event"):
        P.parse_server_event("[1]")
    err = P.error_event("x", "y", None, status=500, stream_id="a", sequence_number=3)
    assert err["status"] == 500 and err["stream_id"] == "a" and err["sequence_number"] == 3
    assert P.error_body("c", "msg", "p") == {
        "error": {"message": "msg", "type": "invalid_request_error", "param": "p", "code": "c"}
    }


def test_official_sdk_parses_every_event() -> None:
    pytest.importorskip("openai")
    from openai._models import construct_type_unchecked
    from openai.types.responses import Response, ResponseStreamEvent
    from openai.types.responses.responses_server_event import ResponsesServerEvent

    for kind, tool in (("message", None), ("function_call", "run_tool")):
        req = P.parse_client_event(json.dumps(P.build_create("m", "hi", tools=TOOLS)))
        text = output_text(kind, 4)  # type: ignore[arg-type]
        events = list(
            P.turn_events(req, ids=new_id, clock=wall_clock, text=text, kind=kind, tool_name=tool, input_tokens=3)
        )  # type: ignore[arg-type]
        for event in events:
            parsed = construct_type_unchecked(value=event, type_=ResponsesServerEvent)
            assert type(parsed).__name__ != "dict" and parsed.type == event["type"]
            # Strict validation: every required field is present with the right type.
            from pydantic import TypeAdapter

            TypeAdapter(ResponseStreamEvent).validate_python(event)
        Response.model_validate(events[-1]["response"])
    err = P.error_event("bad", "msg", "p", status=400)
    parsed = construct_type_unchecked(value=err, type_=ResponsesServerEvent)
    assert type(parsed).__name__ == "ResponseWsError" and parsed.error.code == "bad"


# -- issue 10: what real clients send, and the richer server events ------------------------------------


def test_websocket_create_accepts_what_openai_clients_send() -> None:
    # The Agents SDK sends "stream": true in every WebSocket response.create; openai's example does too.
    for extra in ({"stream": True}, {"stream": False}, {"background": False}):
        req = P.parse_client_event(json.dumps({"type": "response.create", "model": "m", "input": "x", **extra}))
        assert isinstance(req, P.CreateRequest) and req.stream is True  # WebSocket mode always streams
    # A warm-up may carry only tools and instructions.
    warm = P.parse_client_event(
        json.dumps({"type": "response.create", "model": "m", "tools": TOOLS, "generate": False})
    )
    assert isinstance(warm, P.CreateRequest) and warm.input == () and warm.generate is False
    # Parameters the API does not know are still rejected, and name their lane and parent for eviction.
    with pytest.raises(P.ProtocolError) as exc:
        P.parse_client_event(
            json.dumps(
                {
                    "type": "response.create",
                    "model": "m",
                    "input": "x",
                    "nope": 1,
                    "stream_id": "a",
                    "previous_response_id": "resp_1",
                }
            )
        )
    assert exc.value.code == "unknown_parameter"
    assert (exc.value.stream_id, exc.value.previous_response_id) == ("a", "resp_1")
    assert exc.value.event()["stream_id"] == "a"


def test_steer_parses_and_rejects_like_the_api() -> None:
    steer = P.parse_client_event(
        json.dumps({"type": "response.steer", "previous_response_id": "resp_1", "input": "stop"})
    )
    assert isinstance(steer, P.SteerRequest)
    assert steer.input == (P.user_message("stop"),) and steer.raw_input == "stop"
    bad_cases = [
        ({"type": "response.steer", "previous_response_id": "resp_1", "input": "x", "stream_id": "a"}, "resp_1"),
        ({"type": "response.steer", "previous_response_id": "resp_1", "input": []}, "resp_1"),
        (
            {"type": "response.steer", "previous_response_id": "resp_1", "input": [P.function_call_output("c", "o")]},
            "resp_1",
        ),
        ({"type": "response.steer", "input": "x"}, None),
    ]
    for event, prev in bad_cases:
        with pytest.raises(P.SteerError) as exc:
            P.parse_client_event(json.dumps(event))
        assert exc.value.code == "invalid_input" and exc.value.previous_response_id == prev
    failed = P.steer_failed("response_not_found", "gone", "resp_1", "x")
    assert failed["steer"] == {"input": "x", "previous_response_id": "resp_1"} and "id" not in failed["steer"]


def test_function_call_errors_use_the_real_wording() -> None:
    a, b = P.no_tool_call_error("call_9"), P.no_tool_output_error("call_8")
    assert a.body() == {
        "error": {
            "message": "No tool call found for function call output with call_id call_9.",
            "type": "invalid_request_error",
            "param": "input",
            "code": None,
        }
    }
    assert b.message == "No tool output found for function call call_8." and b.status == 400


def test_reasoning_parallel_calls_terminals_and_steer_events_parse_in_the_sdk() -> None:
    pytest.importorskip("openai")
    from openai._models import construct_type_unchecked
    from openai.types.responses import Response
    from openai.types.responses.responses_server_event import ResponsesServerEvent
    from pydantic import TypeAdapter

    req = P.parse_create_body(
        {"model": "m", "input": "hi", "tools": TOOLS, "reasoning": {"effort": "low", "summary": "auto"}}
    )
    ev = P.ResponseEvents(req, ids=new_id, clock=wall_clock)
    events = [ev.queued(), *ev.start()]
    events += ev.open_item("reasoning", summary=True, encrypted_content="gAAAA")
    events.append(ev.delta("tok "))
    events += ev.close_item()
    for _ in range(2):
        events += ev.open_item("function_call", name="run_tool")
        events.append(ev.delta("{}"))
        events += ev.close_item()
    events.append(ev.steer_accepted("steer_1"))
    ev.set_usage(10, 7, 0, reasoning_tokens=5)
    events.append(ev.completed())
    events.append(ev.steer_pending("steer_1", ev.required_input()))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "queued"
    final = events[-2]["response"]
    assert [o["type"] for o in final["output"]] == ["reasoning", "function_call", "function_call"]
    assert [o["output_index"] for o in events if o["type"] == "response.output_item.added"] == [0, 1, 2]
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 5
    assert len(set(ev.call_ids)) == 2
    assert events[-1]["required_input"] == ev.required_input() and len(ev.required_input()) == 2
    for event in events:
        parsed = construct_type_unchecked(value=event, type_=ResponsesServerEvent)
        assert type(parsed).__name__ != "dict" and parsed.type == event["type"]
    Response.model_validate(final)
    incomplete = P.ResponseEvents(req, ids=new_id, clock=wall_clock)
    incomplete.start()
    done = incomplete.incomplete("steered")
    assert done["response"]["incomplete_details"] == {"reason": "steered"}
    Response.model_validate(done["response"])
    TypeAdapter(ResponsesServerEvent).validate_python(P.steer_failed("response_not_found", "gone", "resp_1", "x"))


def test_the_wire_imports_only_the_standard_library_and_itself() -> None:
    # The wire protocol is shared by the server and the clients; sizing simulated output is the server's.
    import ast
    import sys
    from pathlib import Path

    for module in (P, sys.modules["labkit.wire.tokens"]):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        imported = {
            (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
            + (
                ""
                if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labkit"))
                else "." + node.module.split(".")[1]
            )
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        labkit = {name for name in imported if name.startswith("labkit")}
        assert labkit <= {"labkit.wire"}, labkit
        assert all(name.split(".")[0] in sys.stdlib_module_names or name.startswith("labkit") for name in imported)
    assert not hasattr(P, "output_text")


def test_response_events_refuse_calls_out_of_order() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi")))
    ev = P.ResponseEvents(req, ids=new_id, clock=wall_clock)
    ev.start()
    with pytest.raises(P.ResponseStateError, match=r"^start: not allowed in state 'streaming'"):
        ev.start()
    ev.failed()
    with pytest.raises(P.ResponseStateError, match=r"^completed: not allowed in state 'failed'"):
        ev.completed()
    assert ev.status == "failed" and ev.sequence_number == 3
    fresh = P.ResponseEvents(req, ids=new_id, clock=wall_clock)
    with pytest.raises(P.ResponseStateError, match="^open_item"):
        fresh.open_item("message")
    fresh.start()
    fresh.open_item("message")
    with pytest.raises(P.ResponseStateError, match="^completed: not allowed in state 'item_open'"):
        fresh.completed()
    fresh.close_item()
    fresh.completed()
    with pytest.raises(P.ResponseStateError, match="^queued"):
        fresh.queued()


def test_response_events_take_their_clock_and_ids() -> None:
    req = P.parse_client_event(json.dumps(P.build_create("m", "hi")))
    ids = iter(range(100))
    ev = P.ResponseEvents(req, ids=lambda prefix: f"{prefix}_{next(ids)}", clock=lambda: 42.9)
    assert ev.id == "resp_0" and ev.created_at == 42
    created, _ = ev.start()
    assert created["response"]["created_at"] == 42
    assert ev.open_item("function_call", name="t")[0]["item"]["call_id"] == "call_2"


def test_one_definition_of_terminal_events() -> None:
    from labkit.wire.events import TERMINAL_EVENT_TYPES

    assert {"response.completed", "response.failed", "response.incomplete", "error"} == TERMINAL_EVENT_TYPES
    assert P.parse_server_event('{"type":"response.incomplete","sequence_number":1,"response":{}}').terminal
    assert not P.parse_server_event('{"type":"response.output_text.delta"}').terminal
    assert P.parse_server_event('{"type":"response.web_search_call.searching","x":1}')["x"] == 1
