"""Conformance scenarios: behaviours of the Responses API that clients rely on, runnable against any server.

Each scenario drives a server with raw ``websockets`` / ``httpx`` (no SDK in between), records every message
it sent and received (a transcript), and checks what the WebSocket-mode guide, the API reference and the
official SDKs document. Run against the simulator they are its conformance tests; run against the real API
(``labkit conformance --base-url https://api.openai.com/v1 --out DIR``) they record real transcripts, so a
real and a simulated transcript of the same scenario can be diffed.

Only what both servers can do is here; fault injection (``response.failed`` after a 5xx) exists only in the
simulator and is tested beside it (``tests/conformance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from labkit.live.server.app import SimServer
from labkit.model import Workload, load_workload
from labkit.util.progress import progress
from labkit.wire.events import TERMINAL_EVENT_TYPES

#: The in-process simulator's key (a key, so that the wrong-key scenario has something to be wrong about).
SIMULATOR_KEY = "sk-conformance"
TERMINAL = TERMINAL_EVENT_TYPES

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME = {
    "type": "function",
    "name": "get_time",
    "description": "Current local time of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@dataclass(frozen=True, slots=True)
class Target:
    """The server under test: ``base_url`` as the SDK takes it (``.../v1``), a key, a model."""

    base_url: str
    api_key: str = SIMULATOR_KEY
    model: str = "gpt-5-mini"

    @property
    def ws_url(self) -> str:
        # The SDK's rule: swap the scheme, append /responses.
        scheme, rest = self.base_url.split("://", 1)
        return ("wss" if scheme == "https" else "ws") + "://" + rest.rstrip("/") + "/responses"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """One scenario's outcome and transcript (what was sent and received, in order)."""

    name: str
    ok: bool
    failures: tuple[str, ...]
    transcript: tuple[dict[str, Any], ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "ok": self.ok,
            "failures": list(self.failures),
            "seconds": round(self.seconds, 3),
            "transcript": list(self.transcript),
        }


class Recorder:
    """A scenario's transcript and failed checks.

    It speaks the raw wire (``websockets``, ``httpx``) instead of the rollout runner's agent loop on purpose:
    the suite sends what a typed client would refuse to (malformed events, bad lanes, a wrong key), records
    every byte both ways as the transcript, and runs against the real API to check the simulator against it.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.transcript: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._t0 = time.monotonic()

    def log(self, direction: str, via: str, data: Any, **extra: Any) -> None:
        self.transcript.append(
            {"t": round(time.monotonic() - self._t0, 4), "dir": direction, "via": via, **extra, "data": data}
        )

    def check(self, condition: bool, what: str) -> bool:
        if not condition:
            self.failures.append(what)
        return condition

    # -- WebSocket mode --
    @contextlib.asynccontextmanager
    async def ws(self) -> AsyncIterator[ClientConnection]:
        async with websockets.connect(
            self.target.ws_url, additional_headers=self.target.headers, max_size=None, compression=None
        ) as conn:
            yield conn

    async def send(self, conn: ClientConnection, event: dict[str, Any]) -> None:
        self.log("send", "ws", event)
        await conn.send(json.dumps(event))

    async def recv(self, conn: ClientConnection, timeout: float = 60.0) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        self.log("recv", "ws", event)
        return dict(event)

    async def until(
        self, conn: ClientConnection, terminals: int = 1, on_event: Callable[[dict], Awaitable[None]] | None = None
    ) -> list[dict[str, Any]]:
        """Events until ``terminals`` terminal events (``response.completed|failed|incomplete``, ``error``)."""
        events: list[dict[str, Any]] = []
        seen = 0
        while seen < terminals:
            event = await self.recv(conn)
            events.append(event)
            if on_event is not None:
                await on_event(event)
            seen += event.get("type") in TERMINAL
        self.check_sequence(events)
        return events

    def check_sequence(self, events: Sequence[dict[str, Any]]) -> None:
        """Within one response, ``sequence_number`` strictly increases."""
        last: dict[str, int] = {}
        current = None
        for e in events:
            rid = (e.get("response") or {}).get("id") or current
            if e.get("type") == "response.created":
                current = rid
            n = e.get("sequence_number")
            if rid is None or not isinstance(n, int):
                continue
            self.check(n > last.get(rid, -1), f"sequence_number does not increase in {rid}: {e.get('type')} #{n}")
            last[rid] = n

    # -- HTTP --
    async def http(self, client: httpx.AsyncClient, method: str, path: str, body: Any = None) -> httpx.Response:
        self.log("send", "http", body, method=method, path=path)
        r = await client.request(method, path, json=body) if body is not None else await client.request(method, path)
        try:
            data: Any = r.json()
        except ValueError:
            data = r.text[:2000]
        self.log("recv", "http", data, status=r.status_code)
        return r


def _create(target: Target, input: Any = "Say hello in one word.", **fields: Any) -> dict[str, Any]:
    return {"type": "response.create", "model": target.model, "input": input, **{**{"store": False}, **fields}}


def _terminal(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return next((e for e in reversed(events) if e.get("type") in TERMINAL), {})


def _calls(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in response.get("output", []) if o.get("type") == "function_call"]


def _error(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("error") or {} if event.get("type") == "error" else {}


# -- the scenarios ----------------------------------------------------------------------------------


async def ws_stream_and_background_accepted(rec: Recorder) -> None:
    """OpenAI's clients send ``stream: true`` (and may send ``background: false``) in ``response.create``."""
    async with rec.ws() as conn:
        await rec.send(conn, _create(rec.target, stream=True, background=False))
        done = _terminal(await rec.until(conn))
        rec.check(done.get("type") == "response.completed", f"stream/background: expected completed, got {done}")


async def ws_warmup_without_input(rec: Recorder) -> None:
    """``generate: false`` with only tools and instructions warms the state; a continuation follows it."""
    async with rec.ws() as conn:
        await rec.send(
            conn,
            {
                "type": "response.create",
                "model": rec.target.model,
                "instructions": "Answer in one word.",
                "tools": [WEATHER],
                "store": False,
                "generate": False,
            },
        )
        warm = _terminal(await rec.until(conn))
        ok = rec.check(warm.get("type") == "response.completed", f"warm-up: expected completed, got {warm}")
        if not ok:
            return
        rec.check(warm["response"].get("output") == [], "warm-up: output must be empty")
        await rec.send(conn, _create(rec.target, "Say hello.", previous_response_id=warm["response"]["id"]))
        done = _terminal(await rec.until(conn))
        rec.check(done.get("type") == "response.completed", f"after warm-up: expected completed, got {done}")


async def ws_default_lane_fifo(rec: Recorder) -> None:
    """Two creates back to back on the default lane both run, one after the other (FIFO, no error)."""
    async with rec.ws() as conn:
        await rec.send(conn, _create(rec.target, "Say one."))
        await rec.send(conn, _create(rec.target, "Say two."))
        events = await rec.until(conn, terminals=2)
        terminals = [e for e in events if e.get("type") in TERMINAL]
        rec.check(all(e["type"] == "response.completed" for e in terminals), f"default lane: {terminals}")
        created = [i for i, e in enumerate(events) if e.get("type") == "response.created"]
        first_done = next((i for i, e in enumerate(events) if e.get("type") in TERMINAL), -1)
        rec.check(len(created) == 2 and created[1] > first_done, "default lane: the second response overlapped")


async def ws_unknown_parameter(rec: Recorder) -> None:
    """A parameter the API does not know is an ``unknown_parameter`` error naming it."""
    async with rec.ws() as conn:
        await rec.send(conn, _create(rec.target, labkit_bogus=1))
        err = _error(_terminal(await rec.until(conn)))
        rec.check(err.get("code") == "unknown_parameter", f"unknown parameter: got {err}")
        rec.check(err.get("param") == "labkit_bogus", f"unknown parameter: param {err.get('param')!r}")


async def _function_call(rec: Recorder, conn: ClientConnection, **fields: Any) -> dict[str, Any] | None:
    await rec.send(
        conn,
        _create(
            rec.target, "What is the weather in Paris? Use the tool.", tools=[WEATHER], tool_choice="required", **fields
        ),
    )
    done = _terminal(await rec.until(conn))
    if not rec.check(
        done.get("type") == "response.completed" and bool(_calls(done.get("response", {}))),
        f"expected a function call, got {done.get('type')}",
    ):
        return None
    return dict(done["response"])


async def ws_unknown_call_id_evicts_parent(rec: Recorder) -> None:
    """An unknown ``call_id`` is a 400 with the API's wording; the failed continuation evicts its parent."""
    async with rec.ws() as conn:
        parent = await _function_call(rec, conn)
        if parent is None:
            return
        bad = [{"type": "function_call_output", "call_id": "call_labkit_unknown", "output": "sunny"}]
        await rec.send(conn, _create(rec.target, bad, tools=[WEATHER], previous_response_id=parent["id"]))
        err = _terminal(await rec.until(conn))
        e = _error(err)
        rec.check(
            str(e.get("message", "")).startswith(
                "No tool call found for function call output with call_id call_labkit_unknown"
            ),
            f"unknown call_id: got {err}",
        )
        rec.check(err.get("status") in (None, 400) and e.get("type") == "invalid_request_error", f"status: {err}")
        good = [{"type": "function_call_output", "call_id": c["call_id"], "output": "sunny"} for c in _calls(parent)]
        await rec.send(conn, _create(rec.target, good, tools=[WEATHER], previous_response_id=parent["id"]))
        retry = _error(_terminal(await rec.until(conn)))
        rec.check(retry.get("code") == "previous_response_not_found", f"retry after a failed continuation: {retry}")


async def ws_missing_tool_output(rec: Recorder) -> None:
    """A continuation that leaves a function call unanswered is a 400 with the API's wording."""
    async with rec.ws() as conn:
        parent = await _function_call(rec, conn)
        if parent is None:
            return
        await rec.send(conn, _create(rec.target, "Never mind.", tools=[WEATHER], previous_response_id=parent["id"]))
        e = _error(_terminal(await rec.until(conn)))
        call_id = _calls(parent)[0]["call_id"]
        rec.check(
            str(e.get("message", "")).startswith(f"No tool output found for function call {call_id}"),
            f"missing tool output: got {e}",
        )


async def ws_parallel_tool_calls(rec: Recorder) -> None:
    """``parallel_tool_calls: false`` gives one call per response; answering every call completes the turn."""
    async with rec.ws() as conn:
        prompt = "Get the weather and the local time in Paris and in Tokyo. Use the tools."
        await rec.send(conn, _create(rec.target, prompt, tools=[WEATHER, TIME], tool_choice="required"))
        done = _terminal(await rec.until(conn))
        calls = _calls(done.get("response", {}))
        if not rec.check(bool(calls), f"parallel: expected function calls, got {done.get('type')}"):
            return
        rec.check(len({c["call_id"] for c in calls}) == len(calls), "parallel: call_ids must be distinct")
        outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "ok"} for c in calls]
        await rec.send(
            conn, _create(rec.target, outputs, tools=[WEATHER, TIME], previous_response_id=done["response"]["id"])
        )
        after = _terminal(await rec.until(conn))
        rec.check(after.get("type") == "response.completed", f"parallel: answering every call: {after.get('type')}")
        await rec.send(
            conn,
            _create(rec.target, prompt, tools=[WEATHER, TIME], tool_choice="required", parallel_tool_calls=False),
        )
        single = _calls(_terminal(await rec.until(conn)).get("response", {}))
        rec.check(len(single) == 1, f"parallel_tool_calls false: expected one call, got {len(single)}")


async def ws_reasoning_item(rec: Recorder) -> None:
    """``reasoning`` with a summary: a reasoning item before the answer, reasoning tokens in usage."""
    async with rec.ws() as conn:
        await rec.send(
            conn, _create(rec.target, "What is 17 * 23? Think first.", reasoning={"effort": "low", "summary": "auto"})
        )
        events = await rec.until(conn)
        done = _terminal(events)
        response = done.get("response", {})
        kinds = [o.get("type") for o in response.get("output", [])]
        rec.check(bool(kinds) and kinds[0] == "reasoning", f"reasoning: output kinds {kinds}")
        details = (response.get("usage") or {}).get("output_tokens_details") or {}
        rec.check(details.get("reasoning_tokens", 0) > 0, f"reasoning: usage {response.get('usage')}")
        rec.check(
            kinds.index("reasoning") < kinds.index("message") if "message" in kinds and "reasoning" in kinds else True,
            "reasoning: the reasoning item comes before the message",
        )


async def ws_max_output_tokens_incomplete(rec: Recorder) -> None:
    """``max_output_tokens`` reached: ``response.incomplete`` with ``reason: max_output_tokens``."""
    async with rec.ws() as conn:
        await rec.send(conn, _create(rec.target, "Write a 500-word story about a lighthouse.", max_output_tokens=16))
        done = _terminal(await rec.until(conn))
        rec.check(done.get("type") == "response.incomplete", f"max_output_tokens: got {done.get('type')}")
        details = (done.get("response") or {}).get("incomplete_details") or {}
        rec.check(details.get("reason") == "max_output_tokens", f"max_output_tokens: details {details}")


async def ws_steer(rec: Recorder) -> None:
    """``response.steer`` while a response streams: accepted, the response ends ``incomplete`` (``steered``)
    or completes, and a successor continues from it with the steering input."""
    async with rec.ws() as conn:
        await rec.send(conn, _create(rec.target, "Write a 400-word essay about tides."))
        steered: dict[str, str] = {}

        async def on_event(event: dict[str, Any]) -> None:
            if event.get("type") == "response.output_text.delta" and not steered:
                steered["id"] = str(event.get("response_id") or current.get("id"))
                await rec.send(
                    conn,
                    {"type": "response.steer", "previous_response_id": steered["id"], "input": "Stop; say done."},
                )
            elif event.get("type") == "response.created" and not steered:
                current.update(event["response"])

        current: dict[str, Any] = {}
        events = await rec.until(conn, terminals=2, on_event=on_event)
        types = [str(e.get("type")) for e in events]
        rec.check("response.steer.accepted" in types, f"steer: not accepted ({[t for t in types if 'steer' in t]})")
        terminals = [e for e in events if e.get("type") in TERMINAL]
        first = terminals[0] if terminals else {}
        if first.get("type") == "response.incomplete":
            reason = (first["response"].get("incomplete_details") or {}).get("reason")
            rec.check(reason == "steered", f"steer: incomplete reason {reason!r}")
        created = [e["response"] for e in events if e.get("type") == "response.created"]
        rec.check(
            len(created) == 2 and created[1].get("previous_response_id") == steered.get("id"),
            "steer: the successor continues from the steered response",
        )
        rec.check(len(terminals) == 2 and terminals[1]["type"] == "response.completed", "steer: successor completes")


async def http_sse_stream(rec: Recorder) -> None:
    """``POST /v1/responses`` with ``stream: true`` answers SSE ending in ``response.completed``."""
    async with httpx.AsyncClient(base_url=rec.target.base_url, headers=rec.target.headers, timeout=60) as client:
        body = {"model": rec.target.model, "input": "Say hello in one word.", "stream": True, "store": False}
        rec.log("send", "http", body, method="POST", path="/responses")
        events = []
        async with client.stream("POST", "/responses", json=body) as r:
            rec.check(r.status_code == 200, f"sse: status {r.status_code}")
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    rec.log("recv", "sse", event)
                    events.append(event)
        rec.check_sequence(events)
        rec.check(bool(events) and events[-1].get("type") == "response.completed", "sse: ends in completed")


async def http_stored_response_surface(rec: Recorder) -> None:
    """Stored responses: retrieve, list input items, count input tokens, cancel (foreground: 400), delete."""
    async with httpx.AsyncClient(base_url=rec.target.base_url, headers=rec.target.headers, timeout=60) as client:
        r = await rec.http(client, "POST", "/responses", {"model": rec.target.model, "input": "Say hi.", "store": True})
        if not rec.check(r.status_code == 200, f"create: status {r.status_code}"):
            return
        rid = r.json()["id"]
        got = await rec.http(client, "GET", f"/responses/{rid}")
        rec.check(got.status_code == 200 and got.json().get("id") == rid, "retrieve: the stored response")
        items = await rec.http(client, "GET", f"/responses/{rid}/input_items")
        rec.check(items.status_code == 200 and items.json().get("object") == "list", "input_items: a list")
        rec.check(bool(items.json().get("data")), "input_items: the request's input")
        count = await rec.http(client, "POST", "/responses/input_tokens", {"model": rec.target.model, "input": "Hi."})
        rec.check(
            count.status_code == 200
            and count.json().get("object") == "response.input_tokens"
            and count.json().get("input_tokens", 0) > 0,
            f"input_tokens: {count.status_code}",
        )
        cancel = await rec.http(client, "POST", f"/responses/{rid}/cancel")
        rec.check(cancel.status_code == 400, f"cancel of a foreground response: status {cancel.status_code}")
        deleted = await rec.http(client, "DELETE", f"/responses/{rid}")
        rec.check(deleted.status_code == 200 and deleted.json().get("deleted") is True, "delete: deleted")
        gone = await rec.http(client, "GET", f"/responses/{rid}")
        rec.check(gone.status_code == 404, f"retrieve after delete: status {gone.status_code}")


async def http_compact_recovery(rec: Recorder) -> None:
    """``POST /v1/responses/compact`` returns a compaction item that a new chain accepts as input."""
    async with httpx.AsyncClient(base_url=rec.target.base_url, headers=rec.target.headers, timeout=60) as client:
        history = [
            {"type": "message", "role": "user", "content": "My name is Ada. Remember it."},
            {"type": "message", "role": "assistant", "content": "Noted, Ada."},
        ]
        r = await rec.http(client, "POST", "/responses/compact", {"model": rec.target.model, "input": history})
        if not rec.check(r.status_code == 200, f"compact: status {r.status_code}"):
            return
        out = r.json().get("output", [])
        rec.check(r.json().get("object") == "response.compaction", "compact: object response.compaction")
        rec.check(bool(out) and out[-1].get("type") == "compaction", f"compact: last item {out[-1:]}")
        follow = [*out, {"type": "message", "role": "user", "content": "What is my name?"}]
        async with rec.ws() as conn:
            await rec.send(conn, _create(rec.target, follow))
            done = _terminal(await rec.until(conn))
            rec.check(done.get("type") == "response.completed", f"after compaction: {done.get('type')}")


async def auth_invalid_key(rec: Recorder) -> None:
    """A wrong key: HTTP 401, ``invalid_request_error`` with code ``invalid_api_key``."""
    headers = {"Authorization": "Bearer sk-labkit-wrong"}
    async with httpx.AsyncClient(base_url=rec.target.base_url, headers=headers, timeout=60) as client:
        r = await rec.http(client, "POST", "/responses", {"model": rec.target.model, "input": "x"})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        err = (body.get("error") if isinstance(body, dict) else None) or {}
        rec.check(r.status_code == 401, f"wrong key: status {r.status_code}")
        rec.check(err.get("code") == "invalid_api_key", f"wrong key: code {err.get('code')!r}")
        rec.check(err.get("type") == "invalid_request_error", f"wrong key: type {err.get('type')!r}")


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Callable[[Recorder], Awaitable[None]]
    #: Requests it makes and a generous bound of the tokens they cost on the real API (input + output).
    requests: int
    tokens: int

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0].replace("``", "`")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ws_stream_and_background_accepted", ws_stream_and_background_accepted, 1, 300),
    Scenario("ws_warmup_without_input", ws_warmup_without_input, 2, 600),
    Scenario("ws_default_lane_fifo", ws_default_lane_fifo, 2, 600),
    Scenario("ws_unknown_parameter", ws_unknown_parameter, 1, 0),
    Scenario("ws_unknown_call_id_evicts_parent", ws_unknown_call_id_evicts_parent, 3, 1_500),
    Scenario("ws_missing_tool_output", ws_missing_tool_output, 2, 1_000),
    Scenario("ws_parallel_tool_calls", ws_parallel_tool_calls, 3, 3_000),
    Scenario("ws_reasoning_item", ws_reasoning_item, 1, 2_000),
    Scenario("ws_max_output_tokens_incomplete", ws_max_output_tokens_incomplete, 1, 300),
    Scenario("ws_steer", ws_steer, 2, 3_000),
    Scenario("http_sse_stream", http_sse_stream, 1, 300),
    Scenario("http_stored_response_surface", http_stored_response_surface, 4, 600),
    Scenario("http_compact_recovery", http_compact_recovery, 2, 2_000),
    Scenario("auth_invalid_key", auth_invalid_key, 1, 0),
)


def simulator_workload() -> Workload:
    """The simulator's workload for the scenarios: small and exact, with parallel calls, and a final answer
    long enough (400 tokens at 2,000 tokens/s) that steering arrives while it streams."""
    return load_workload("fast_test").with_(name="conformance", final_output_tokens=400, parallel_tool_calls=2.0)


@contextlib.asynccontextmanager
async def simulator(**options: Any) -> AsyncIterator[SimServer]:
    """An in-process simulator configured for the scenarios (``options`` override :class:`SimServer`'s)."""
    settings: dict[str, Any] = {
        "profile": "websocket",
        "workload": simulator_workload(),
        "tps": 2000.0,
        "api_key": SIMULATOR_KEY,
        **options,
    }
    async with SimServer(**settings) as server:
        yield server


def select(names: Sequence[str] | None = None) -> tuple[Scenario, ...]:
    if not names:
        return SCENARIOS
    by_name = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"scenario: unknown {', '.join(unknown)}; known: {', '.join(by_name)}")
    return tuple(by_name[n] for n in names)


async def run_scenario(target: Target, scenario: Scenario, timeout_s: float = 120.0) -> ScenarioResult:
    rec = Recorder(target)
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(scenario.run(rec), timeout_s)
    except Exception as exc:  # a scenario that cannot finish is a failure with its reason, not a crash
        rec.failures.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    return ScenarioResult(
        scenario.name, not rec.failures, tuple(rec.failures), tuple(rec.transcript), time.monotonic() - t0
    )


async def run_all(
    target: Target, scenarios: Sequence[Scenario] = SCENARIOS, timeout_s: float = 120.0
) -> list[ScenarioResult]:
    return [await run_scenario(target, s, timeout_s) for s in progress(scenarios, desc="conformance", unit="scenario")]


@dataclass(frozen=True, slots=True)
class Cost:
    requests: int
    tokens: int
    scenarios: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "tokens": self.tokens, "scenarios": list(self.scenarios)}


def cost(scenarios: Sequence[Scenario] = SCENARIOS) -> Cost:
    """What a run against the real API costs at most, in requests and tokens."""
    return Cost(sum(s.requests for s in scenarios), sum(s.tokens for s in scenarios), tuple(s.name for s in scenarios))
