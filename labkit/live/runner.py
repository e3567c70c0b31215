"""The agent runner: a scripted tool-calling loop against the simulator or the real API, recorded as spans.

One rollout follows a :class:`~labkit.model.Workload` turn by turn: turn 0 sends the task (a user message
of ``filler_text(spec.new_input_tokens)``) with a ``tools`` list; each answer's ``function_call`` runs a local
tool for the workload's tool time (``asyncio.sleep``, recorded as a ``tool`` span) and sends back a
``function_call_output`` the size of the next turn's new input; the loop ends when the model answers with a
message. Transports:

- ``ws``: WebSocket mode, one socket, ``previous_response_id`` and only the new items each turn
  (``store=false``: the connection-scoped cache holds the chain);
- ``http``: stateless, the full history every turn (``store=false``);
- ``http-chained``: ``previous_response_id`` with ``store=true``, only the new items.

The full history (input and output items) is retained client-side. On ``previous_response_not_found``, a
dropped connection, a timeout or a failed turn (5xx, ``response.failed``) the runner reconnects if needed
and re-sends the whole history as a new chain; the retry's spans carry ``attempt`` + 1 and the failed
attempt's spans stay in the table (its cost is part of the turn). Other errors (4xx) raise
:class:`RolloutError`: retrying the same request cannot help.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from labkit.live.client.http import HttpClient
from labkit.live.client.record import Exchange, events_frame
from labkit.live.client.ws import WebSocketClient
from labkit.model import TurnSpec, Workload, load_workload
from labkit.model.spans import SpanColumns, concat_spans
from labkit.util.gctools import paused_gc
from labkit.wire.protocol import SEED_METADATA_KEY, function_call_output, user_message
from labkit.wire.tokens import estimate_tokens, filler_text

TransportName = Literal["ws", "http", "http-chained"]
TRANSPORTS: tuple[str, ...] = ("ws", "http", "http-chained")
#: The model name sent when none is given (the simulator accepts any name; the real API needs a real one).
DEFAULT_MODEL = "labkit-sim"
#: Error codes after which re-sending the full history as a new chain can succeed.
RETRYABLE_CODES = frozenset(
    {
        "previous_response_not_found",
        "websocket_connection_limit_reached",
        "connection_closed",
        "connect_failed",
        "stream_ended",
        "timeout",
        "server_error",
        "response_failed",
    }
)

#: The agent's tools: a shell and a file reader, as a coding agent would have.
TOOLS: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "name": "run_shell",
        "description": "Run a shell command in the repository and return its output.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command line to run."}},
            "required": ["command"],
            "additionalProperties": False,
        },
        "strict": True,
    },
    {
        "type": "function",
        "name": "read_file",
        "description": "Return the contents of a file in the repository.",
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Path relative to the repository root."}},
            "required": ["path"],
            "additionalProperties": False,
        },
        "strict": True,
    },
)
INSTRUCTIONS = "You are a coding agent. Use the tools to inspect and fix the repository, then report briefly."


class RolloutError(RuntimeError):
    """A turn failed in a way a retry cannot fix, or kept failing after ``max_attempts``."""

    def __init__(self, message: str, exchange: Exchange | None = None, partial: RolloutResult | None = None):
        super().__init__(message)
        self.exchange = exchange
        #: What the rollout had recorded (spans, transcript) when it stopped.
        self.partial = partial


@dataclass(frozen=True, slots=True)
class Fallback:
    """One full-history re-send: the turn, the attempt that failed, and why."""

    turn: int
    attempt: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TurnExchange:
    turn: int
    attempt: int
    exchange: Exchange


@dataclass
class RolloutResult:
    """What one rollout produced: spans (``source='live'``), the retained history, the fallbacks."""

    transport: str
    scenario: str
    rollout: int
    seed: int
    #: The coarse live spans (``connect, request, decode, complete, tool``) of every attempt of every turn.
    spans: pd.DataFrame
    #: Every input and output item of the conversation, in order, exactly as sent and received.
    transcript: list[dict[str, Any]]
    fallbacks: list[Fallback]
    #: Every request with its raw event timestamps.
    exchanges: list[TurnExchange]
    #: ``perf_counter`` origin of the spans' times.
    t0: float
    response_ids: list[str] = field(default_factory=list)
    #: The rollout ended with the model's message (False: stopped at the workload's turn count).
    finished: bool = True

    @property
    def turns(self) -> int:
        return len({te.turn for te in self.exchanges})

    def events(self) -> pd.DataFrame:
        """Raw event timestamps: ``rollout, turn, attempt, seq, type, t_s`` (seconds from ``t0``)."""
        keys = [
            ({"rollout": self.rollout, "turn": te.turn, "attempt": te.attempt}, te.exchange) for te in self.exchanges
        ]
        return events_frame(keys, self.t0)

    def inter_token_gaps(self) -> np.ndarray:
        """Seconds between consecutive output deltas within each successful response, pooled."""
        gaps = [te.exchange.inter_token_gaps() for te in self.exchanges if te.exchange.ok]
        return np.concatenate(gaps) if gaps else np.zeros(0)


def replay_item(item: dict[str, Any]) -> dict[str, Any] | None:
    """An item of the history as input for a new chain; ``None`` for items that cannot be replayed.

    Output items are re-sent without their server ids: the ids belong to the lost chain (and to no store
    when ``store=false``). Assistant messages become plain role/content messages.
    """
    kind = item.get("type", "message")
    if kind == "function_call":
        return {k: item[k] for k in ("type", "call_id", "name", "arguments") if k in item}
    if kind == "function_call_output":
        return {k: item[k] for k in ("type", "call_id", "output") if k in item}
    if kind == "message":
        role = item.get("role", "user")
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return {"type": "message", "role": role, "content": content if isinstance(content, str) else ""}
    return None


def _retryable(ex: Exchange) -> bool:
    if ex.status in ("dropped", "timeout", "failed"):
        return True
    if ex.http_status is not None and ex.http_status >= 500:
        return True
    code = ex.error_code
    if code in RETRYABLE_CODES:
        return True
    err_type = (ex.error or {}).get("type")
    return err_type == "server_error"


def _make_client(
    transport: str,
    base_url: str | None,
    api_key: str | None,
    keep_alive: bool,
    timeout: float | None,
    ping_interval: float | None,
) -> WebSocketClient | HttpClient:
    if transport == "ws":
        return WebSocketClient(base_url, api_key, timeout=timeout, ping_interval=ping_interval)
    return HttpClient(base_url, api_key, keep_alive=keep_alive, stream=True, timeout=timeout)


async def run_rollout(
    transport: TransportName | str,
    workload: Workload | str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str = DEFAULT_MODEL,
    seed: int = 0,
    rollout: int = 0,
    scenario: str | None = None,
    keep_alive: bool = True,
    store: bool | None = None,
    instructions: str | None = None,
    tools: Sequence[dict[str, Any]] = TOOLS,
    script_tool_choice: bool = False,
    metadata: dict[str, str] | None = None,
    max_attempts: int = 3,
    retry_backoff_s: float = 0.0,
    timeout: float | None = 300.0,
    ping_interval: float | None = 20.0,
    t0: float | None = None,
    client: WebSocketClient | HttpClient | None = None,
) -> RolloutResult:
    """Run one scripted agent rollout and record it.

    ``seed`` picks the workload's turn sizes and tool times (``workload.turn_specs(seed)``). ``store``
    defaults to ``True`` for ``http-chained`` and ``False`` otherwise. ``instructions`` count towards the
    first turn's input tokens (the user message is shortened by their estimate, so the request carries
    exactly the workload's size). ``script_tool_choice`` sends ``tool_choice="required"`` on tool turns and
    ``"none"`` on the last one (and ``parallel_tool_calls=false``), which makes a real model follow the
    script. Every request carries ``metadata.labkit_seed``, so the simulator sizes the outputs of this
    conversation from the same ``turn_specs(seed)`` as the runner. ``t0`` is
    the ``perf_counter`` origin of the span times (share one across concurrent rollouts). ``client``
    reuses an open client (it is then not closed here).
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport: expected one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if isinstance(workload, str):
        workload = load_workload(workload)
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts: must be an integer >= 1, got {max_attempts!r}")
    specs = workload.turn_specs(seed)
    chaining = transport in ("ws", "http-chained")
    store_flag = (transport == "http-chained") if store is None else store
    if transport == "http-chained" and not store_flag:
        raise ValueError("store: http-chained needs store=true (the server loads the chain from its store)")
    scen = scenario if scenario is not None else transport
    if client is not None and isinstance(client, WebSocketClient) != (transport == "ws"):
        raise ValueError(f"client: a {type(client).__name__} cannot carry transport {transport!r}")
    own_client = client is None
    # Built before the clock starts: creating an HTTP client loads TLS certificates (~0.1 s).
    cli = client or _make_client(transport, base_url, api_key, keep_alive, timeout, ping_interval)
    origin = time.perf_counter() if t0 is None else t0

    cols = SpanColumns()
    transcript: list[dict[str, Any]] = []
    fallbacks: list[Fallback] = []
    exchanges: list[TurnExchange] = []
    response_ids: list[str] = []
    prev_id: str | None = None
    task_tokens = max(0, specs[0].new_input_tokens - (estimate_tokens(instructions) if instructions else 0))
    new_items: list[dict[str, Any]] = [user_message(filler_text(task_tokens, salt=seed))]
    transcript.extend(new_items)
    finished = False

    def result() -> RolloutResult:
        return RolloutResult(
            transport=transport,
            scenario=scen,
            rollout=rollout,
            seed=seed,
            spans=cols.frame(),
            transcript=transcript,
            fallbacks=fallbacks,
            exchanges=exchanges,
            t0=origin,
            response_ids=response_ids,
            finished=finished,
        )

    def body_for(spec: TurnSpec, chained: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "tools": list(tools), "store": store_flag}
        if instructions:
            body["instructions"] = instructions
        if chained:
            body["previous_response_id"] = prev_id
            body["input"] = new_items
        else:
            body["input"] = [r for r in (replay_item(i) for i in transcript) if r is not None]
        if script_tool_choice:
            body["tool_choice"] = "none" if spec.final else "required"
            body["parallel_tool_calls"] = False
        # The seed travels with every request so the simulator sizes this conversation's outputs from
        # the same turn specs as the runner (and the DES); on the real API it is inert metadata.
        body["metadata"] = {SEED_METADATA_KEY: str(seed), **(metadata or {})}
        return body

    try:
        for spec in specs:
            attempt = 0
            while True:
                ex = await cli.create(body_for(spec, chaining and prev_id is not None))
                exchanges.append(TurnExchange(spec.index, attempt, ex))
                ex.add_spans(
                    cols,
                    t0=origin,
                    source="live",
                    scenario=scen,
                    rollout=rollout,
                    turn=spec.index,
                    attempt=attempt,
                )
                if ex.ok:
                    break
                code = ex.error_code or ex.status
                message = str((ex.error or {}).get("message") or ex.status)
                if not _retryable(ex):
                    raise RolloutError(f"turn {spec.index}: {code}: {message}", ex, result())
                if attempt + 1 >= max_attempts:
                    raise RolloutError(
                        f"turn {spec.index}: gave up after {max_attempts} attempts ({code}: {message})",
                        ex,
                        result(),
                    )
                fallbacks.append(Fallback(spec.index, attempt, code, message))
                attempt += 1
                # A new chain from the retained history: never continue from a parent that failed.
                prev_id = None
                if code == "websocket_connection_limit_reached" and isinstance(cli, WebSocketClient):
                    await cli.close()
                if retry_backoff_s:
                    await asyncio.sleep(retry_backoff_s * attempt)
            output = ex.output
            transcript.extend(output)
            if ex.response_id:
                response_ids.append(ex.response_id)
            prev_id = ex.response_id if chaining else None
            calls = [item for item in output if item.get("type") == "function_call"]
            if not calls or spec.final:
                finished = not calls
                break
            # The local tool: its time is the workload's, its output the next turn's new input.
            nxt = specs[spec.index + 1]
            t_tool = time.perf_counter()
            if spec.tool_s > 0:
                await asyncio.sleep(spec.tool_s)
            t_done = time.perf_counter()
            cols.add("live", scen, rollout, spec.index, "tool", t_tool - origin, t_done - origin, attempt=attempt)
            output_text = filler_text(nxt.new_input_tokens, salt=seed + nxt.index)
            # Every call gets its output (the API rejects a turn that leaves one unanswered); the first
            # carries the workload's size, parallel calls of a real model a short acknowledgement.
            new_items = [
                function_call_output(str(c.get("call_id", "")), output_text if k == 0 else "ok")
                for k, c in enumerate(calls)
            ]
            transcript.extend(new_items)
    finally:
        if own_client:
            await cli.close()
    return result()


async def run_rollouts(
    transport: TransportName | str,
    workload: Workload | str,
    *,
    rollouts: int = 1,
    concurrency: int = 1,
    seed: int = 0,
    **kwargs: Any,
) -> list[RolloutResult]:
    """``rollouts`` rollouts (numbered 0..N-1, seeds ``seed + i``), at most ``concurrency`` at a time, on one
    shared clock origin. Each rollout has its own client (its own WebSocket, or its own HTTP pool)."""
    if not isinstance(rollouts, int) or rollouts < 1:
        raise ValueError(f"rollouts: must be an integer >= 1, got {rollouts!r}")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency: must be an integer >= 1, got {concurrency!r}")
    if "client" in kwargs:
        raise ValueError("client: run_rollouts opens one client per rollout")
    gate = asyncio.Semaphore(concurrency)
    t0 = kwargs.pop("t0", None) or time.perf_counter()

    async def one(i: int) -> RolloutResult:
        async with gate:
            return await run_rollout(transport, workload, seed=seed + i, rollout=i, t0=t0, **kwargs)

    return list(await asyncio.gather(*(one(i) for i in range(rollouts))))


def rollouts_spans(results: Sequence[RolloutResult]) -> pd.DataFrame:
    """All rollouts' spans in one table."""
    return concat_spans(r.spans for r in results)


__all__ = [
    "DEFAULT_MODEL",
    "INSTRUCTIONS",
    "TOOLS",
    "TRANSPORTS",
    "Fallback",
    "RolloutError",
    "RolloutResult",
    "TurnExchange",
    "paused_gc",
    "replay_item",
    "rollouts_spans",
    "run_rollout",
    "run_rollouts",
]
