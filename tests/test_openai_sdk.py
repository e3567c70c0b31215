"""The official ``openai`` SDK, unmodified, against the simulator: HTTP streaming, JSON, ``responses.stream``
and WebSocket mode (``responses.connect``) for a chained tool-calling rollout with a fallback and a warm-up."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("websockets")

from openai import AsyncOpenAI  # noqa: E402

from labkit.live.runner import TOOLS  # noqa: E402
from labkit.live.server import SimServer  # noqa: E402
from labkit.model import load_workload  # noqa: E402
from labkit.wire.tokens import filler_text  # noqa: E402

pytestmark = pytest.mark.live

WORKLOAD = load_workload("fast_test")
SPECS = WORKLOAD.turn_specs()
TASK = [{"type": "message", "role": "user", "content": filler_text(SPECS[0].new_input_tokens)}]


@pytest.fixture
async def server():
    async with SimServer(profile="websocket", workload=WORKLOAD, instant=True) as s:
        yield s


@pytest.fixture
async def client(server):
    c = AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0, timeout=30)
    yield c
    await c.close()


async def test_create_streaming_over_sse(client):
    stream = await client.responses.create(model="m", input="hello", stream=True)
    types = []
    final = None
    async for event in stream:
        types.append(event.type)
        if event.type == "response.completed":
            final = event.response
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in types and types[-1] == "response.completed"
    assert final is not None and final.status == "completed" and final.output_text
    # Without tools the simulated model answers at once, with the first turn's output length.
    assert final.usage is not None and final.usage.output_tokens == SPECS[0].output_tokens


async def test_create_without_streaming(client):
    response = await client.responses.create(model="m", input=TASK, tools=list(TOOLS), store=True)
    assert response.status == "completed" and response.id.startswith("resp_")
    call = response.output[0]
    assert call.type == "function_call" and call.name in {t["name"] for t in TOOLS}
    follow = await client.responses.create(
        model="m",
        previous_response_id=response.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "ok"}],
        tools=list(TOOLS),
        store=True,
    )
    assert follow.previous_response_id == response.id and follow.status == "completed"


async def test_responses_stream_helper(client):
    async with client.responses.stream(model="m", input=TASK, tools=list(TOOLS)) as stream:
        deltas = [e async for e in stream if e.type == "response.function_call_arguments.delta"]
        final = await stream.get_final_response()
    assert deltas and final.output[0].type == "function_call"
    assert "".join(d.delta for d in deltas) == final.output[0].arguments


async def test_sdk_http_errors_are_api_errors(client):
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="m", input="x", previous_response_id="resp_missing", store=False)
    assert info.value.code == "previous_response_not_found"


async def _until_done(conn):
    """Read one response's events: (types, terminal event)."""
    types = []
    async for event in conn:
        types.append(event.type)
        if event.type in ("response.completed", "response.failed", "error"):
            return types, event
    raise AssertionError("connection closed before the response ended")


async def test_websocket_mode_chained_rollout_with_warmup_and_fallback(client, server):
    history = list(TASK)
    async with client.responses.connect(websocket_connection_options={"max_size": None}) as conn:
        # Warm-up: the state is built without sampling; the rollout continues from its id.
        await conn.response.create(model="m", input=TASK, tools=list(TOOLS), store=False, generate=False)
        types, done = await _until_done(conn)
        assert done.type == "response.completed" and done.response.output == []
        assert not any(t.endswith(".delta") for t in types)
        previous = done.response.id
        new_input: list = []
        turns = 0
        fell_back = False
        while True:
            if turns == 2 and not fell_back:
                # The server no longer knows this parent: previous_response_not_found, then the client
                # restores the full history as a new chain on the same socket.
                await conn.response.create(
                    model="m", input=new_input, tools=list(TOOLS), store=False, previous_response_id="resp_gone"
                )
                _, err = await _until_done(conn)
                assert err.type == "error" and err.error.code == "previous_response_not_found"
                fell_back = True
                await conn.response.create(model="m", input=history, tools=list(TOOLS), store=False)
            else:
                await conn.response.create(
                    model="m", input=new_input, tools=list(TOOLS), store=False, previous_response_id=previous
                )
            types, done = await _until_done(conn)
            assert done.type == "response.completed", types
            turns += 1
            response = done.response
            history.extend(item.model_dump(exclude_none=True, exclude={"id", "status"}) for item in response.output)
            previous = response.id
            item = response.output[0]
            if item.type == "message":
                break
            assert item.type == "function_call" and "response.function_call_arguments.delta" in types
            new_input = [{"type": "function_call_output", "call_id": item.call_id, "output": "ok " * turns}]
            history.extend(new_input)
    assert fell_back and turns == WORKLOAD.turns
    m = server.metrics
    assert m["warmups"] == 1 and m["previous_response_not_found"] == 1
    # Every chained continuation but the fallback hit the connection cache.
    assert m["cache_hits"] == WORKLOAD.turns - 1


async def test_models_list_and_retrieve(client, server):
    # client.models.list() is the first call many tools make; the catalogue is the server's ``models``.
    listed = [m async for m in client.models.list()]
    assert [m.id for m in listed] == list(server.models)
    assert all(m.object == "model" and m.owned_by and isinstance(m.created, int) for m in listed)
    model = await client.models.retrieve(server.models[0])
    assert model.id == server.models[0] and model.object == "model"
    with pytest.raises(openai.NotFoundError) as exc:
        await client.models.retrieve("no-such-model")
    assert exc.value.status_code == 404 and exc.value.code == "model_not_found"
    assert exc.value.body["message"] == "The model `no-such-model` does not exist or you do not have access to it."
    assert exc.value.body["type"] == "invalid_request_error" and exc.value.body["param"] is None
