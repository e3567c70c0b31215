"""The simulated model behind the server: from a request to a timed stream of events.

Transport-free: the WebSocket and HTTP handlers in :mod:`labkit.live.server.app` call :meth:`Engine.prepare`
(resolve the conversation, pick the cache state, plan the turn) and then :meth:`Engine.run` with an
``emit`` coroutine that frames and sends each event (or ``None`` for a non-streaming HTTP answer).

Timing. The turn's plan comes from :func:`labkit.model.plan_turn`. The server emulates only the stages
in ``SERVER_STAGES`` (the network stages are real on the socket, the tool runs at the client). Every
wait is a sleep until an absolute deadline on the loop clock, so the small lateness of one wake-up does
not add up over a stream:

- ``response.created`` / ``in_progress`` go out at once (time ``t0``, when the request arrived);
- the first output delta at ``t_first = t0 + validate + load_state + ... + prefill``;
- token ``k`` is due at ``t_first + k / decode_tps``; at every wake-up, all tokens whose deadline has
  passed go out as one delta frame (coalescing, counted), since asyncio cannot sleep much under ~1 ms;
- the post stages (``safety_out``, ``persist``, ``postprocess``) end at their cumulative deadline, then
  ``response.completed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from labkit.live.server.faults import DropConnection, FaultInjector, FaultPlan, Faults
from labkit.live.server.state import Replicas, ResponseRecord, Store
from labkit.model import CacheState, Profile, Stage, TurnSpec, Workload, plan_turn
from labkit.wire.protocol import (
    SEED_METADATA_KEY,
    CreateRequest,
    ProtocolError,
    ResponseEvents,
    conversation_split,
    item_tokens,
    output_text,
    split_tokens,
)
from labkit.wire.tokens import estimate_tokens

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Source = Literal["none", "connection", "store"]

_PRE_DECODE = ("validate", "load_state", "render", "config", "safety_in", "hops", "queue", "prefill", "reasoning")
_POST_DECODE = ("safety_out", "persist", "postprocess")


class TurnFailed(Exception):
    """A turn that fails with a 5xx (fault injection); ``events`` can still build ``response.failed``."""

    def __init__(self, events: ResponseEvents) -> None:
        super().__init__("server_error")
        self.events = events


class CacheBudget:
    """A server-wide byte budget for every connection's cache: least recently used entries go first.

    Sizes are the modelled bytes of the cached conversation (tokens x ``bytes_per_token``): what a real
    server's connection cache would hold. An evicted connection's next continuation gets
    ``previous_response_not_found`` and its client falls back to the full context. Evictions are counted
    in the engine's ``cache_evictions`` metric.
    """

    def __init__(self, max_bytes: int | None, bytes_per_token: float, metrics: dict[str, float]) -> None:
        if max_bytes is not None and (not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 0):
            raise ValueError(f"max_cached_bytes: must be an integer >= 0 or None, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.bytes_per_token = bytes_per_token
        self.metrics = metrics
        self.total = 0
        # (id(cache), lane) -> (cache, lane, bytes), oldest first.
        self._entries: OrderedDict[tuple[int, str | None], tuple[LaneCache, str | None, int]] = OrderedDict()

    def size(self, record: ResponseRecord) -> int:
        return int(record.conversation_tokens * self.bytes_per_token)

    def add(self, cache: LaneCache, lane: str | None, record: ResponseRecord) -> None:
        self.discard(cache, lane)
        n = self.size(record)
        self._entries[(id(cache), lane)] = (cache, lane, n)
        self.total += n
        if self.max_bytes is None:
            return
        while self.total > self.max_bytes and self._entries:
            _, (victim, victim_lane, size) = self._entries.popitem(last=False)
            victim.lanes.pop(victim_lane, None)
            self.total -= size
            self.metrics["cache_evictions"] += 1

    def touch(self, cache: LaneCache, lane: str | None) -> None:
        key = (id(cache), lane)
        if key in self._entries:
            self._entries.move_to_end(key)

    def discard(self, cache: LaneCache, lane: str | None) -> None:
        entry = self._entries.pop((id(cache), lane), None)
        if entry is not None:
            self.total -= entry[2]


class LaneCache:
    """WebSocket mode's connection-scoped cache: the most recent completed response of each lane.

    With a :class:`CacheBudget`, every connection's cache shares one server-wide byte budget.
    """

    def __init__(self, budget: CacheBudget | None = None) -> None:
        self.lanes: dict[str | None, ResponseRecord] = {}
        self.budget = budget

    def put(self, lane: str | None, record: ResponseRecord) -> None:
        self.lanes[lane] = record
        if self.budget is not None:
            self.budget.add(self, lane, record)

    def find(self, response_id: str) -> tuple[str | None, ResponseRecord] | None:
        # A continuation may name the latest response of any lane of this socket (a fork).
        for lane, record in self.lanes.items():
            if record.id == response_id:
                if self.budget is not None:
                    self.budget.touch(self, lane)
                return lane, record
        return None

    def evict(self, lane: str | None, response_id: str) -> bool:
        record = self.lanes.get(lane)
        if record is not None and record.id == response_id:
            del self.lanes[lane]
            if self.budget is not None:
                self.budget.discard(self, lane)
            return True
        return False

    def clear(self) -> None:
        if self.budget is not None:
            for lane in self.lanes:
                self.budget.discard(self, lane)
        self.lanes.clear()

    def cached_tokens(self) -> int:
        return sum(r.conversation_tokens for r in self.lanes.values())


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


@dataclass(slots=True)
class Turn:
    """One request, resolved and planned, ready to run."""

    request: CreateRequest
    transport: Literal["http", "websocket"]
    lane: str | None
    spec: TurnSpec
    cache: CacheState
    plan: tuple[Stage, ...]
    source: Source
    parent: ResponseRecord | None
    conversation_key: str
    replica: int
    kind: Literal["message", "function_call"]
    tool_name: str | None
    output_tokens: int
    instructions_tokens: int
    events: ResponseEvents
    faults: FaultPlan
    t0: float
    cached_input_tokens: int = 0
    conn_cache: LaneCache | None = None
    record: ResponseRecord | None = field(default=None)
    t_first: float | None = None
    t_last: float | None = None
    delta_frames: int = 0


def _new_metrics() -> dict[str, float]:
    return {
        "connections": 0,
        "connections_open": 0,
        "http_requests": 0,
        "requests": 0,
        "responses": 0,
        "warmups": 0,
        "responses_failed": 0,
        "errors": 0,
        "cache_hits": 0,
        "cache_misses": 0,
        "store_hits": 0,
        "previous_response_not_found": 0,
        "replica_hits": 0,
        "replica_misses": 0,
        "events_sent": 0,
        "delta_frames": 0,
        "output_tokens": 0,
        "coalesced_tokens": 0,
        "pacing_lag_max_s": 0.0,
        "faults_dropped": 0,
        "faults_stalled": 0,
        "faults_evicted": 0,
        "faults_failed": 0,
        "cache_evictions": 0,
    }


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
        self.faults = FaultInjector(faults or Faults())
        self.metrics = _new_metrics()
        #: Server-wide budget of the connection caches (``None``: unlimited); see :class:`CacheBudget`.
        self.cache_budget = CacheBudget(max_cached_bytes, profile.bytes_per_token, self.metrics)
        #: The most recent turns, newest last: what the server decided and when it sent what (loop clock).
        self.turn_log: deque[TurnLog] = deque(maxlen=turn_log_size)
        # plan_turn reads the chaining mode from the profile; the server decides it per request (a hit in
        # the connection cache, a load from the store, or the full context), so keep one variant of each.
        self._variants: dict[Source, Profile] = {}

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
    ) -> Turn:
        """Resolve the conversation, the cache state and the plan; raises :class:`ProtocolError`."""
        m = self.metrics
        m["requests"] += 1
        lane = request.stream_id
        instructions_tokens = estimate_tokens(request.instructions or "")
        turns_in, context_items, new_items = conversation_split(request.input)
        specs = self.specs_for(request)
        faults = self.faults.draw(expected_events=8 + specs[min(turns_in, len(specs) - 1)].output_tokens)

        parent: ResponseRecord | None = None
        source: Source = "none"
        prev = request.previous_response_id
        if prev is not None:
            if conn_cache is not None:
                if faults.evict:
                    m["faults_evicted"] += 1
                    conn_cache.clear()
                found = conn_cache.find(prev)
                if found is not None:
                    parent, source = found[1], "connection"
                    m["cache_hits"] += 1
                else:
                    m["cache_misses"] += 1
            if parent is None:
                parent = self.store.get(prev)
                if parent is not None:
                    source = "store"
                    m["store_hits"] += 1
            if parent is None:
                m["previous_response_not_found"] += 1
                raise ProtocolError(
                    "previous_response_not_found",
                    f"previous_response_id: Previous response with id '{prev[:80]}' not found.",
                    "previous_response_id",
                )
            index = parent.model_turns + turns_in
            context = parent.conversation_tokens - parent.instructions_tokens + instructions_tokens + context_items
            new = new_items
            key = parent.conversation_key
        else:
            index = turns_in
            if index == 0:
                context, new = 0, instructions_tokens + context_items + new_items
            else:
                context, new = instructions_tokens + context_items, new_items
            key = _conversation_key(request)

        function_tools = [t for t in request.tools if t.get("type") == "function" and t.get("name")]
        w_index = min(index, len(specs) - 1)
        final = index >= self.workload.turns - 1 or not function_tools
        kind: Literal["message", "function_call"] = "message" if final else "function_call"
        tool_name = None if final else str(function_tools[index % len(function_tools)]["name"])
        # The workload's last turn carries the final answer's length; beyond it the chain keeps answering.
        out = specs[w_index].output_tokens
        if request.max_output_tokens is not None:
            out = min(out, request.max_output_tokens)
        out = max(1, out)

        replica = self.replicas.route(key) if transport == "http" else conn_replica
        replica_hit = self.replicas.holds(replica, key)
        if index > 0:
            m["replica_hits" if replica_hit else "replica_misses"] += 1
        spec = TurnSpec(index, context, new, out, 0.0, final)
        cache = CacheState(
            connection_open=transport == "websocket",
            connection_cache_hit=source == "connection",
            replica_hit=replica_hit,
        )
        plan = plan_turn(self.profile_for(source), spec, cache)
        prefill = next(s for s in plan if s.name == "prefill")
        events = ResponseEvents(request, kind=kind, tool_name=tool_name, stream_id=lane)
        return Turn(
            request=request,
            transport=transport,
            lane=lane,
            spec=spec,
            cache=cache,
            plan=plan,
            source=source,
            parent=parent,
            conversation_key=key,
            replica=replica,
            kind=kind,
            tool_name=tool_name,
            output_tokens=out,
            instructions_tokens=instructions_tokens,
            events=events,
            faults=faults,
            t0=t0,
            cached_input_tokens=spec.conversation_tokens - prefill.tokens,
            conn_cache=conn_cache,
        )

    def specs_for(self, request: CreateRequest) -> tuple[TurnSpec, ...]:
        """The workload's turns for this conversation: the server's seed, or the client's ``labkit_seed``.

        A client running many rollouts with different seeds (``run_rollouts``) names its seed in
        ``metadata`` so the outputs vary with it as the DES's do; other clients get the server's seed.
        """
        raw = (request.metadata or {}).get(SEED_METADATA_KEY)
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

    def evict_parent(self, turn: Turn) -> None:
        """A failed continuation evicts its parent from this lane's connection cache."""
        if turn.conn_cache is not None and turn.parent is not None:
            turn.conn_cache.evict(turn.lane, turn.parent.id)

    # -- running a turn -------------------------------------------------------------------------------

    async def run(self, turn: Turn, emit: Emit | None) -> ResponseEvents:
        """Wait out the plan and emit the turn's events; returns the finished :class:`ResponseEvents`.

        Raises :class:`TurnFailed` (injected 5xx) or :class:`DropConnection` (injected cut); either way
        a continuation's parent is evicted from the lane's connection cache.
        """
        self.active += 1
        try:
            return await self._run(turn, emit)
        except (TurnFailed, DropConnection) as exc:
            self.evict_parent(turn)
            self._log(turn, "failed" if isinstance(exc, TurnFailed) else "dropped")
            raise
        finally:
            self.active -= 1

    def _spin(self) -> float:
        return self.spin_s if self.active <= self.spin_max_active else 0.0

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

    def _log(self, turn: Turn, status: str) -> None:
        self.turn_log.append(
            TurnLog(
                turn.events.id,
                turn.transport,
                turn.lane,
                turn.source,
                status,
                turn.spec,
                turn.cache,
                turn.t0,
                turn.t_first,
                asyncio.get_running_loop().time(),
                turn.delta_frames,
                turn.t_last,
            )
        )

    async def _run(self, turn: Turn, emit: Emit | None) -> ResponseEvents:
        loop = asyncio.get_running_loop()
        ev = turn.events
        req = turn.request
        m = self.metrics
        faults = turn.faults
        instant = self.instant
        durations = {s.name: (0.0 if instant else s.duration_s) for s in turn.plan}
        sent = 0

        async def send(event: dict[str, Any], last: bool = False) -> None:
            nonlocal sent
            # A drop point beyond the response's last event (it has fewer than drawn) cuts before it.
            if faults.drop_at_event is not None and (sent >= faults.drop_at_event or last):
                m["faults_dropped"] += 1
                raise DropConnection()
            sent += 1
            if emit is not None:
                await emit(event)

        for event in ev.start():
            await send(event)

        t_first = turn.t0 + sum(durations[name] for name in _PRE_DECODE)
        if faults.stall_s:
            m["faults_stalled"] += 1
            t_first += faults.stall_s
        await _sleep_until(loop, t_first, self._spin())
        if faults.fail:
            m["faults_failed"] += 1
            m["responses_failed"] += 1
            raise TurnFailed(ev)

        if not req.generate:
            # A warm-up stops after the pre-inference work: the state is ready, nothing is sampled.
            ev.set_usage(turn.spec.conversation_tokens, 0, turn.cached_input_tokens)
            await send(ev.completed(), last=True)
            self._finish(turn, output_item_tokens=0, generated=False)
            self._log(turn, "warmup")
            return ev

        n = turn.output_tokens
        tokens = split_tokens(output_text(turn.kind, n, salt=turn.spec.index))
        n = len(tokens)
        for event in ev.open_item():
            await send(event)
        turn.t_first = loop.time()
        decode_end = t_first
        if emit is None:
            # Non-streaming HTTP: nothing to pace, the answer goes out at the end.
            ev.text = "".join(tokens)
            decode_end = t_first + (0.0 if instant else (n - 1) / self.profile.decode_tps)
        elif instant:
            for tok in tokens:
                await send(ev.delta(tok))
            m["delta_frames"] += n
            turn.delta_frames = n
        else:
            tps = self.profile.decode_tps
            await send(ev.delta(tokens[0]))
            frames = 1
            k = 1
            while k < n:
                deadline = t_first + k / tps
                now = loop.time()
                if now < deadline:
                    await asyncio.sleep(deadline - now)
                    now = loop.time()
                # Every token whose deadline has passed goes out now, in one frame.
                last = min(n - 1, max(k, math.floor((now - t_first) * tps + 1e-9)))
                await send(ev.delta("".join(tokens[k : last + 1])))
                frames += 1
                k = last + 1
            turn.t_last = loop.time()
            m["delta_frames"] += frames
            m["coalesced_tokens"] += n - frames
            turn.delta_frames = frames
            decode_end = t_first + (n - 1) / tps
            lag = loop.time() - decode_end
            if lag > m["pacing_lag_max_s"]:
                m["pacing_lag_max_s"] = lag
        m["output_tokens"] += n
        for event in ev.close_item():
            await send(event)
        await _sleep_until(loop, decode_end + sum(durations[name] for name in _POST_DECODE), self._spin())
        ev.set_usage(turn.spec.conversation_tokens, turn.output_tokens, turn.cached_input_tokens)
        await send(ev.completed(), last=True)
        self._finish(turn, output_item_tokens=item_tokens(ev.output[0]), generated=True)
        self._log(turn, "completed")
        return ev

    def _finish(self, turn: Turn, *, output_item_tokens: int, generated: bool) -> None:
        ev = turn.events
        record = ResponseRecord(
            id=ev.id,
            model_turns=turn.spec.index + (1 if generated else 0),
            conversation_tokens=turn.spec.conversation_tokens + output_item_tokens,
            instructions_tokens=turn.instructions_tokens,
            conversation_key=turn.conversation_key,
            call_id=ev.call_id,
        )
        turn.record = record
        if turn.conn_cache is not None:
            turn.conn_cache.put(turn.lane, record)
        if turn.request.store:
            self.store.put(record)
        self.replicas.remember(turn.replica, turn.conversation_key)
        self.metrics["responses" if generated else "warmups"] += 1


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float, spin_s: float = 0.0) -> None:
    """Wait until ``deadline`` on the loop clock.

    The selector rounds its timeout up to whole milliseconds, so a plain sleep wakes up to ~1 ms late.
    For the few deadlines that bound a turn's TTFT and end, sleep until ``spin_s`` before the deadline,
    then yield to the loop (``sleep(0)``, other connections keep running) until it has passed: a
    fraction of a millisecond of CPU per deadline, for sub-millisecond accuracy.
    """
    delay = deadline - loop.time()
    if delay > spin_s:
        await asyncio.sleep(delay - spin_s)
    while loop.time() < deadline:
        await asyncio.sleep(0)


def _conversation_key(request: CreateRequest) -> str:
    """A stateless conversation's identity: a digest of its first input item (its stable prefix)."""
    first = request.input[0] if request.input else {}
    text = json.dumps(first, sort_keys=True, separators=(",", ":"), default=str)
    return "conv_" + hashlib.sha1(text.encode()).hexdigest()[:24]
