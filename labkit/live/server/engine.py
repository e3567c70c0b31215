"""The simulated model behind the server: from a request to a timed stream of events.

Transport-free: the WebSocket and HTTP handlers in :mod:`labkit.live.server.app` call :meth:`Engine.prepare`
(resolve the conversation, pick the cache state, plan the turn) and then :meth:`Engine.run` with an
``emit`` coroutine that frames and sends each batch of events (or ``None`` for a non-streaming HTTP answer).

:meth:`Engine.prepare` is a sequence of small named steps: draw the turn's faults, look the parent up
(connection cache, then store), place the request in its conversation, check the function-call
bookkeeping, shape the output, route to a replica, plan. A continuation that fails any step after its
parent was found evicts that parent from its lane (the WebSocket-mode guide: a same-lane continuation
returning a 4xx or 5xx evicts its cached parent).

Timing. The turn's plan comes from :func:`labkit.model.plan_turn`; the server emulates the stages in
``_PRE_DECODE`` and ``_POST_DECODE`` (the network stages are real on the socket, the tool runs at the
client). :class:`~labkit.live.server.schedule.Pacer` turns the plan into batches of events due at absolute
deadlines on the loop clock; :meth:`Engine.run` only sleeps until each deadline and sends the batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

import orjson

from labkit.live.server.answer_template import AnswerTemplates
from labkit.live.server.assembly import assemble_response
from labkit.live.server.cache import CacheBudget, LaneCache
from labkit.live.server.counters import ServerCounters
from labkit.live.server.faults import NO_FAULTS, DropConnection, EventCounter, FaultInjector, Faults, TurnFaults
from labkit.live.server.ids import new_id, wall_clock
from labkit.live.server.jsonout import dumps, kept
from labkit.live.server.output import OutputPlan, plan_output, reasoning_tokens_for
from labkit.live.server.schedule import Pacer, Timing
from labkit.live.server.script import Script
from labkit.live.server.state import (
    DEFAULT_MAX_STORED_BYTES,
    Bodies,
    Replicas,
    ResponseRecord,
    Store,
    record_from_fields,
)
from labkit.model import CacheState, Profile, TurnSpec, Workload, plan_turn
from labkit.util.fields import from_fields
from labkit.wire.protocol import (
    SEED_METADATA_KEY,
    CreateRequest,
    ProtocolError,
    ResponseEvents,
    ServerEvent,
    SteerRequest,
    conversation_split,
    item_tokens,
    no_tool_call_error,
    no_tool_output_error,
)
from labkit.wire.response import Clock, IdSource
from labkit.wire.tokens import estimate_tokens

Emit = Callable[[list[ServerEvent]], Awaitable[None]]
Source = Literal["none", "connection", "store"]

_PRE_REASONING = ("validate", "load_state", "render", "config", "safety_in", "hops", "queue", "prefill")
_PRE_DECODE = (*_PRE_REASONING, "reasoning")
_POST_DECODE = ("safety_out", "persist", "postprocess")

__all__ = ["CacheBudget", "Engine", "LaneCache", "Resolved", "Turn", "TurnFailed", "TurnLog", "TurnWatcher"]


class TurnFailed(Exception):
    """A turn that failed with a 5xx (fault injection); its ``response.failed`` already went out if streaming."""

    def __init__(self, events: ResponseEvents) -> None:
        super().__init__("server_error")
        self.events = events


class TurnLog(NamedTuple):
    """One finished turn as the server saw it (times on the server's loop clock, seconds)."""

    response_id: str
    transport: str
    stream_id: str | None
    source: str
    status: str
    spec: TurnSpec
    cache: CacheState
    t0: float
    t_first: float | None
    t_done: float
    delta_frames: int
    #: When the last output delta went out (``None`` without a paced stream).
    t_last: float | None = None


class _PlanTimes(NamedTuple):
    """What the server emulates of a turn's plan: its stage times (seconds) and the prefix it had cached."""

    pre_s: float
    reasoning_s: float
    post_s: float
    cached_input: int


#: Every cache state, built once (a turn picks one per request).
_CACHE_STATES = {
    (conn, hit, replica): CacheState(conn, hit, replica)
    for conn in (False, True)
    for hit in (False, True)
    for replica in (False, True)
}

#: Where a turn-log line holds the turn's spec, its cache state and its times (:meth:`Engine._log_end`).
_LOG_SPEC = slice(5, 5 + len(TurnSpec._fields))
_LOG_CACHE = slice(_LOG_SPEC.stop, _LOG_SPEC.stop + len(CacheState._fields))
_LOG_TIMES = slice(_LOG_CACHE.stop, None)
_as_spec = from_fields(TurnSpec)

#: Distinct (source, turn, cache state) plans kept; past it the cache starts over (a bound, not an LRU).
_PLAN_CACHE_SIZE = 4096


class _Position(NamedTuple):
    """Where a request sits in its conversation."""

    turn: int
    context: int
    new: int
    key: str
    #: Tokens of the request's own instructions.
    instructions: int


class Resolved(NamedTuple):
    """A request resolved against the server's state (:meth:`Engine.resolve`): everything about its turn but the
    pacing, which a streamed or waited answer adds (:meth:`Engine.pace`) and an answer due at once does not need."""

    request: CreateRequest
    transport: Literal["http", "websocket"]
    spec: TurnSpec
    cache: CacheState
    source: Source
    parent: ResponseRecord | None
    conversation_key: str
    replica: int
    output: OutputPlan
    instructions_tokens: int
    times: _PlanTimes
    faults: TurnFaults
    conn_cache: LaneCache | None
    t0: float


#: How a request arrived, as :meth:`Engine.resolve` takes it: its transport, ``t0``, the connection's cache and
#: replica, and its event counter.
_Where = tuple[Literal["http", "websocket"], float, LaneCache | None, int, EventCounter | None]

_as_position = from_fields(_Position)
_as_resolved = from_fields(Resolved)


class TurnWatcher(Protocol):
    """Told of every turn as it is resolved and as it ends (:attr:`Engine.watcher`; ``labkit serve`` watches
    which conversations stopped with tool calls owed)."""

    def resolved(self, resolved: Resolved) -> None: ...

    def ended(self, conversation_key: str, turn: int, record: ResponseRecord | None) -> None:
        """``record``: the finished response's, ``None`` when it failed or its connection was cut."""


@dataclass(slots=True)
class Turn:
    """One request, resolved and planned, ready to run: its :class:`Resolved`, its events and their schedule."""

    resolved: Resolved
    events: ResponseEvents
    pacer: Pacer
    record: ResponseRecord | None = None
    #: The final Response's JSON (:func:`labkit.live.server.jsonout.dumps`), when the store encoded it: a JSON
    #: answer sends these bytes instead of encoding the Response again.
    answer: bytes | None = None
    #: Accepted steering of this response: ``(steer id, request)`` in arrival order (WebSocket mode).
    steers: list[tuple[str, SteerRequest]] = field(default_factory=list)
    #: Events of this response that went out on the wire.
    sent: int = 0
    _waker: asyncio.Future[None] | None = None

    @property
    def kind(self) -> str:
        items = self.resolved.output.items
        return items[0].kind if items else "message"

    def wake(self) -> None:
        """End the current wait early (a steer arrived): the pacer decides what is due now."""
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Engine:
    """The server's shared state and the turn logic (one per :class:`~labkit.live.server.SimServer`)."""

    def __init__(
        self,
        profile: Profile,
        workload: Workload,
        *,
        seed: int | None = None,
        instant: bool = False,
        replicas: int | None = None,
        routing: str | None = None,
        faults: Faults | None = None,
        max_stored: int = 100_000,
        max_stored_bodies: int = 10_000,
        max_stored_bytes: int = DEFAULT_MAX_STORED_BYTES,
        turn_log_size: int = 10_000,
        spin_s: float = 0.0015,
        spin_max_active: int = 4,
        max_cached_bytes: int | None = None,
    ) -> None:
        if not (isinstance(spin_s, int | float) and 0 <= spin_s <= 0.1):
            raise ValueError(f"spin_s: must be within [0, 0.1] seconds, got {spin_s!r}")
        self.profile = profile
        #: Before a turn's first-delta and completion deadlines, yield-wait this long instead of sleeping;
        #: only while at most ``spin_max_active`` responses run (under load the loop wakes often anyway,
        #: and spinning many turns at once would cost real CPU).
        self.spin_s = spin_s
        self.spin_max_active = spin_max_active
        self.active = 0
        self.workload = workload
        self.seed = workload.seed if seed is None else seed
        self.specs = workload.turn_specs(self.seed)
        self.instant = instant
        self._rng = random.Random(self.seed)
        self.replicas = Replicas(
            profile.replicas if replicas is None else replicas,
            profile.routing if routing is None else routing,  # type: ignore[arg-type]
            self._rng,
        )
        self.store = Store(max_stored)
        #: Stored responses as clients read them back (``GET /v1/responses/{id}``).
        self.bodies = Bodies(max_stored_bodies, max_stored_bytes)
        self.faults = FaultInjector(faults or Faults())
        self.metrics = ServerCounters()
        #: The faults of every turn when none can happen (nothing drawn, nothing counted): one, shared.
        self._no_faults = TurnFaults(NO_FAULTS, None, EventCounter(), self.metrics)
        #: Server-wide budget of the connection caches (``None``: unlimited); see :class:`CacheBudget`.
        self.cache_budget = CacheBudget(max_cached_bytes, profile.bytes_per_token, self.metrics)
        # The most recent turns (:attr:`turn_log`), as flat tuples of plain values: the garbage collector stops
        # tracking such a tuple at the first collection that sees it, where a named tuple stays in every full
        # collection's walk.
        self._turn_log: deque[tuple[Any, ...]] = deque(maxlen=turn_log_size)
        #: Responses running now, by id (``POST /v1/responses/{id}/cancel`` and steering look here).
        self.inflight: dict[str, Turn] = {}
        # plan_turn reads the chaining mode from the profile; the server decides it per request (a hit in
        # the connection cache, a load from the store, or the full context), so keep one variant of each.
        self._variants: dict[Source, Profile] = {}
        #: The stage times each (source, turn, cache state) plans to: plan_turn is pure, and the turns of a
        #: workload repeat, so most requests find theirs here instead of building 16 stages to sum four sums.
        self._plans: dict[tuple[Source, TurnSpec, CacheState], _PlanTimes] = {}
        #: The output plans of requests without tools or settings, by (turn, generate, max_output_tokens).
        self._plain_outputs: dict[tuple[int, bool, int | None], OutputPlan] = {}
        #: Answers due at once, encoded once per plan and echo with holes for what differs per response.
        self.answers = AnswerTemplates()
        #: What the model does, when scripted (``SimServer(script=...)``); ``None``: the workload's filler.
        self.script: Script | None = None
        #: Told of every turn as it is resolved and as it ends (``None``: nobody watches).
        self.watcher: TurnWatcher | None = None
        #: The ids and the ``created_at`` clock of the responses this engine makes (tests pass fixed ones).
        self.ids: IdSource = new_id
        self.clock: Clock = wall_clock

    @property
    def turn_log(self) -> list[TurnLog]:
        """The most recent turns, newest last: what the server decided and when it sent what (loop clock)."""
        return [
            TurnLog._make((*line[:5], _as_spec(line[_LOG_SPEC]), _CACHE_STATES[line[_LOG_CACHE]], *line[_LOG_TIMES]))
            for line in self._turn_log
        ]

    def profile_for(self, source: Source) -> Profile:
        variant = self._variants.get(source)
        if variant is None:
            if source == "connection":
                variant = self.profile.with_(transport="websocket", chaining="connection")
            elif source == "store":
                variant = self.profile.with_(chaining="store")
            else:
                variant = self.profile.with_(chaining="none")
            self._variants[source] = variant
        return variant

    # -- resolving a request --------------------------------------------------------------------------

    def prepare(
        self,
        request: CreateRequest,
        *,
        transport: Literal["http", "websocket"],
        t0: float,
        conn_cache: LaneCache | None = None,
        conn_replica: int = 0,
        events: ResponseEvents | None = None,
        counter: EventCounter | None = None,
        paced: bool = True,
    ) -> Turn:
        """Resolve the conversation, the cache state and the plan, and pace the turn; raises :class:`ProtocolError`."""
        resolved = self.resolve(
            request, transport=transport, t0=t0, conn_cache=conn_cache, conn_replica=conn_replica, counter=counter
        )
        return self.pace(resolved, events=events, paced=paced)

    def resolve(
        self,
        request: CreateRequest,
        *,
        transport: Literal["http", "websocket"],
        t0: float,
        conn_cache: LaneCache | None = None,
        conn_replica: int = 0,
        counter: EventCounter | None = None,
    ) -> Resolved:
        """The request against the server's state: its faults, parent, place, output, route and stage times.

        Raises :class:`ProtocolError`; a continuation that fails after its parent was found evicts the parent."""
        metadata = request.metadata
        if (
            conn_cache is None
            and not request.tools
            and not request.extra
            and not (metadata and SEED_METADATA_KEY in metadata)
            and self.script is None
            and not self.faults.active
        ):
            return self._resolve_plain(request, transport, t0)
        return self._resolve_general(request, (transport, t0, conn_cache, conn_replica, counter))

    def _resolve_general(self, request: CreateRequest, where: _Where) -> Resolved:
        """:meth:`resolve` of any request; ``where``: the rest of :meth:`resolve`'s arguments, in order."""
        transport, t0, conn_cache, conn_replica, counter = where
        self.metrics.requests += 1
        specs = self.specs_for(request)
        faults = self._draw_faults(request, specs, counter)
        parent, source = self._lookup(request, conn_cache, faults)
        try:
            position = self._position(request, parent)
            self._check_function_calls(request, parent)
            output = self._shape(request, position.turn, specs)
            if self.script is not None:  # a scripted model decides instead (labkit.live.server.script)
                output = self.script.apply(request, position.turn, output, faults)
        except ProtocolError:
            self._evict_parent(conn_cache, request.stream_id, parent)
            raise
        replica, cache = self._route(transport, position, conn_replica, source)
        spec = _spec(position, output)
        resolved = _as_resolved(
            (
                request,
                transport,
                spec,
                cache,
                source,
                parent,
                position.key,
                replica,
                output,
                position.instructions,
                self._plan_times(source, spec, cache),
                faults,
                conn_cache,
                t0,
            )
        )
        if self.watcher is not None:
            self.watcher.resolved(resolved)
        return resolved

    def _resolve_plain(self, request: CreateRequest, transport: Literal["http", "websocket"], t0: float) -> Resolved:
        """:meth:`resolve` of a request without tools, settings or a seed, outside a WebSocket connection's cache, on
        a server without faults or a script (most creates over HTTP): the same turn without the steps such a
        request skips (``tests/test_server_resolve_plain.py`` compares it with :meth:`_resolve_general`)."""
        self.metrics.requests += 1
        if request.previous_response_id is None:
            parent: ResponseRecord | None = None
            source: Source = "none"
        else:
            parent, source = self._lookup(request, None, self._no_faults)
        position = self._position(request, parent)
        self._check_function_calls(request, parent)
        output = self._plain_output(request, position.turn, self.specs)
        replica, cache = self._route(transport, position, 0, source)
        spec = _spec(position, output)
        times = self._plan_times(source, spec, cache)
        resolved = _as_resolved(
            (request, transport, spec, cache, source, parent, position.key, replica, output, position.instructions,
             times, self._no_faults, None, t0)
        )  # fmt: skip
        if self.watcher is not None:
            self.watcher.resolved(resolved)
        return resolved

    def pace(self, resolved: Resolved, *, events: ResponseEvents | None = None, paced: bool = True) -> Turn:
        """A resolved request as a turn to :meth:`run`: its events and their schedule (``paced=False``: every
        delta at once, at the last token's deadline)."""
        request = resolved.request
        events = events or ResponseEvents(request, ids=self.ids, clock=self.clock, stream_id=request.stream_id)
        pacer = self._pacer(
            request, events, resolved.output, resolved.times, resolved.faults, resolved.t0, resolved.spec, paced
        )
        return Turn(resolved, events, pacer)

    # -- an answer due at once ------------------------------------------------------------------------

    def due_at_once(self, resolved: Resolved) -> bool:
        """Whether a non-streaming answer to ``resolved`` is due as soon as it is resolved, unharmed: instant mode
        (every stage takes no time) and no stall, 5xx or dropped connection drawn for it."""
        if not self.instant:
            return False
        plan = resolved.faults.plan
        return plan.drop_at_event is None and not plan.fail and not plan.stall_s

    def answer_at_once(self, resolved: Resolved, now: float) -> bytes:
        """The JSON answer to a request :meth:`due_at_once`: the Response assembled whole and kept as :meth:`run`
        keeps one (the store, the connection's lane, the replica, the metrics and the turn log).

        Builds no :class:`ResponseEvents`, pacer or :class:`Turn`: nothing waits, so nothing can steer, cancel or
        cut it in between (``tests/test_server_json_answer.py`` checks the bytes against the streamed answer's)."""
        request, out = resolved.request, resolved.output
        response_id = self.ids("resp")
        answer, status, call_ids, filled = self._answer_json(resolved, response_id)
        generated = request.generate
        record = self._keep(resolved, response_id, out.item_tokens if generated else 0, call_ids)
        if request.store:
            if filled is None:
                self.bodies.keep(response_id, answer, request.input)
            else:  # kept as its template's format and this answer's values (~10% of its bytes)
                self.bodies.keep_filled(response_id, filled, len(answer), request.input)
        self._count(generated, status, out.visible_tokens if generated else 0, 0, None, None)
        self._log_end(resolved, record, response_id, status if generated else "warmup", now, None, 0, None)
        return answer

    def _answer_json(
        self, resolved: Resolved, response_id: str
    ) -> tuple[bytes, str, tuple[str, ...], tuple[bytes, tuple[bytes | int, ...]] | None]:
        """An answer due at once as JSON, its status, the ids of its completed function calls, and (filled from a
        template) the template's format and the answer's values: filled into the template of its plan and echo
        (:mod:`labkit.live.server.answer_template`) where it has one, else assembled and encoded. Both draw the
        same ids in the same order."""
        request, out = resolved.request, resolved.output
        created_at = int(self.clock())
        input_tokens, cached_tokens = resolved.spec.conversation_tokens, resolved.times.cached_input
        template = self.answers.get(request, out)
        if template is not None:
            values = template.values(
                response_id, created_at, self.ids, request.previous_response_id, input_tokens, cached_tokens
            )
            if values is not None:
                form = template.format
                return form % values, template.status, (), (form, values)
        final = assemble_response(
            request,
            out,
            response_id=response_id,
            created_at=created_at,
            ids=self.ids,
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
        )
        call_ids = _completed_calls(final["output"]) if request.generate and out.function_calls else ()
        return dumps(final), final["status"], call_ids, None

    def _draw_faults(
        self, request: CreateRequest, specs: tuple[TurnSpec, ...], counter: EventCounter | None
    ) -> TurnFaults:
        # Drawn first, in arrival order, whatever happens next: the fault sequence depends on requests only.
        if not self.faults.active:
            if self.script is None:
                return self._no_faults
            # A script may add faults to this turn (Script.apply): it gets its own.
            return self.faults.for_turn(0, counter or EventCounter(), self.metrics)
        turns_in = conversation_split(request.input)[0]
        expected = 8 + specs[min(turns_in, len(specs) - 1)].output_tokens
        return self.faults.for_turn(expected, counter or EventCounter(), self.metrics)

    def _lookup(
        self, request: CreateRequest, conn_cache: LaneCache | None, faults: TurnFaults
    ) -> tuple[ResponseRecord | None, Source]:
        """The parent of a continuation: the connection cache first, then the store."""
        prev = request.previous_response_id
        if prev is None:
            return None, "none"
        m = self.metrics
        if conn_cache is not None:
            faults.before_lookup(conn_cache)
            found = conn_cache.find(prev)
            if found is not None:
                m.cache_hits += 1
                return found[1], "connection"
            m.cache_misses += 1
        parent = self.store.get(prev)
        if parent is not None:
            m.store_hits += 1
            return parent, "store"
        m.previous_response_not_found += 1
        raise ProtocolError(
            "previous_response_not_found",
            f"Previous response with id '{prev[:80]}' not found.",
            "previous_response_id",
        )

    def _position(self, request: CreateRequest, parent: ResponseRecord | None) -> _Position:
        """The request's turn index, context and new tokens, and its conversation's identity."""
        turns_in, context_items, new_items = conversation_split(request.input)
        instructions = estimate_tokens(request.instructions) if request.instructions else 0
        if parent is not None:
            # Instructions are not carried over to a continuation: the parent's are replaced by these.
            context = parent.conversation_tokens - parent.instructions_tokens + instructions + context_items
            turn, key = parent.model_turns + turns_in, parent.conversation_key
            return _as_position((turn, context, new_items, key, instructions))
        key = _conversation_key(request)
        if turns_in == 0:
            return _as_position((0, 0, instructions + context_items + new_items, key, instructions))
        return _as_position((turns_in, instructions + context_items, new_items, key, instructions))

    @staticmethod
    def _check_function_calls(request: CreateRequest, parent: ResponseRecord | None) -> None:
        """Every ``function_call_output`` answers a known call, and every call gets its output.

        The real API answers both with a 400 ``invalid_request_error`` (``param: input``, ``code: null``):
        "No tool call found for function call output with call_id ..." and "No tool output found for
        function call ...". Calls are the parent's (a continuation) and those in the input (a full history).
        """
        owed = list(parent.call_ids) if parent is not None else []
        outputs: list[str] = []
        for item in request.input:
            kind = item.get("type")
            if kind == "function_call":
                owed.append(str(item.get("call_id")))
            elif kind == "function_call_output":
                outputs.append(str(item.get("call_id")))
        if outputs:
            known = set(owed)
            for call_id in outputs:
                if call_id not in known:
                    raise no_tool_call_error(call_id)
        if owed:
            answered = set(outputs)
            for call_id in owed:
                if call_id not in answered:
                    raise no_tool_output_error(call_id)

    def _shape(self, request: CreateRequest, index: int, specs: tuple[TurnSpec, ...]) -> OutputPlan:
        """What this turn outputs: the workload's turn ``index`` (its last beyond the end), as the request allows."""
        extra = request.extra
        if not request.tools and not extra:
            return self._plain_output(request, index, specs)
        w = specs[min(index, len(specs) - 1)]
        functions = [t for t in request.tools if t.get("type") == "function" and t.get("name")]
        if extra.get("tool_choice") == "none":
            functions = []
        # The turn's calls go to the tools in rotation, starting with the turn's index.
        rotated = [functions[(index + i) % len(functions)] for i in range(len(functions))]
        tools = [str(t["name"]) for t in rotated]
        final = index >= self.workload.turns - 1 or not tools
        out = w.output_tokens
        if w.steered and self.workload.steer_at > 0:
            # The workload's steered turn is already cut where its steering arrives; the server decodes the
            # whole output and stops when the client's response.steer actually arrives.
            out = max(out, round(out / self.workload.steer_at))
        calls = 1 if extra.get("parallel_tool_calls") is False else max(1, w.tool_calls)
        reasoning = extra.get("reasoning") if isinstance(extra.get("reasoning"), dict) else None
        include = extra.get("include") or ()
        return plan_output(
            kind="message" if final else "function_call",
            output_tokens=out,
            reasoning_tokens=reasoning_tokens_for(w.reasoning_tokens, reasoning) if request.generate else 0,
            tool_names=tuple(tools),
            tool_parameters=tuple(t.get("parameters") for t in rotated),
            tool_calls=calls,
            summary=bool(reasoning and (reasoning.get("summary") or reasoning.get("generate_summary"))),
            encrypted="reasoning.encrypted_content" in include,
            max_output_tokens=request.max_output_tokens,
            salt=index,
        )

    def _plain_output(self, request: CreateRequest, index: int, specs: tuple[TurnSpec, ...]) -> OutputPlan:
        """:meth:`_shape` of a request without tools or settings: a pure function of the turn, ``generate`` and
        ``max_output_tokens`` for the server's own turns, so kept per (turn, generate, max_output_tokens)."""
        if specs is not self.specs:  # a client's seed: its own turns
            return self._shape_plain(request, index, specs[min(index, len(specs) - 1)])
        key = (index, request.generate, request.max_output_tokens)
        output = self._plain_outputs.get(key)
        if output is None:
            output = self._shape_plain(request, index, specs[min(index, len(specs) - 1)])
            if len(self._plain_outputs) >= _PLAN_CACHE_SIZE:
                self._plain_outputs.clear()
            self._plain_outputs[key] = output
        return output

    def _shape_plain(self, request: CreateRequest, index: int, w: TurnSpec) -> OutputPlan:
        """:meth:`_shape` of a request without tools or settings (most creates): the turn answers with a message."""
        out = w.output_tokens
        if w.steered and self.workload.steer_at > 0:
            out = max(out, round(out / self.workload.steer_at))
        return plan_output(
            kind="message",
            output_tokens=out,
            reasoning_tokens=reasoning_tokens_for(w.reasoning_tokens, None) if request.generate else 0,
            tool_calls=max(1, w.tool_calls),
            max_output_tokens=request.max_output_tokens,
            salt=index,
        )

    def _route(self, transport: str, position: _Position, conn_replica: int, source: Source) -> tuple[int, CacheState]:
        replica = self.replicas.route(position.key) if transport == "http" else conn_replica
        replica_hit = self.replicas.holds(replica, position.key)
        if position.turn > 0:
            if replica_hit:
                self.metrics.replica_hits += 1
            else:
                self.metrics.replica_misses += 1
        return replica, _CACHE_STATES[transport == "websocket", source == "connection", replica_hit]

    def _plan_times(self, source: Source, spec: TurnSpec, cache: CacheState) -> _PlanTimes:
        key = (source, spec, cache)
        times = self._plans.get(key)
        if times is None:
            plan = {s.name: s for s in plan_turn(self.profile_for(source), spec, cache)}
            times = _PlanTimes(
                pre_s=sum(plan[name].duration_s for name in _PRE_REASONING),
                reasoning_s=plan["reasoning"].duration_s,
                post_s=sum(plan[name].duration_s for name in _POST_DECODE),
                cached_input=spec.conversation_tokens - plan["prefill"].tokens,
            )
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = times
        return times

    def _pacer(
        self,
        request: CreateRequest,
        events: ResponseEvents,
        output: OutputPlan,
        times: _PlanTimes,
        faults: TurnFaults,
        t0: float,
        spec: TurnSpec,
        paced: bool,
    ) -> Pacer:
        instant = self.instant
        timing = Timing(
            t0=t0,
            pre_s=(0.0 if instant else times.pre_s) + faults.stall_s(),
            reasoning_s=0.0 if instant else times.reasoning_s,
            post_s=0.0 if instant else times.post_s,
            tps=float("inf") if instant else self.profile.decode_tps,
        )
        return Pacer(
            events,
            output,
            timing,
            generate=request.generate,
            fail=faults.fail(),
            paced=paced,
            per_token=instant,
            input_tokens=spec.conversation_tokens,
            cached_tokens=times.cached_input,
        )

    def specs_for(self, request: CreateRequest) -> tuple[TurnSpec, ...]:
        """The workload's turns for this conversation: the server's seed, or the client's ``labkit_seed``.

        A client running many rollouts with different seeds (``run_rollouts``) names its seed in
        ``metadata`` so the outputs vary with it as the DES's do; other clients get the server's seed.
        """
        metadata = request.metadata
        raw = metadata.get(SEED_METADATA_KEY) if metadata else None
        if raw is None:
            return self.specs
        try:
            seed = int(raw)
        except (TypeError, ValueError):
            raise ProtocolError(
                "invalid_value",
                f"metadata.{SEED_METADATA_KEY}: must be an integer, got {str(raw)[:40]!r}",
                f"metadata.{SEED_METADATA_KEY}",
            ) from None
        return self.workload.turn_specs(seed)

    def _evict_parent(self, conn_cache: LaneCache | None, lane: str | None, parent: ResponseRecord | None) -> None:
        # Only the lane's own latest response: an errored cross-lane fork keeps the source lane's parent.
        if conn_cache is not None and parent is not None and conn_cache.evict(lane, parent.id):
            self.metrics.parents_evicted += 1

    def evict_failed_continuation(self, conn_cache: LaneCache, lane: str | None, response_id: str | None) -> None:
        """A continuation rejected before it was resolved (a malformed message) evicts its parent too."""
        if response_id is not None and conn_cache.evict(lane, response_id):
            self.metrics.parents_evicted += 1

    # -- running a turn -------------------------------------------------------------------------------

    async def run(self, turn: Turn, emit: Emit | None, loop: asyncio.AbstractEventLoop | None = None) -> ResponseEvents:
        """Wait out the plan and emit the turn's events; returns the finished :class:`ResponseEvents`.

        Raises :class:`TurnFailed` (injected 5xx, after ``response.failed`` went out on a stream) or
        :class:`DropConnection` (injected cut); either way a continuation's parent is evicted from its lane.
        """
        # The loop once per turn, or the caller's: each lookup is a getpid() system call on Python 3.11.
        if loop is None:
            loop = asyncio.get_running_loop()
        self.active += 1
        ev = turn.events
        self.inflight[ev.id] = turn
        try:
            if emit is None:
                if loop.time() < turn.pacer.end:
                    await self._answer(turn, loop)
                else:  # due already (instant mode): no coroutine to wait in
                    self._assemble(turn)
            else:
                await self._pace(turn, emit, loop)
        except DropConnection:
            self._evict_parent(turn.resolved.conn_cache, turn.resolved.request.stream_id, turn.resolved.parent)
            self._log(turn, "dropped", loop.time())
            raise
        finally:
            self.active -= 1
            self.inflight.pop(ev.id, None)
        if ev.status == "failed":
            self.metrics.responses_failed += 1
            self._evict_parent(turn.resolved.conn_cache, turn.resolved.request.stream_id, turn.resolved.parent)
            self._log(turn, "failed", loop.time())
            raise TurnFailed(ev)
        self._finish(turn, loop.time())
        return ev

    def _spin(self) -> float:
        return self.spin_s if self.active <= self.spin_max_active else 0.0

    async def _pace(self, turn: Turn, emit: Emit | None, loop: asyncio.AbstractEventLoop) -> None:
        pacer, faults, m = turn.pacer, turn.resolved.faults, self.metrics
        while pacer.deadline is not None:
            now = loop.time()
            if now < pacer.deadline and pacer.stop_reason is None:
                await self._wait(turn, pacer.deadline, self._spin() if pacer.spin else 0.0, loop)
                now = loop.time()
            batch = pacer.advance(now)
            if not batch:
                continue
            allowed = faults.admit(len(batch), pacer.done, emit is not None)
            if allowed and emit is not None:
                await emit(batch if allowed == len(batch) else batch[:allowed])
                m.events_sent += allowed
                turn.sent += allowed
            if allowed < len(batch):
                raise DropConnection()

    async def _answer(self, turn: Turn, loop: asyncio.AbstractEventLoop) -> None:
        """A non-streaming answer: wait until the plan's last stage ends, then assemble the Response whole.

        No stream event is built (a JSON answer never sends one). A drawn drop point cuts the connection
        instead of the answer: a JSON answer is one message on the wire (:meth:`TurnFaults.admit`).
        """
        end = turn.pacer.end
        if loop.time() < end:
            await self._wait(turn, end, self._spin(), loop)
        self._assemble(turn)

    def _assemble(self, turn: Turn) -> None:
        """The answer, whole, once it is due; a drawn drop point cuts the connection instead."""
        if turn.resolved.faults.admit(1, True, False) < 1:
            raise DropConnection()
        turn.pacer.assemble()

    async def _wait(self, turn: Turn, deadline: float, spin_s: float, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until ``deadline`` on the loop clock, or until :meth:`Turn.wake` (a steer) ends it early.

        The selector rounds its timeout up to whole milliseconds, so a plain sleep wakes up to ~1 ms late.
        For the few deadlines that bound a turn's TTFT and end, sleep until ``spin_s`` before the deadline,
        then yield to the loop (``sleep(0)``, other connections keep running) until it has passed: a
        fraction of a millisecond of CPU per deadline, for sub-millisecond accuracy.
        """
        delay = deadline - loop.time()
        if delay > spin_s:
            # What asyncio.sleep does, with the future kept so that a steer can resolve it early.
            fut: asyncio.Future[None] = loop.create_future()
            handle = loop.call_later(delay - spin_s, _wake, fut)
            turn._waker = fut
            try:
                await fut
            finally:
                handle.cancel()
                turn._waker = None
        while loop.time() < deadline and turn.pacer.stop_reason is None:
            await asyncio.sleep(0)

    def _finish(self, turn: Turn, now: float) -> None:
        ev, pacer, resolved = turn.events, turn.pacer, turn.resolved
        request, out = resolved.request, resolved.output
        generated = request.generate
        steered = ev.status == "incomplete" and (ev.incomplete_details or {}).get("reason") == "steered"
        # A steered response owes no tool output: its successor continues with the steering input.
        call_ids = () if steered or not out.function_calls else _completed_calls(ev.output)
        # Output decoded whole is the plan's: its tokens were counted once, with the plan.
        whole = generated and not steered and pacer.decoded == out.visible_tokens
        tokens = out.item_tokens if whole else sum(item_tokens(o) for o in ev.output)
        turn.record = self._keep(resolved, ev.id, tokens, call_ids)
        if request.store:
            # The Response the terminal event or the JSON answer already carries: built and encoded once.
            turn.answer = self._store(request, ev.final or ev.response())
        self._count(generated, ev.status, pacer.decoded, pacer.frames, pacer.t_last, pacer.planned_last)
        self._log(turn, ev.status if generated else "warmup", now)

    def _keep(
        self, placed: Resolved, response_id: str, output_tokens: int, call_ids: tuple[str, ...]
    ) -> ResponseRecord:
        """The response's record, kept where a continuation looks for it: the connection's lane, the store
        (``store: true``) and the replica that now holds the conversation's rendered tokens."""
        request, spec = placed.request, placed.spec
        record = record_from_fields(
            (
                response_id,
                spec.index + (1 if request.generate else 0),
                spec.conversation_tokens + output_tokens,
                placed.instructions_tokens,
                placed.conversation_key,
                call_ids,
            )
        )
        if placed.conn_cache is not None:
            placed.conn_cache.put(request.stream_id, record)
        if request.store:
            self.store.put(record)
        self.replicas.remember(placed.replica, placed.conversation_key)
        return record

    def _store(self, request: CreateRequest, final: dict[str, Any]) -> bytes:
        """A stored response's body, kept for reading back; returns its JSON (what a JSON answer sends)."""
        encoded = dumps(final)
        self.bodies.put(final, request.input, encoded)
        return encoded

    def _count(
        self,
        generated: bool,
        status: str,
        decoded: int,
        frames: int,
        t_last: float | None,
        planned_last: float | None,
    ) -> None:
        m = self.metrics
        if generated:
            m.responses += 1
            m.output_tokens += decoded
            m.delta_frames += frames
            m.coalesced_tokens += max(0, decoded - frames)
            if t_last is not None and planned_last is not None:
                m.pacing_lag_max_s = max(m.pacing_lag_max_s, t_last - planned_last)
        else:
            m.warmups += 1
        if status == "incomplete":
            m.responses_incomplete += 1

    def timing_row(self, log: TurnLog) -> dict[str, Any]:
        """One turn's planned and achieved server-side times (see :meth:`SimServer.timing`)."""
        plan = plan_turn(self.profile_for(log.source), log.spec, log.cache)  # type: ignore[arg-type]
        d = {s.name: (0.0 if self.instant else s.duration_s) for s in plan}
        first = sum(d[name] for name in _PRE_DECODE)
        # A warm-up ends after the pre-inference stages.
        done = first if log.status == "warmup" else first + d["decode"] + sum(d[name] for name in _POST_DECODE)
        return {
            "response_id": log.response_id,
            "transport": log.transport,
            "source": log.source,
            "status": log.status,
            "turn": log.spec.index,
            "output_tokens": log.spec.output_tokens,
            "delta_frames": log.delta_frames,
            "planned_first_s": first,
            "actual_first_s": None if log.t_first is None else log.t_first - log.t0,
            "planned_done_s": done,
            "actual_done_s": log.t_done - log.t0,
            # Achieved vs configured pacing: tokens after the first over the time from first to last delta.
            "configured_tps": self.profile.decode_tps,
            "achieved_tps": (
                (log.spec.output_tokens - 1) / (log.t_last - log.t_first)
                if log.t_last is not None and log.t_first is not None and log.t_last > log.t_first
                else None
            ),
        }

    def _log(self, turn: Turn, status: str, now: float) -> None:
        pacer = turn.pacer
        self._log_end(
            turn.resolved, turn.record, turn.events.id, status, now, pacer.t_first, pacer.frames, pacer.t_last
        )

    def _log_end(
        self,
        placed: Resolved,
        record: ResponseRecord | None,
        response_id: str,
        status: str,
        now: float,
        t_first: float | None,
        frames: int,
        t_last: float | None,
    ) -> None:
        """The turn's line in :attr:`turn_log`, and its end told to the :attr:`watcher` (``record``: ``None`` for
        a turn that failed or was cut)."""
        spec = placed.spec
        # One flat tuple of plain values (the spec's and the cache state's fields spread in it): untracked by the
        # collector at the first collection that sees it (labkit.live.server.state.Store says why flat).
        self._turn_log.append(
            (
                response_id,
                placed.transport,
                placed.request.stream_id,
                placed.source,
                status,
                *spec,
                *placed.cache,
                placed.t0,
                t_first,
                now,
                frames,
                t_last,
            )
        )
        if self.watcher is not None:
            self.watcher.ended(placed.conversation_key, spec.index, record)


def _completed_calls(output: list[dict[str, Any]]) -> tuple[str, ...]:
    """``call_id`` of each completed function call in a Response's ``output``: what a continuation owes outputs for."""
    return tuple(
        str(o["call_id"]) for o in output if o.get("type") == "function_call" and o.get("status") == "completed"
    )


def _spec(position: _Position, output: OutputPlan) -> TurnSpec:
    """The turn as the latency model sees it: what the server will actually output (sizes, kind, calls)."""
    return _as_spec(
        (
            position.turn,
            position.context,
            position.new,
            max(1, output.visible_tokens),
            0.0,
            output.items[0].kind == "message" if output.items else True,
            output.reasoning_tokens,
            output.function_calls,
            False,
        )
    )


#: Built once: ``json.dumps`` with options builds an encoder per call, most of what a small item costs.
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _conversation_key(request: CreateRequest) -> str:
    """A stateless conversation's identity: a digest of its first input item (its stable prefix).

    The key only has to be the same for the same item (it routes a conversation to its replica), so the
    item is encoded with orjson (sorted keys, ~15x faster than the json module); the json module encodes
    what orjson refuses (an integer beyond 64 bits). An agent's stateless requests resend the same first item
    every turn, so the digest of each encoding is kept (:data:`_KEYS`): a lookup of the encoding's bytes costs a
    third of digesting them, and the records of one conversation share one key."""
    first = request.input[0] if request.input else {}
    try:
        encoded = orjson.dumps(first, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        encoded = _KEY_ENCODER.encode(first).encode()
    key = _KEYS.get(encoded)
    if key is None:
        # BLAKE2 is CPython's own code; OpenSSL's sha1 costs ~6 us a call in a busy server (3% of a request).
        key = "conv_" + hashlib.blake2b(encoded, digest_size=12).hexdigest()
        _KEYS.put(encoded, key)
    return key


class _KeyCache:
    """Conversation keys by their first item's encoding (a pure function of it, so one cache serves every engine),
    bounded by the encodings' bytes: emptied when they would pass ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._keys: dict[bytes, str] = {}
        self._bytes = 0
        self.get = self._keys.get

    def put(self, encoded: bytes, key: str) -> None:
        if self._bytes + len(encoded) > self.max_bytes:
            self._keys.clear()
            self._bytes = 0
            if len(encoded) > self.max_bytes:
                return
        self._keys[kept(encoded)] = key
        self._bytes += len(encoded)


_KEYS = _KeyCache(max_bytes=4 * 1024 * 1024)
