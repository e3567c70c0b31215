"""The agent runner: a scripted tool-calling loop against the simulator or the real API, recorded as spans.

A rollout follows a workload's turn specs (any object with ``name`` and ``turn_specs(seed)`` returning
:class:`~labkit.model.TurnSpec`: a lognormal :class:`~labkit.model.Workload` or a trace of a real session).
Everything is sized from the specs: turn 0 sends the task (a user message of ``filler_text(new_input_tokens)``)
with a ``tools`` list; each answer's ``function_call`` items (several: parallel tool calls) run as local tools,
in parallel, for the turn's ``tool_s`` (the longest call; recorded as one ``tool`` span), and each call gets one
``function_call_output``, their sizes adding up to the next turn's new input; a steered turn (``spec.steered``)
gets a user message mid-stream (``response.steer`` over WebSocket mode, the next request's input otherwise);
a turn without tool calls hands back to the user, whose next message is the next turn's input; the loop ends
when the model answers the last turn (or answers with a message where the script expected calls). Transports:

- ``ws``: WebSocket mode, one socket, ``previous_response_id`` and only the new items each turn
  (``store=false``: the connection-scoped cache holds the chain);
- ``http``: stateless, the full history every turn (``store=false``);
- ``http-chained``: ``previous_response_id`` with ``store=true``, only the new items.

The full history (input and output items) is retained client-side, so a dropped connection loses nothing.
What happens after a failed attempt is a :class:`RetryPolicy`: which failures retry, how many attempts, the
backoff, and the fallback: when the chain is lost (``previous_response_not_found``, or any failure of a
WebSocket continuation: its socket or its cached parent is gone) the whole history is re-sent as a new chain.
A retry's spans carry ``attempt`` + 1 and the failed attempt's spans stay in the table (its cost is part of the
turn). Failures the policy does not retry raise :class:`RolloutError` with what was recorded.

:class:`RolloutRunner` holds a :class:`RolloutConfig`; :func:`run_rollout` and :func:`run_rollouts` are the
one-call forms (keyword options are the config's fields, plus ``max_attempts`` / ``retry_backoff_s``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from labkit.live.client.http import HttpClient
from labkit.live.client.record import Exchange, events_frame
from labkit.live.client.transport import Steer, Transport
from labkit.live.client.ws import WebSocketClient
from labkit.model import TurnSpec, load_workload
from labkit.model.spans import SpanColumns, concat_spans
from labkit.util import progress
from labkit.util.gctools import paused_gc
from labkit.wire.protocol import SEED_METADATA_KEY, build_create, function_call_output, user_message
from labkit.wire.tokens import estimate_tokens, filler_text

TransportName = Literal["ws", "http", "http-chained"]
TRANSPORTS: tuple[str, ...] = ("ws", "http", "http-chained")
#: The model name sent when none is given (the simulator accepts any name; the real API needs a real one).
DEFAULT_MODEL = "labkit-sim"
#: Error codes after which a retry can succeed (with the full history when the chain is lost).
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
#: Exchange statuses that are failures of the transport or the server, never of the request.
RETRYABLE_STATUSES = frozenset({"dropped", "timeout", "failed"})

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


class WorkloadLike(Protocol):
    """What the runner needs of a workload: a name and the turn specs of one seed."""

    @property
    def name(self) -> str: ...

    def turn_specs(self, seed: int) -> Sequence[TurnSpec]: ...


#: Runs one turn's tool calls: ``(calls, spec, sizes)`` -> one output text per call. ``sizes`` are the
#: token counts the script gives each output (they add up to the next turn's new input).
ToolRunner = Callable[[Sequence[dict[str, Any]], TurnSpec, Sequence[int]], Awaitable[Sequence[str]]]


class RolloutError(RuntimeError):
    """A turn failed in a way the retry policy does not retry, or kept failing after ``max_attempts``."""

    def __init__(self, message: str, exchange: Exchange | None = None, partial: RolloutResult | None = None):
        super().__init__(message)
        self.exchange = exchange
        #: What the rollout had recorded (spans, transcript) when it stopped.
        self.partial = partial


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What the runner does after a failed attempt.

    A failure retries when its exchange status is in ``statuses`` (a drop, a timeout, ``response.failed``),
    its error code in ``codes``, or (``server_errors``) it is an HTTP 5xx or an error of type
    ``server_error``; at most ``max_attempts`` attempts per turn. Retry ``k`` (1, 2, ...) waits
    ``backoff_s * backoff_factor ** (k - 1)``, at most ``max_backoff_s``.

    The fallback: when the chain is lost (``previous_response_not_found``, or any failed continuation over
    WebSocket mode, whose socket or cached parent is then gone) the retry re-sends the retained history as a
    new chain; ``full_history_fallback=False`` raises instead (a measurement that must not hide one). A failure
    that leaves the parent in place (``http-chained``: a 5xx, a dropped stream; the store still has it)
    re-sends the same continuation when ``resume_chain`` is true, else the full history as well.
    """

    max_attempts: int = 3
    codes: frozenset[str] = RETRYABLE_CODES
    statuses: frozenset[str] = RETRYABLE_STATUSES
    server_errors: bool = True
    backoff_s: float = 0.0
    backoff_factor: float = 2.0
    max_backoff_s: float = 30.0
    full_history_fallback: bool = True
    resume_chain: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be an integer >= 1, got {self.max_attempts!r}")
        for name in ("backoff_s", "max_backoff_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name}: must be a number >= 0, got {v!r}")
        f = self.backoff_factor
        if not (isinstance(f, int | float) and math.isfinite(f) and f >= 1):
            raise ValueError(f"backoff_factor: must be a number >= 1, got {f!r}")
        object.__setattr__(self, "codes", frozenset(self.codes))
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    def retries(self, ex: Exchange) -> bool:
        """Whether a failed attempt is worth another one."""
        if ex.status in self.statuses or ex.error_code in self.codes:
            return True
        if self.server_errors:
            if ex.http_status is not None and ex.http_status >= 500:
                return True
            return (ex.error or {}).get("type") == "server_error"
        return False

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry ``retry`` (1 for the first)."""
        if self.backoff_s == 0:
            return 0.0
        return float(min(self.max_backoff_s, self.backoff_s * self.backoff_factor ** max(0, retry - 1)))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["codes"], out["statuses"] = sorted(self.codes), sorted(self.statuses)
        return out


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """How rollouts are run: transport, endpoint, request fields, timeouts and the retry policy.

    ``store`` defaults to ``True`` for ``http-chained`` and ``False`` otherwise. ``instructions`` count towards
    the first turn's input tokens (the task message is shortened by their estimate, so the request carries
    exactly the spec's size). ``script_tool_choice`` sends ``tool_choice="required"`` on tool turns and
    ``"none"`` on the others, which makes a real model follow the script. ``reasoning_effort`` is sent as
    ``reasoning.effort`` when the turn specs have reasoning tokens; ``parallel_tool_calls=true`` is sent when
    they have turns with several calls. Every request carries ``metadata.labkit_seed``, so the simulator sizes
    the outputs of the conversation from the same ``turn_specs(seed)`` as the runner. ``tool_runner``
    replaces the scripted tools (sleep ``tool_s``, answer filler of the scripted size).
    """

    transport: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    scenario: str | None = None
    keep_alive: bool = True
    store: bool | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = TOOLS
    script_tool_choice: bool = False
    reasoning_effort: str = "medium"
    metadata: Mapping[str, str] | None = None
    timeout: float | None = 300.0
    ping_interval: float | None = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tool_runner: ToolRunner | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport: expected one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        if self.transport == "http-chained" and self.store is False:
            raise ValueError("store: http-chained needs store=true (the server loads the chain from its store)")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model: must be a non-empty string, got {self.model!r}")
        for name in ("timeout", "ping_interval"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be a number > 0 or None, got {v!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise ValueError(f"retry: must be a RetryPolicy, got {type(self.retry).__name__}")
        object.__setattr__(self, "tools", tuple(dict(t) for t in self.tools))

    @classmethod
    def from_options(cls, transport: str, **options: Any) -> RolloutConfig:
        """A config from keyword options: the fields, plus ``max_attempts`` and ``retry_backoff_s`` (the
        retry policy's ``max_attempts`` and ``backoff_s``, applied to ``retry`` or the default policy)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"transport"}
        unknown = sorted(set(options) - names - {"max_attempts", "retry_backoff_s"})
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown rollout option (expected one of {', '.join(sorted(names))})")
        if options.get("retry", RetryPolicy()) is None:
            del options["retry"]  # None: the default policy
        retry_changes = {}
        if "max_attempts" in options:
            retry_changes["max_attempts"] = options.pop("max_attempts")
        if "retry_backoff_s" in options:
            retry_changes["backoff_s"] = options.pop("retry_backoff_s")
        if retry_changes:
            base = options.get("retry") or RetryPolicy()
            options["retry"] = dataclasses.replace(base, **retry_changes)
        return cls(transport, **options)

    @property
    def chaining(self) -> bool:
        return self.transport in ("ws", "http-chained")

    @property
    def store_flag(self) -> bool:
        return (self.transport == "http-chained") if self.store is None else self.store

    @property
    def scenario_name(self) -> str:
        return self.scenario if self.scenario is not None else self.transport

    def make_client(self) -> Transport:
        if self.transport == "ws":
            return WebSocketClient(self.base_url, self.api_key, timeout=self.timeout, ping_interval=self.ping_interval)
        return HttpClient(self.base_url, self.api_key, keep_alive=self.keep_alive, stream=True, timeout=self.timeout)

    def to_dict(self) -> dict[str, Any]:
        """The configuration in plain data; the key is never included."""
        return {
            "transport": self.transport,
            "base_url": self.base_url,
            "api_key": "[set]" if self.api_key else None,
            "model": self.model,
            "scenario": self.scenario_name,
            "keep_alive": self.keep_alive,
            "store": self.store_flag,
            "instructions": self.instructions,
            "tools": [t.get("name") for t in self.tools],
            "script_tool_choice": self.script_tool_choice,
            "reasoning_effort": self.reasoning_effort,
            "metadata": dict(self.metadata or {}),
            "timeout": self.timeout,
            "ping_interval": self.ping_interval,
            "retry": self.retry.to_dict(),
            "tool_runner": self.tool_runner is not None,
        }


@dataclass(frozen=True, slots=True)
class Fallback:
    """One retry: the turn, the attempt that failed, why, and whether the retry re-sent the full history."""

    turn: int
    attempt: int
    code: str
    message: str
    full_history: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class TurnExchange:
    turn: int
    attempt: int
    exchange: Exchange


@dataclass(frozen=True)
class RolloutResult:
    """What one rollout produced: spans (``source='live'``), the retained history, the fallbacks."""

    transport: str
    scenario: str
    rollout: int
    seed: int
    #: The live spans (``connect, queue, request, reasoning, decode, complete, tool``) of every attempt.
    spans: pd.DataFrame
    #: Every input and output item of the conversation, in order, exactly as sent and received.
    transcript: list[dict[str, Any]]
    fallbacks: list[Fallback]
    #: Every request with its raw event timestamps.
    exchanges: list[TurnExchange]
    #: ``perf_counter`` origin of the spans' times.
    t0: float
    response_ids: list[str] = field(default_factory=list)
    #: The rollout ended with the model's message (False: stopped at the last turn spec).
    finished: bool = True
    workload: str = ""

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

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the rollout's identity, outcome, fallbacks, per-exchange summaries, spans, transcript."""
        return {
            "transport": self.transport,
            "scenario": self.scenario,
            "workload": self.workload,
            "rollout": self.rollout,
            "seed": self.seed,
            "turns": self.turns,
            "finished": self.finished,
            "fallbacks": [f.to_dict() for f in self.fallbacks],
            "response_ids": list(self.response_ids),
            "exchanges": [{"turn": te.turn, "attempt": te.attempt, **te.exchange.summary()} for te in self.exchanges],
            "spans": self.spans.to_dict(orient="records"),
            "transcript": list(self.transcript),
        }


def replay_item(item: dict[str, Any]) -> dict[str, Any] | None:
    """An item of the history as input for a new chain; ``None`` for items that cannot be replayed.

    Output items are re-sent without their server ids: the ids belong to the lost chain (and to no store
    when ``store=false``). Assistant messages become plain role/content messages. A function call cut short
    (``status: incomplete``, a steered response) is left out: it is owed no output. A reasoning item is
    replayable only with its ``encrypted_content`` (asked for with ``include``); without it, it is left out.
    """
    kind = item.get("type", "message")
    if kind == "function_call":
        if item.get("status") == "incomplete":
            # Cut short (a steered response): no output is owed for it, so a replay must not leave it pending.
            return None
        return {k: item[k] for k in ("type", "call_id", "name", "arguments") if k in item}
    if kind == "function_call_output":
        return {k: item[k] for k in ("type", "call_id", "output") if k in item}
    if kind == "message":
        role = item.get("role", "user")
        content = item.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return {"type": "message", "role": role, "content": content if isinstance(content, str) else ""}
    if kind == "reasoning" and isinstance(item.get("encrypted_content"), str):
        return {k: item[k] for k in ("type", "id", "summary", "encrypted_content") if k in item}
    return None


def split_sizes(total: int, parts: int) -> list[int]:
    """``total`` tokens over ``parts`` outputs, as even as integers allow (the first ones one larger)."""
    if parts < 1:
        return []
    q, r = divmod(max(0, total), parts)
    return [q + (1 if k < r else 0) for k in range(parts)]


def turn_specs_of(workload: WorkloadLike, seed: int) -> tuple[TurnSpec, ...]:
    """The workload's turn specs for ``seed``, checked: at least one, numbered 0, 1, ... in order."""
    if not isinstance(getattr(workload, "name", None), str) or not callable(getattr(workload, "turn_specs", None)):
        raise ValueError("workload: needs a str 'name' and a 'turn_specs(seed)' method")
    specs = tuple(workload.turn_specs(seed))
    if not specs:
        raise ValueError(f"workload: {workload.name!r} has no turns for seed {seed}")
    for k, spec in enumerate(specs):
        if not isinstance(spec, TurnSpec) or spec.index != k:
            raise ValueError(f"workload: turn spec {k} of {workload.name!r} is not a TurnSpec numbered {k}")
    return specs


async def scripted_tools(
    calls: Sequence[dict[str, Any]], spec: TurnSpec, sizes: Sequence[int], *, salt: int = 0
) -> list[str]:
    """The default tools: every call runs in parallel for the turn's ``tool_s`` (the spec knows only the
    longest call, so the turn waits exactly that long) and answers filler text of its scripted size
    (``salt + k`` for call ``k``)."""

    async def one(k: int) -> str:
        if spec.tool_s > 0:
            await asyncio.sleep(spec.tool_s)
        return filler_text(sizes[k], salt=salt + k)

    return list(await asyncio.gather(*(one(k) for k in range(len(calls)))))


class Rollout:
    """One rollout in progress: the retained history, the chain, the spans; :meth:`run` drives it."""

    def __init__(
        self,
        config: RolloutConfig,
        workload: WorkloadLike,
        client: Transport,
        *,
        seed: int,
        rollout: int,
        t0: float,
    ) -> None:
        self.config = config
        self.workload_name = workload.name
        self.specs = turn_specs_of(workload, seed)
        self.client = client
        self.seed = seed
        self.rollout = rollout
        self.t0 = t0
        self.cols = SpanColumns()
        self.transcript: list[dict[str, Any]] = []
        self.fallbacks: list[Fallback] = []
        self.exchanges: list[TurnExchange] = []
        self.response_ids: list[str] = []
        self.finished = False
        #: The response the next request continues from (``None``: a new chain).
        self.prev_id: str | None = None
        #: Items added since ``prev_id``: a chained request's input.
        self.pending: list[dict[str, Any]] = []
        #: The server starts the next response by itself (after an accepted steer) from these items: read it,
        #: send nothing.
        self.successor: list[dict[str, Any]] | None = None
        # What the request asks for follows from the specs alone (a trace has no distribution fields).
        self.reasoning = any(s.reasoning_tokens > 0 for s in self.specs)
        self.parallel = any(s.tool_calls > 1 for s in self.specs)

    # -- the loop -------------------------------------------------------------------------------------

    async def run(self) -> RolloutResult:
        cfg = self.config
        first = self.specs[0]
        task = max(0, first.new_input_tokens - (estimate_tokens(cfg.instructions) if cfg.instructions else 0))
        self._add_input([user_message(filler_text(task, salt=self.seed))])
        for spec in self.specs:
            ex = await self._turn(spec)
            output = ex.output
            self.transcript.extend(output)
            if ex.response_id:
                self.response_ids.append(ex.response_id)
            self.prev_id = ex.response_id if cfg.chaining else None
            self.pending = []
            # A call cut short (max_output_tokens, steering) is owed no output: the API rejects one for it.
            calls = [c for c in ex.function_calls if c.get("status") != "incomplete"]
            if spec.final:
                self.finished = not calls
                break
            nxt = self.specs[spec.index + 1]
            if spec.steered or ex.steered:
                self._after_steer(spec, nxt, ex, calls)
                continue
            if not calls and spec.tool_calls == 0:
                # A hand-back (a trace's turn without tool calls): the user's next message is the next input.
                self._add_input(self._user_items(nxt))
                continue
            if not calls:
                # The model answered before the script's last turn (or ran out of output): the rollout is over.
                self.finished = ex.status == "completed"
                break
            await self._run_tools(spec, nxt, calls)
        return self.result()

    def _add_input(self, items: list[dict[str, Any]]) -> None:
        self.transcript.extend(items)
        self.pending.extend(items)

    def _user_items(self, nxt: TurnSpec) -> list[dict[str, Any]]:
        return [user_message(filler_text(nxt.new_input_tokens, salt=self.seed + nxt.index))]

    def _after_steer(self, spec: TurnSpec, nxt: TurnSpec, ex: Exchange, calls: list[dict[str, Any]]) -> None:
        """The user's steering input becomes the next turn's input.

        An accepted steer (WebSocket mode) is the server's. After a steered response (it owes no tool output)
        or a call-free one, the successor starts by itself with it. After a response that completed with calls
        it stays queued and is prepended to the next request, which then carries only the calls' outputs.
        Not accepted (refused, unanswered, or another transport): the next request carries it.
        """
        items = self._user_items(nxt)
        # Calls the model made anyway are answered (empty outputs): the API rejects a request that leaves one.
        answers = [function_call_output(str(c.get("call_id", "")), "") for c in calls]
        if ex.steer_outcome in ("accepted", "pending") and self.client.steering:
            self.transcript.extend(items)
            if ex.steered or not calls:
                self.successor = items
            else:
                self._add_input(answers)
            return
        self._add_input([*answers, *items])

    async def _run_tools(self, spec: TurnSpec, nxt: TurnSpec, calls: list[dict[str, Any]]) -> None:
        """Every call of the turn, in parallel; each answered with one output, their sizes adding up to the
        next turn's new input (one ``tool`` span: the turn waits for the longest call)."""
        sizes = split_sizes(nxt.new_input_tokens, len(calls))
        t_tool = time.perf_counter()
        if self.config.tool_runner is not None:
            texts = list(await self.config.tool_runner(calls, spec, sizes))
        else:
            # Salted per conversation, so rollouts of different seeds send different text.
            texts = await scripted_tools(calls, spec, sizes, salt=self.seed + nxt.index)
        t_done = time.perf_counter()
        if len(texts) != len(calls):
            raise ValueError(f"tool_runner: returned {len(texts)} outputs for {len(calls)} calls")
        attempt = max((te.attempt for te in self.exchanges if te.turn == spec.index), default=0)
        self.cols.add(
            "live", self.config.scenario_name, self.rollout, spec.index, "tool", t_tool - self.t0, t_done - self.t0,
            attempt=attempt,
        )  # fmt: skip
        self._add_input([function_call_output(str(c.get("call_id", "")), t) for c, t in zip(calls, texts, strict=True)])

    # -- one turn, with retries -----------------------------------------------------------------------

    async def _turn(self, spec: TurnSpec) -> Exchange:
        cfg, policy = self.config, self.config.retry
        attempt = 0
        follow, self.successor = self.successor, None
        while True:
            ex = await self._send(spec, follow if attempt == 0 else None)
            self.exchanges.append(TurnExchange(spec.index, attempt, ex))
            ex.add_spans(
                self.cols, t0=self.t0, source="live", scenario=cfg.scenario_name, rollout=self.rollout,
                turn=spec.index, attempt=attempt,
            )  # fmt: skip
            if ex.ok:
                return ex
            code = ex.error_code or ex.status
            message = str((ex.error or {}).get("message") or ex.status)
            if not policy.retries(ex):
                raise RolloutError(f"turn {spec.index}: {code}: {message}", ex, self.result())
            if attempt + 1 >= policy.max_attempts:
                raise RolloutError(
                    f"turn {spec.index}: gave up after {policy.max_attempts} attempts ({code}: {message})",
                    ex,
                    self.result(),
                )
            lost = self._chain_lost(ex)
            if lost and not policy.full_history_fallback:
                raise RolloutError(
                    f"turn {spec.index}: {code}: the chain is lost and the retry policy allows no full-history "
                    f"fallback ({message})",
                    ex,
                    self.result(),
                )
            full = lost or not policy.resume_chain or self.prev_id is None
            self.fallbacks.append(Fallback(spec.index, attempt, code, message, full))
            attempt += 1
            if full:
                # A new chain from the retained history: never continue from a parent that failed.
                self.prev_id = None
            if code == "websocket_connection_limit_reached":
                await self.client.reconnect()
            delay = policy.delay_s(attempt)
            if delay:
                await asyncio.sleep(delay)

    def _chain_lost(self, ex: Exchange) -> bool:
        if ex.error_code == "previous_response_not_found":
            return True
        # WebSocket mode: a failed same-lane continuation evicts its parent, a lost socket its whole cache.
        return self.config.transport == "ws"

    async def _send(self, spec: TurnSpec, follow: list[dict[str, Any]] | None) -> Exchange:
        cli = self.client
        if follow is not None:
            # Only set after the server accepted steering, which only a steering transport reports.
            return await cli.follow(input=follow)
        steer = None
        if cli.steering and spec.steered and not spec.final:
            # The user steers once the turn's output (the tokens decoded before steering took effect) is in.
            steer = Steer(tuple(self._user_items(self.specs[spec.index + 1])), after_tokens=spec.output_tokens)
        return await cli.create(self._body(spec), steer=steer)

    def _replay(self) -> list[dict[str, Any]]:
        """The retained history as a new chain's input. A call nobody answered (a steered response owes its
        calls no output) is left out: replayed, it would be a pending call the API rejects."""
        answered = {i.get("call_id") for i in self.transcript if i.get("type") == "function_call_output"}
        out = []
        for item in self.transcript:
            if item.get("type") == "function_call" and item.get("call_id") not in answered:
                continue
            replayed = replay_item(item)
            if replayed is not None:
                out.append(replayed)
        return out

    def _body(self, spec: TurnSpec) -> dict[str, Any]:
        cfg = self.config
        chained = cfg.chaining and self.prev_id is not None
        extra: dict[str, Any] = {}
        if cfg.script_tool_choice:
            extra["tool_choice"] = "none" if spec.final or spec.tool_calls == 0 else "required"
            extra["parallel_tool_calls"] = self.parallel
        elif self.parallel:
            extra["parallel_tool_calls"] = True
        if self.reasoning:
            extra["reasoning"] = {"effort": cfg.reasoning_effort}
            if not cfg.store_flag:
                # Without a store the reasoning items come back encrypted, so a full-history retry can replay them.
                extra["include"] = ["reasoning.encrypted_content"]
        return build_create(
            cfg.model,
            list(self.pending) if chained else self._replay(),
            instructions=cfg.instructions or None,
            tools=cfg.tools,
            previous_response_id=self.prev_id if chained else None,
            store=cfg.store_flag,
            # The seed travels with every request so the simulator sizes this conversation's outputs from
            # the same turn specs as the runner (and the DES); on the real API it is inert metadata.
            metadata={SEED_METADATA_KEY: str(self.seed), **(cfg.metadata or {})},
            websocket=False,
            **extra,
        )

    def result(self) -> RolloutResult:
        return RolloutResult(
            transport=self.config.transport,
            scenario=self.config.scenario_name,
            rollout=self.rollout,
            seed=self.seed,
            spans=self.cols.frame(),
            transcript=list(self.transcript),
            fallbacks=list(self.fallbacks),
            exchanges=list(self.exchanges),
            t0=self.t0,
            response_ids=list(self.response_ids),
            finished=self.finished,
            workload=self.workload_name,
        )


class RolloutRunner:
    """Runs rollouts with one :class:`RolloutConfig`."""

    def __init__(self, config: RolloutConfig) -> None:
        if not isinstance(config, RolloutConfig):
            raise ValueError(f"config: must be a RolloutConfig, got {type(config).__name__}")
        self.config = config

    async def run(
        self,
        workload: WorkloadLike | str,
        *,
        seed: int = 0,
        rollout: int = 0,
        t0: float | None = None,
        client: Transport | None = None,
    ) -> RolloutResult:
        """One rollout of ``workload.turn_specs(seed)``. ``t0`` is the ``perf_counter`` origin of the span
        times (share one across concurrent rollouts). ``client`` reuses an open client (not closed here)."""
        wl = load_workload(workload) if isinstance(workload, str) else workload
        if client is not None and (client.mode == "websocket") != (self.config.transport == "ws"):
            raise ValueError(f"client: a {type(client).__name__} cannot carry transport {self.config.transport!r}")
        own = client is None
        # Built before the clock starts: creating an HTTP client loads TLS certificates (~0.1 s).
        cli = client or self.config.make_client()
        try:
            state = Rollout(
                self.config, wl, cli, seed=seed, rollout=rollout, t0=time.perf_counter() if t0 is None else t0
            )
            return await state.run()
        finally:
            if own:
                await cli.close()

    async def run_many(
        self,
        workload: WorkloadLike | str,
        *,
        rollouts: int = 1,
        concurrency: int = 1,
        seed: int = 0,
        t0: float | None = None,
    ) -> list[RolloutResult]:
        """``rollouts`` rollouts (numbered 0..N-1, seeds ``seed + i``), at most ``concurrency`` at a time, on
        one shared clock origin (``t0``, default: now). Each rollout has its own client (its own WebSocket, or
        its own HTTP pool)."""
        if not isinstance(rollouts, int) or rollouts < 1:
            raise ValueError(f"rollouts: must be an integer >= 1, got {rollouts!r}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency: must be an integer >= 1, got {concurrency!r}")
        wl = load_workload(workload) if isinstance(workload, str) else workload
        gate = asyncio.Semaphore(concurrency)
        origin = time.perf_counter() if t0 is None else t0

        async def one(i: int) -> RolloutResult:
            async with gate:
                return await self.run(wl, seed=seed + i, rollout=i, t0=origin)

        desc = f"{self.config.transport} rollouts"
        return await progress.gather(*(one(i) for i in range(rollouts)), desc=desc, unit="rollout")


async def run_rollout(
    transport: TransportName | str,
    workload: WorkloadLike | str,
    *,
    seed: int = 0,
    rollout: int = 0,
    t0: float | None = None,
    client: Transport | None = None,
    **options: Any,
) -> RolloutResult:
    """Run one scripted agent rollout and record it: :meth:`RolloutRunner.run` with
    ``RolloutConfig.from_options(transport, **options)``."""
    config = RolloutConfig.from_options(transport, **options)
    return await RolloutRunner(config).run(workload, seed=seed, rollout=rollout, t0=t0, client=client)


async def run_rollouts(
    transport: TransportName | str,
    workload: WorkloadLike | str,
    *,
    rollouts: int = 1,
    concurrency: int = 1,
    seed: int = 0,
    **options: Any,
) -> list[RolloutResult]:
    """:meth:`RolloutRunner.run_many` with ``RolloutConfig.from_options(transport, **options)`` (``t0``, the
    shared clock origin, goes to ``run_many``)."""
    if "client" in options:
        raise ValueError("client: run_rollouts opens one client per rollout")
    t0 = options.pop("t0", None)
    config = RolloutConfig.from_options(transport, **options)
    return await RolloutRunner(config).run_many(workload, rollouts=rollouts, concurrency=concurrency, seed=seed, t0=t0)


def rollouts_spans(results: Sequence[RolloutResult]) -> pd.DataFrame:
    """All rollouts' spans in one table."""
    return concat_spans(r.spans for r in results)


__all__ = [
    "DEFAULT_MODEL",
    "INSTRUCTIONS",
    "RETRYABLE_CODES",
    "RETRYABLE_STATUSES",
    "TOOLS",
    "TRANSPORTS",
    "Fallback",
    "RetryPolicy",
    "Rollout",
    "RolloutConfig",
    "RolloutError",
    "RolloutResult",
    "RolloutRunner",
    "ToolRunner",
    "TurnExchange",
    "WorkloadLike",
    "paused_gc",
    "replay_item",
    "rollouts_spans",
    "run_rollout",
    "run_rollouts",
    "scripted_tools",
    "split_sizes",
    "turn_specs_of",
]
