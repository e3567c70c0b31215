"""The SimPy discrete-event model of agent rollouts: events only where rollouts share something.

Each agent is a SimPy process that runs rollouts turn by turn: it asks :func:`labkit.model.plan_turn` for the
stages of its request (with the cache state its connection, replica and store give it). A request's stages
fall in four phases: the network (``connect``, ``upload``), then the API work before inference (an API
worker of its replica held), inference (``queue`` .. ``decode``, an inference slot held), the API work after
it (a worker again); then the client runs its tool.

**Events only where something is shared.** An agent carries its own clock and lays its stages out
arithmetically; it meets SimPy's clock (one ``timeout`` to catch up) only where it touches something other
agents touch too: a pool of API workers or inference slots (:class:`Pool`), or a replica's connection-cache
memory under a byte budget (:class:`~labkit.model.cache.CachePolicy`), and where a fault frees memory. With
no finite pool and no budget, rollouts never interact, so a run schedules one event per agent, whatever its
length; with pools, four per turn (arrive, hand over to inference, back to the API, release), a wait adding
none (the request resumes at its next boundary, see :class:`Handover`).
Spans stay per stage: a turn nothing disturbed (its tile's plan, unscaled, no pool in the way) is recorded
as one record of seven numbers (rollout, turn, attempt, its plan's row, start, end, tool seconds); any other
request as a *segment* (its plan, durations and phase starts); both are expanded into one row per stage with
numpy at the end. ``record="stream"`` keeps no spans at all, only
the aggregates of :mod:`labkit.sim.streaming`.

Randomness uses common random numbers: every (seed, rollout) gets its own stream, drawn in a fixed layout
(per turn: one multiplier per stage, then the drop, eviction and routing draws), so two transports compared
with the same seed see the same tool times, token counts, jitter and faults. Draws nothing uses (no jitter,
no faults, sticky routing) are not made.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict, deque
from collections.abc import Generator
from dataclasses import asdict, dataclass
from operator import itemgetter
from typing import Any, Literal, NamedTuple, TypeAlias

import numpy as np
import pandas as pd
import simpy
from simpy.events import NORMAL

from labkit.model import STAGES, CacheState, Profile, TurnSpec, plan_turn
from labkit.model.cache import CachePolicy, entry_bytes, turn_entry_tokens
from labkit.model.closedform import cache_state
from labkit.model.plan import TurnPlan, plan_rollout, plan_rollout_stages
from labkit.model.spans import SPAN_COLUMNS, spans_frame
from labkit.sim.streaming import ByteSeries, FleetMetrics, LogHistogram
from labkit.util.gctools import paused_gc

#: The plan's stages (every stage but the client's tool), in plan order.
PLAN_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s != "tool")
_N_STAGES = len(PLAN_STAGES)
_STAGE_INDEX = {name: i for i, name in enumerate(PLAN_STAGES)}
# The plan column where each phase starts: network [0, _API_BEFORE_COL), API before inference
# [_API_BEFORE_COL, _INFERENCE_COL), inference [_INFERENCE_COL, _API_AFTER_COL), API after [_API_AFTER_COL, end).
_API_BEFORE_COL = _STAGE_INDEX["validate"]
_INFERENCE_COL = _STAGE_INDEX["queue"]
_API_AFTER_COL = _STAGE_INDEX["safety_out"]
_DECODE_COL = _STAGE_INDEX["decode"]
assert _STAGE_INDEX["upload"] < _API_BEFORE_COL, "plan stages out of the phase order"
assert _INFERENCE_COL < _STAGE_INDEX["prefill"] < _DECODE_COL < _API_AFTER_COL, "plan stages out of the phase order"
_PHASE_OF_COL = np.searchsorted([_API_BEFORE_COL, _INFERENCE_COL, _API_AFTER_COL], np.arange(_N_STAGES), side="right")
# Zero-length stages are left out of the spans, except prefill and decode (TTFT is read from decode's start).
_ALWAYS = np.zeros(_N_STAGES, dtype=bool)
_ALWAYS[[_STAGE_INDEX["prefill"], _DECODE_COL]] = True
# A request the server refused (previous_response_not_found) got as far as validation.
_CUT_EVICT = _STAGE_INDEX["validate"] + 1
# Column layout of the per-turn random draws (common random numbers across compared transports).
_COL_DROP = _N_STAGES
_COL_DROP_AT = _N_STAGES + 1
_COL_EVICT = _N_STAGES + 2
_COL_REPLICA = _N_STAGES + 3
_N_DRAWS = _N_STAGES + 4
#: Multipliers are clamped so one draw never stretches or shrinks a stage absurdly (as llm-d-inference-sim).
JITTER_CLAMP = (0.3, 3.0)
# Row order within one attempt of a turn: stages by plan position, each wait just before its phase, tool last.
_ORDER_IN_ATTEMPT = np.arange(_N_STAGES) + _PHASE_OF_COL
_ORDER_API_WAIT_BEFORE = _API_BEFORE_COL
_ORDER_INFERENCE_WAIT = _INFERENCE_COL + 1
_ORDER_API_WAIT_AFTER = _API_AFTER_COL + 2
_ORDER_TOOL = _N_STAGES + 3
# Stage ids of the span rows: the plan's columns, then the tool and the API queue; the inference wait is the
# plan's own ``queue`` stage.
_STAGE_NAMES = np.array([*PLAN_STAGES, "tool", "api_queue", "queue"], dtype=object)
_STAGE_COLS = np.arange(_N_STAGES)
_ROW_ORDER = np.array([*_ORDER_IN_ATTEMPT, _ORDER_TOOL, _ORDER_API_WAIT_BEFORE, _ORDER_INFERENCE_WAIT])
_TOOL_ID, _API_WAIT_ID, _INFERENCE_WAIT_ID = _N_STAGES, _N_STAGES + 1, _STAGE_INDEX["queue"]
_TOKENS, _BYTES, _HIT = itemgetter(2), itemgetter(3), itemgetter(4)
#: Rollouts whose plans are computed in one :func:`~labkit.model.plan.plan_rollout` call (numpy's per-call cost
#: is paid once per tile instead of once per turn).
PLAN_TILE = 64
#: A request's plan as the recorder takes it: the row of its tile's plans (the recorder holds the tile), or a
#: plan of its own.
_PlanRef: TypeAlias = int | TurnPlan
# What became of a turn's first request.
_SERVED, _EVICTED, _DROPPED = 0, 1, 2
# After previous_response_not_found the client re-sends the full history on the socket it has open.
_AFTER_EVICTION = CacheState(connection_open=True, connection_cache_hit=False, replica_hit=False)


@dataclass(frozen=True)
class Faults:
    """Per-turn fault probabilities, drawn from the rollout's own random stream."""

    #: The connection drops while the request is in flight; the client reconnects and re-sends.
    drop_rate: float = 0.0
    #: The server no longer holds the parent (``previous_response_not_found``): a full-context fallback.
    evict_rate: float = 0.0
    #: The server closes a connection older than this (WebSocket mode's 60-minute limit).
    connection_limit_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("drop_rate", "evict_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {v!r}")
        if not self.connection_limit_s > 0:
            raise ValueError(f"connection_limit_s: must be > 0, got {self.connection_limit_s!r}")


@dataclass(frozen=True)
class Fleet:
    """Shared finite resources. ``None`` means unlimited (no queueing beyond the profile's ``queue_s``)."""

    #: Concurrent requests one API replica works on (pre- and post-inference stages).
    api_workers: int | None = None
    #: Concurrent requests the inference fleet serves (queue..decode).
    inference_slots: int | None = None

    def __post_init__(self) -> None:
        for name in ("api_workers", "inference_slots"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ValueError(f"{name}: must be an integer >= 1 or None, got {v!r}")


class Handover(simpy.Event):
    """A request's wait for a :class:`Pool`'s server: when the server is handed over to it at ``T``, the event
    fires at ``T + then`` with ``T`` as its value.

    ``then`` is the request's next phase, which it spends on that server: a process that has nothing to do
    before the phase ends (the DES's requests) resumes once, at the next phase boundary, instead of once at the
    handover and again at the boundary (one event and one process resume less per wait). With ``then = 0`` it
    is an ordinary wait.

    A pool pass need not resume the request's process at all: an event at the boundary calls :meth:`arrive`,
    which gives :attr:`leaving`'s server back and asks :attr:`pool` for one at :attr:`at` on the process's
    behalf, and the process, waiting on the handover already, resumes at the next boundary.
    """

    #: A pass made by :meth:`arrive`: the pool given back to (if any), the pool asked, and when.
    leaving: Pool | None = None
    pool: Pool | None = None
    at: float = 0.0

    def __init__(self, env: simpy.Environment, then: float) -> None:
        # simpy.Event.__init__, inlined as simpy.Timeout does (one call less on the pooled path).
        self.env = env
        self.callbacks: list[Any] = []
        self.then = then

    def arrive(self, event: simpy.Event) -> None:
        """The callback of an event at the boundary (``self.at``): the pool pass, on behalf of the process."""
        if self.leaving is not None:
            self.leaving.leave_at(self.at)
        self.pool.take(self, self.at)  # type: ignore[union-attr]

    def hand_over(self, now: float) -> None:
        """The server is this request's from ``now``: trigger the event, to be processed ``then`` later.

        As :class:`simpy.Timeout` triggers itself (SimPy's own events set ``_ok`` and ``_value``, then
        schedule): :meth:`simpy.Event.succeed` can only schedule at once.
        """
        self._ok = True
        self._value = now
        self.env.schedule(self, NORMAL, self.then)


class Pool:
    """``capacity`` servers shared first come, first served; integrates the number in system over time.

    A free server is taken without any event (:meth:`enter` returns ``None``); a request that must wait gets
    a :class:`Handover` that :meth:`leave` triggers when a server is handed over to it. The integral gives the
    time-average number in system L independently of the spans, so Little's law (L = lambda * W) can be
    checked against sojourn times measured from the spans.

    The integrals are kept as sums of event times: the area under the number in system up to ``until`` is the
    sum over requests of (leave or ``until``) - enter, so an arrival subtracts its time, a departure adds its
    time, and those still in the system add ``until`` at the end (likewise for busy servers).
    """

    __slots__ = ("_busy_times", "_presence_times", "arrivals", "busy", "capacity", "departures", "env", "waiting")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity: must be an integer >= 1, got {capacity!r}")
        self.env = env
        self.capacity = capacity
        self.busy = 0
        self.waiting: deque[Handover] = deque()
        self.arrivals = 0
        self.departures = 0
        self._presence_times = 0.0  # sum of departure times minus sum of arrival times
        self._busy_times = 0.0  # the same over the servers' busy periods

    def enter(self) -> Handover | None:
        """Ask for a server at ``env.now``: ``None`` if one was free, else an event to wait for."""
        return self.enter_at(self.env.now)

    def leave(self) -> None:
        """Give a server back at ``env.now``: straight to the longest waiting request, if any."""
        self.leave_at(self.env.now)

    def enter_at(self, now: float, then: float = 0.0) -> Handover | None:
        """:meth:`enter` for a caller that knows the clock already (``now`` is ``env.now``); a wait ends ``then``
        seconds after the server is handed over (see :class:`Handover`)."""
        self.arrivals += 1
        self._presence_times -= now
        if self.busy < self.capacity:
            self.busy += 1
            self._busy_times -= now
            return None
        ev = Handover(self.env, then)
        self.waiting.append(ev)
        return ev

    def take(self, ev: Handover, now: float) -> None:
        """:meth:`enter_at` for a request that waits on ``ev`` already: handed a server at once if one is free."""
        self.arrivals += 1
        self._presence_times -= now
        if self.busy < self.capacity:
            self.busy += 1
            self._busy_times -= now
            ev.hand_over(now)
        else:
            self.waiting.append(ev)

    def leave_at(self, now: float) -> None:
        """:meth:`leave` for a caller that knows the clock already (``now`` is ``env.now``)."""
        self.departures += 1
        self._presence_times += now
        if self.waiting:
            self.waiting.popleft().hand_over(now)
        else:
            self.busy -= 1
            self._busy_times += now

    def release(self, event: simpy.Event) -> None:
        """:meth:`leave` as the callback of an event scheduled at the time the server goes back."""
        self.leave_at(self.env.now)

    @property
    def in_system(self) -> int:
        """Requests waiting or served now."""
        return self.arrivals - self.departures

    @property
    def area(self) -> float:
        """The integral of the number in system over ``[0, env.now]``."""
        return self._presence_times + self.in_system * self.env.now

    def time_average(self, until: float) -> float:
        """Time-average number in system (waiting + served) over ``[0, until]``."""
        return (self._presence_times + self.in_system * until) / until if until > 0 else 0.0

    def utilisation(self, until: float) -> float:
        """Time-average share of the servers busy over ``[0, until]``."""
        busy = self._busy_times + self.busy * until
        return busy / until / self.capacity if until > 0 else 0.0


class ReplicaCache:
    """One replica's connection caches under a :class:`~labkit.model.cache.CachePolicy` (one entry per
    connection, least recently used first). Every call happens at the simulated time ``now``, in time order.
    """

    __slots__ = ("budget", "entries", "evictions", "expirations", "hits", "misses", "series", "total", "ttl")

    def __init__(self, policy: CachePolicy, series: ByteSeries | None = None) -> None:
        self.budget = policy.budget_bytes
        self.ttl = policy.ttl_s if policy.policy == "ttl" else math.inf
        self.entries: OrderedDict[int, tuple[int, float]] = OrderedDict()
        self.total = 0
        self.series = series
        self.hits = self.misses = self.evictions = self.expirations = 0

    def _expire(self, now: float) -> None:
        # One TTL for all and a refresh on every use: the expired entries are the least recently used ones.
        entries = self.entries
        while entries:
            key, (n, last) = next(iter(entries.items()))
            if now - last <= self.ttl:
                break
            del entries[key]
            self.total -= n
            self.expirations += 1

    def _changed(self, now: float) -> None:
        if self.series is not None:
            self.series.set(now, self.total)

    def lookup(self, key: int, now: float) -> bool:
        """A continuation names its parent: a hit refreshes the entry; a miss is a fallback."""
        before = self.total
        if self.ttl < math.inf:
            self._expire(now)
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            hit = False
        else:
            self.entries[key] = (entry[0], now)
            self.entries.move_to_end(key)
            self.hits += 1
            hit = True
        if self.total != before:
            self._changed(now)
        return hit

    def put(self, key: int, nbytes: int, now: float) -> None:
        """A response completed: it replaces its connection's entry; least recently used entries leave while
        the budget is exceeded (the new entry itself, if it alone exceeds the budget)."""
        entries = self.entries
        if self.ttl < math.inf:
            self._expire(now)
        old = entries.pop(key, None)
        if old is not None:
            self.total -= old[0]
        entries[key] = (nbytes, now)
        self.total += nbytes
        if self.budget is not None:
            while self.total > self.budget and entries:
                _, (n, _) = entries.popitem(last=False)
                self.total -= n
                self.evictions += 1
        self._changed(now)

    def discard(self, key: int, now: float) -> None:
        """The connection closed (or the server dropped its cache): its bytes are freed."""
        old = self.entries.pop(key, None)
        if old is not None:
            self.total -= old[0]
            self._changed(now)


def _rollout_specs(workload: Any, seed: int, rollout: int) -> tuple[TurnSpec, ...]:
    # Any workload object with ``turn_specs(seed)`` (a Workload, a trace): its own seed only if it has one.
    return workload.turn_specs(seed * 1_000_003 + rollout + int(getattr(workload, "seed", 0) or 0))


def _draws(seed: int, rollout: int, turns: int, jitter: float) -> np.ndarray:
    """Per-turn random draws: clamped mean-one lognormal stage multipliers, then uniforms for the faults.

    The layout is fixed whatever ``jitter`` is, so the same (seed, rollout) gives the same fault draws
    with and without jitter, and every transport sees the same multiplier for the same stage.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, rollout, 0x51D]))
    z = rng.standard_normal((turns, _N_STAGES))
    u = rng.random((turns, _N_DRAWS - _N_STAGES))
    mult = np.clip(np.exp(jitter * z - jitter**2 / 2), *JITTER_CLAMP) if jitter > 0 else np.ones_like(z)
    return np.hstack([mult, u])


# -- recorders ----------------------------------------------------------------------------------------


class SpanTable:
    """Spans as numpy columns (``SPAN_COLUMNS`` order), one row per stage; :meth:`frame` gives the DataFrame."""

    def __init__(self, source: str, scenario: str, columns: dict[str, np.ndarray]) -> None:
        self.source = source
        self.scenario = scenario
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns["rollout"])

    def frame(self) -> pd.DataFrame:
        """The spans as a DataFrame, sorted by rollout, turn, attempt and time."""
        n = len(self)
        c = self.columns
        order = np.lexsort((_ROW_ORDER[c["stage"]], c["end_s"], c["start_s"], c["attempt"], c["turn"], c["rollout"]))
        c = {k: v[order] for k, v in c.items()}
        data = {
            "source": np.full(n, self.source, dtype=object),
            "scenario": np.full(n, self.scenario, dtype=object),
            "rollout": c["rollout"],
            "turn": c["turn"],
            "stage": _STAGE_NAMES[c["stage"]],
            "start_s": c["start_s"],
            "end_s": c["end_s"],
            "tokens": c["tokens"],
            "bytes": c["bytes"],
            "cache_hit": c["cache_hit"],
            "attempt": c["attempt"],
        }
        assert list(data) == list(SPAN_COLUMNS)
        return spans_frame(data)


class _SpanRecorder:
    """Keeps each request as one segment; expands segments into per-stage rows once, with numpy.

    Segments and other spans go into flat lists (one ``extend`` per record): turning a flat list of numbers
    into an array is several times cheaper than reading the same numbers out of a list of tuples.
    """

    stream = False

    def __init__(self) -> None:
        # _N_STAGES values per segment each: the plan's tokens, bytes and cache hits, and the stage durations. The
        # plans themselves are not kept: read once while they are fresh, they are freed at once.
        # Typed buffers (``array``): numbers are stored as C values on the way in, and become numpy arrays
        # without a copy at the end.
        self.tokens = array("q")
        self.nbytes = array("q")
        self.hits = array("b")
        self.durations = array("d")
        self.meta = array("q")  # rollout, turn, attempt, stages kept
        self.times = array("d")  # phase starts (network, API, inference, post), cut time
        # Waits and tools: rollout, turn, attempt, stage id, start, end.
        self.extra = array("d")
        # Plain turns (a tile's plan, unscaled, nothing in the way): rollout, turn, attempt, tile row, start,
        # end, tool seconds; their stages are laid out from the tile's durations at the end.
        self.turns = array("d")
        # Plans computed a tile at a time (plan_rollout_stages) are kept as the tile's arrays: a segment names
        # its row there (``src`` >= 0) instead of copying sixteen values of each field; a segment planned on
        # its own (src = -1 - k) has its values in the flat buffers above, as the k-th such segment.
        self.src = array("q")
        self.tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.tile_rows = 0
        self.own = 0

    def add_tile(self, durations: np.ndarray, tokens: np.ndarray, nbytes: np.ndarray, hits: np.ndarray) -> int:
        """Keep a tile's per-stage durations, tokens, bytes and hits; returns the global row of its first turn."""
        base = self.tile_rows
        # Stored as (tokens, bytes, hits, durations): the order table() unpacks them in.
        self.tiles.append((tokens, nbytes, hits, durations))
        self.tile_rows += len(tokens)
        return base

    def segment(
        self,
        rollout: int,
        turn: int,
        attempt: int,
        plan: _PlanRef,
        d: list[float],
        t0: float,
        t1: float,
        t2: float,
        t3: float,
        upto: float,
        kept: int,
    ) -> None:
        if isinstance(plan, int):
            self.src.append(plan)
        else:
            self.src.append(-1 - self.own)
            self.own += 1
            self.tokens.extend(map(_TOKENS, plan))
            self.nbytes.extend(map(_BYTES, plan))
            self.hits.extend(map(_HIT, plan))
        self.durations.extend(d)
        self.meta.extend((rollout, turn, attempt, kept))
        self.times.extend((t0, t1, t2, t3, upto))

    def wait(self, rollout: int, turn: int, attempt: int, stage: int, t0: float, t1: float) -> None:
        if t1 > t0:
            self.extra.extend((rollout, turn, attempt, stage, t0, t1))

    def clear(self) -> None:
        for name in ("tokens", "nbytes", "hits", "durations", "meta", "times", "extra", "src", "turns"):
            setattr(self, name, array(getattr(self, name).typecode))
        self.tiles = []
        self.tile_rows = self.own = 0

    def _field(self, tiled: np.ndarray, own: array, dtype: Any) -> np.ndarray:
        """One per-stage field (tokens, bytes or hits) of every segment, as (segment x stage)."""
        src = np.frombuffer(self.src, dtype=np.int64)
        out = np.empty((len(src), _N_STAGES), dtype=dtype)
        from_tile = src >= 0
        if self.tiles:
            out[from_tile] = tiled[src[from_tile]]
        if self.own:
            out[~from_tile] = np.frombuffer(own, dtype=dtype).reshape(self.own, _N_STAGES)
        return out

    def _segment_rows(self, tiles: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        """Rows of the segments recorded stage by stage (pools, faults, jitter, cache lookups)."""
        s = len(self.meta) // 4
        d = np.frombuffer(self.durations, dtype=np.float64).reshape(s, _N_STAGES)
        meta = np.frombuffer(self.meta, dtype=np.int64).reshape(s, 4)
        times = np.frombuffer(self.times, dtype=np.float64).reshape(s, 5)
        # Start of every stage: its phase's start plus the stages before it in the same phase.
        cum = np.cumsum(d, axis=1)
        start = times[:, _PHASE_OF_COL] + (cum - d)
        start[:, _API_BEFORE_COL:_INFERENCE_COL] -= cum[:, _API_BEFORE_COL - 1 : _API_BEFORE_COL]
        start[:, _INFERENCE_COL:_API_AFTER_COL] -= cum[:, _INFERENCE_COL - 1 : _INFERENCE_COL]
        start[:, _API_AFTER_COL:] -= cum[:, _API_AFTER_COL - 1 : _API_AFTER_COL]
        keep = ((d > 0) | _ALWAYS) & (meta[:, 3:4] > _STAGE_COLS) & (start < times[:, 4:5])
        end = np.minimum(start + d, times[:, 4:5])
        flat = np.flatnonzero(keep)
        seg = flat // _N_STAGES
        return {
            "rollout": meta[seg, 0],
            "turn": meta[seg, 1],
            "attempt": meta[seg, 2],
            "stage": flat - seg * _N_STAGES,
            "start_s": start.ravel()[flat],
            "end_s": end.ravel()[flat],
            "tokens": self._field(tiles[0], self.tokens, np.int64).ravel()[flat],
            "bytes": self._field(tiles[1], self.nbytes, np.int64).ravel()[flat],
            "cache_hit": self._field(tiles[2], self.hits, np.int8).ravel()[flat].astype(np.bool_),
        }

    def _turn_rows(self, tiles: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        """Rows of the plain turns: every stage laid out from its tile's durations, then the tool."""
        x = np.frombuffer(self.turns, dtype=np.float64).reshape(-1, 7)
        ints = x[:, :4].astype(np.int64)
        tokens, nbytes, hits, durations = tiles
        rows = ints[:, 3]
        flat = np.flatnonzero(((durations > 0) | _ALWAYS)[rows])
        seg, stage = np.divmod(flat, _N_STAGES)
        g = rows[seg] * _N_STAGES + stage  # the stage's place in the tiles
        tool = np.flatnonzero(x[:, 6] > 0)
        n, m = len(flat), len(tool)
        # Written in place (stages, then tools): no concatenation copies of the nine columns.
        cols = {
            "rollout": np.empty(n + m, np.int64),
            "turn": np.empty(n + m, np.int64),
            "attempt": np.zeros(n + m, np.int64),
            "stage": np.full(n + m, _TOOL_ID, np.int64),
            "start_s": np.empty(n + m),
            "end_s": np.empty(n + m),
            "tokens": np.zeros(n + m, np.int64),
            "bytes": np.zeros(n + m, np.int64),
            "cache_hit": np.zeros(n + m, np.bool_),
        }
        for name, j in (("rollout", 0), ("turn", 1), ("attempt", 2)):
            np.take(ints[:, j], seg, out=cols[name][:n])
        cols["stage"][:n] = stage
        start: np.ndarray = cols["start_s"][:n]
        np.take((np.cumsum(durations, axis=1) - durations).ravel(), g, out=start)
        np.add(start, np.take(x[:, 4], seg), out=start)
        np.add(start, np.take(durations.ravel(), g), out=cols["end_s"][:n])
        np.take(tokens.ravel(), g, out=cols["tokens"][:n])
        np.take(nbytes.ravel(), g, out=cols["bytes"][:n])
        np.take(hits.ravel(), g, out=cols["cache_hit"][:n])
        np.take(ints[:, 0], tool, out=cols["rollout"][n:])
        np.take(ints[:, 1], tool, out=cols["turn"][n:])
        cols["start_s"][n:] = x[tool, 5]
        cols["end_s"][n:] = x[tool, 5] + x[tool, 6]
        return cols

    def _extra_rows(self) -> dict[str, np.ndarray]:
        """Rows of the waits and of the tools not recorded with their turn."""
        x = np.frombuffer(self.extra, dtype=np.float64).reshape(-1, 6)
        m = len(x)
        ints = x[:, :4].astype(np.int64)
        return {
            "rollout": ints[:, 0],
            "turn": ints[:, 1],
            "attempt": ints[:, 2],
            "stage": ints[:, 3],
            "start_s": x[:, 4],
            "end_s": x[:, 5],
            "tokens": np.zeros(m, np.int64),
            "bytes": np.zeros(m, np.int64),
            "cache_hit": np.zeros(m, np.bool_),
        }

    def table(self, source: str, scenario: str) -> SpanTable:
        if self.tiles:
            tiles = tuple(np.concatenate([t[i] for t in self.tiles]) for i in range(4))
        else:
            tiles = (
                np.zeros((0, _N_STAGES), np.int64),
                np.zeros((0, _N_STAGES), np.int64),
                np.zeros((0, _N_STAGES), np.bool_),
                np.zeros((0, _N_STAGES)),
            )
        parts = []
        if self.meta or not (self.turns or self.extra):
            parts.append(self._segment_rows(tiles))
        if self.turns:
            parts.append(self._turn_rows(tiles))
        if self.extra:
            parts.append(self._extra_rows())
        cols = parts[0] if len(parts) == 1 else {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return SpanTable(source, scenario, cols)


class _StreamRecorder:
    """Aggregates per turn and per rollout; keeps no spans (see :mod:`labkit.sim.streaming`)."""

    stream = True

    def __init__(self, rollouts: int) -> None:
        self.e2e = np.zeros(rollouts)
        self.ttft = LogHistogram()
        self.api_wait = LogHistogram()
        self.inference_wait = LogHistogram()

    def segment(self, *seg: Any) -> None:
        pass

    def bound(self) -> None:
        """Keep the histograms' buffers bounded (the hot path appends to them directly)."""
        for h in (self.ttft, self.api_wait, self.inference_wait):
            h.bound()

    def wait(self, *args: Any) -> None:
        pass


# -- the simulation -----------------------------------------------------------------------------------


class _Planned(NamedTuple):
    """A rollout's turns as its tile planned them, each in the cache state the tile expected."""

    specs: tuple[TurnSpec, ...]
    #: Seconds per (turn, plan stage): views into the tile's array.
    durations: np.ndarray
    #: The recorder's row of the first turn's tokens, bytes and hits.
    first_row: int
    #: Each plan's total, and its time to decode's start (summed with numpy once per tile).
    totals: list[float]
    to_decode: list[float]
    #: Each plan's phase sums when pools are in the way (see ``_Run._serve_pooled``); empty without pools.
    phases: list[list[float]]


class _Conversation:
    """One rollout as it runs: its plans and draws, and its connection, carried from turn to turn."""

    __slots__ = (
        "draws",
        "durations",
        "holder",
        "open",
        "opened_at",
        "planned",
        "replica",
        "rollout",
        "sticky_replica",
        "store",
    )

    def __init__(
        self,
        rollout: int,
        planned: _Planned,
        durations: list[list[float]],
        draws: list[list[float]] | None,
        sticky_replica: int,
    ) -> None:
        self.rollout = rollout
        self.planned = planned
        #: The plans' stage durations as Python floats (empty when every turn is plain).
        self.durations = durations
        #: Per-turn random draws (common random numbers); ``None`` when nothing draws.
        self.draws = draws
        self.open = False
        self.opened_at = -math.inf
        #: The replica sticky routing picks, and the one the connection is on (with its cache memory).
        self.sticky_replica = sticky_replica
        self.replica = sticky_replica
        self.store: ReplicaCache | None = None
        #: The replica that holds this conversation's replica-local caches (none before the first turn).
        self.holder = -1


class _Run:
    """One simulation: environment, shared pools and caches, parameters and the recorder."""

    def __init__(
        self,
        profile: Profile,
        workload: Any,
        *,
        seed: int,
        jitter: float,
        faults: Faults,
        fleet: Fleet,
        cache: CachePolicy | None,
        recorder: _SpanRecorder | _StreamRecorder,
        sample_s: float,
        rollouts: int,
        agents: int,
    ) -> None:
        self.env = simpy.Environment()
        self.profile = profile
        self.workload = workload
        self.seed = seed
        self.jitter = jitter
        self.faults = faults
        self.rec = recorder
        self.api = [Pool(self.env, fleet.api_workers) for _ in range(profile.replicas)] if fleet.api_workers else None
        self.inference = Pool(self.env, fleet.inference_slots) if fleet.inference_slots else None
        self.pooled = self.api is not None or self.inference is not None
        self.pool_passes = [
            _pool_passes(self.api[r] if self.api else None, self.inference) for r in range(profile.replicas)
        ]
        self.websocket = profile.transport == "websocket"
        self.random_routing = profile.routing == "random"
        self.persistent = profile.transport == "websocket" or profile.keep_alive
        self.chained = profile.chaining == "connection"
        # The memory of connection caches is shared only when it is bounded (or its bytes are tracked).
        self.caches = (
            [ReplicaCache(cache, ByteSeries(sample_s)) for _ in range(profile.replicas)]
            if cache is not None and self.chained
            else None
        )
        self.cache_model = cache.model if cache is not None else None
        self.need_draws = (
            jitter > 0
            or faults.drop_rate > 0
            or faults.evict_rate > 0
            or (profile.routing == "random" and profile.replicas > 1)
        )
        self.end = 0.0
        # Every turn ends with a served request; each fallback (a drop or a refusal) cost one more request.
        self.turns = self.fallbacks = 0
        self.rollouts = rollouts
        self.agents = agents
        # The cache state every turn gets when nothing goes wrong (no drop, eviction, reconnect or re-routing):
        # the first turn's, then every continuation's (same replica, the connection kept if the transport
        # keeps it). Their plans are computed ahead, a tile of rollouts at a time; a turn whose actual state
        # differs gets its own plan_turn.
        later = self.persistent
        self.expected = (CacheState(False, False, False), CacheState(later, self.chained and later, True))
        # cache_state for every (continuing, same replica, fresh connection), with whether it is the expected
        # one: it depends on the turn only through whether it is the first, so it is asked once a run.
        self.states = [
            (state, state == self.expected[continuing])
            for continuing in (0, 1)
            for same_replica in (False, True)
            for fresh in (False, True)
            for state in [cache_state(profile, TurnSpec(continuing, 0, 0, 1, 0.0, False), same_replica, fresh)]
        ]
        rounds = -(-rollouts // agents)
        # A tile is a block of (agents x rounds) whose rollouts run close together in time, so few tiles are
        # held at once: along one agent's own rollouts when it runs many (it runs them back to back), across
        # neighbouring agents when each runs few.
        self.tile_rounds = min(rounds, PLAN_TILE)
        self.tile_agents = max(1, PLAN_TILE // self.tile_rounds)
        self.planned: dict[int, _Planned] = {}

    def agent(self, rollouts: list[int], start: float) -> Generator[simpy.Event, None, float]:
        """An agent's process: its rollouts back to back from ``start`` (a lone rollout is the process itself,
        one generator less for every resume to pass through)."""
        if len(rollouts) == 1:
            return self.rollout(rollouts[0], start)
        return self._rollouts(rollouts, start)

    def _rollouts(self, rollouts: list[int], t: float) -> Generator[simpy.Event, None, float]:
        for rollout in rollouts:
            t = yield from self.rollout(rollout, t)
        return t

    def _plan_tile(self, rollout: int) -> None:
        """Turn specs and expected-state plans of the tile that holds ``rollout``, kept until each is run."""
        agents = self.agents
        agent0 = rollout % agents // self.tile_agents * self.tile_agents
        round0 = rollout // agents // self.tile_rounds * self.tile_rounds
        members = [
            a + r * agents
            for r in range(round0, round0 + self.tile_rounds)
            for a in range(agent0, min(agent0 + self.tile_agents, agents))
            if a + r * agents < self.rollouts
        ]
        specs = [_rollout_specs(self.workload, self.seed, m) for m in members]
        flat = [spec for ss in specs for spec in ss]
        first, later = self.expected
        # Picked per turn with numpy: converting one CacheState a turn into an array costs more than the plans.
        continuing = np.fromiter((spec.index > 0 for spec in flat), dtype=bool, count=len(flat))
        states = np.where(continuing[:, None], np.array(later, dtype=bool), np.array(first, dtype=bool))
        rec = self.rec
        if isinstance(rec, _SpanRecorder):
            # Spans carry each stage's tokens, bytes and hits too: the recorder keeps them per tile.
            plans, tokens, nbytes, hits = plan_rollout_stages(self.profile, flat, states)
            at = rec.add_tile(plans, tokens, nbytes, hits)
        else:
            plans = plan_rollout(self.profile, flat, states)
            at = 0
        # Each plan's phases (network, API before inference, inference, API after) and the inference time
        # before decode starts: a plain turn needs their total and its time to decode, a pooled one each.
        bounds = np.add.reduceat(plans, [0, _API_BEFORE_COL, _INFERENCE_COL, _API_AFTER_COL], axis=1)
        in_inference = plans[:, _INFERENCE_COL:_DECODE_COL].sum(axis=1)
        totals = bounds.sum(axis=1).tolist()
        to_decode = (bounds[:, 0] + bounds[:, 1] + in_inference).tolist()
        phases: list[list[float]] = []
        if self.pooled:
            phases = np.column_stack([bounds[:, :3], in_inference, bounds[:, 3]]).tolist()
        start = 0
        # Views into one array: it is freed when the tile's last rollout has taken its rows.
        for m, ss in zip(members, specs, strict=True):
            end = start + len(ss)
            self.planned[m] = _Planned(
                ss,
                plans[start:end],
                at + start,
                totals[start:end],
                to_decode[start:end],
                phases[start:end],
            )
            start = end

    def rollout(self, rollout: int, t: float) -> Generator[simpy.Event, None, float]:
        """One rollout, turn by turn from the agent's time ``t``; returns when its last tool returned.

        Each turn's requests are re-sent until one is served (a drop re-sends on a new connection, a refused
        continuation re-sends the full history).
        """
        conv = self._conversation(rollout)
        planned, draws = conv.planned, conv.draws
        rec = self.rec
        stream = rec.stream
        pooled, websocket = self.pooled, self.websocket
        limit_s = self.faults.connection_limit_s
        jitter = self.jitter > 0
        # Faults are drawn, or cache lookups made, only then (conv.store is set only where caches are kept).
        faults_drawn = draws is not None or self.caches is not None
        rollout_start = t
        last = len(planned.specs) - 1
        for k, spec in enumerate(planned.specs):
            row = draws[k] if draws is not None else None
            mult = row if jitter else None
            # WebSocket mode's lifetime limit: the server closed the socket after the last response.
            if conv.open and t - conv.opened_at >= limit_s:
                conv.open = False
                if conv.store is not None:
                    yield from self._drop_cache(conv, t)
            turn_start = t
            attempt = 0
            fresh = not conv.open
            while True:
                # A WebSocket connection stays on its replica; anything else is routed.
                replica = conv.replica if websocket and not fresh else self._route(conv, row, attempt, fresh)
                cache, expected = self.states[4 * (spec.index > 0) + 2 * (replica == conv.holder) + fresh]
                if not expected or mult:
                    plan, d, plain = self._plan(conv, k, spec, cache, expected, mult)
                else:  # the common case, inline: the tile's plan as it is
                    plan, d, plain = planned.first_row + k, conv.durations[k] if conv.durations else [], True
                fault = _SERVED
                if attempt == 0 and faults_drawn:
                    fault = yield from self._fault(conv, row, cache, d, t)
                if fresh:
                    conv.opened_at = t
                if fault == _DROPPED:
                    t = yield from self._dropped(conv, spec.index, attempt, plan, d, t, row[_COL_DROP_AT])  # type: ignore[index]
                    attempt += 1
                    fresh = True
                    continue
                if fault == _EVICTED:
                    t, plan, d = self._refused(conv, spec, attempt, plan, d, t, mult)
                    attempt += 1
                    plain = False
                tool_recorded = False
                if pooled:
                    phases = planned.phases[k] if plain else None
                    t, decode_at = yield from self._serve_pooled(
                        plan, d, phases, rollout, spec.index, attempt, replica, t
                    )
                elif plain:
                    t, decode_at, tool_recorded = self._serve_plain(conv, k, spec, attempt, t)
                else:
                    t, decode_at = self._serve_segment(plan, d, rollout, spec.index, attempt, t)
                if fault == _SERVED:
                    conv.open = self.persistent
                conv.holder = replica
                break
            self.fallbacks += attempt
            if conv.store is not None:
                yield from self._keep_response(conv, spec, t, last=k == last)
            if stream:
                rec.ttft.append(decode_at - turn_start)  # type: ignore[union-attr]
            if not spec.final and spec.tool_s > 0:
                if not stream and not tool_recorded:
                    rec.wait(rollout, spec.index, 0, _TOOL_ID, t, t + spec.tool_s)
                t += spec.tool_s
        if stream:
            rec.e2e[rollout] = t - rollout_start  # type: ignore[union-attr]
        self.end = max(self.end, t)
        return t

    def _conversation(self, rollout: int) -> _Conversation:
        """The rollout's plans (its tile's, planned now if this is the tile's first rollout) and draws."""
        if rollout not in self.planned:
            self._plan_tile(rollout)
        if isinstance(self.rec, _StreamRecorder):
            self.rec.bound()
        planned = self.planned.pop(rollout)
        self.turns += len(planned.specs)  # a rollout runs every turn to the end
        draws = _draws(self.seed, rollout, len(planned.specs), self.jitter).tolist() if self.need_draws else None
        # Stage durations as Python floats, for the turns laid out stage by stage (faults, jitter, cache lookups,
        # and the spans of pooled turns); a plain turn needs only its total, or its phase sums with pools.
        needed = draws is not None or self.caches is not None or (self.pooled and not self.rec.stream)
        durations = planned.durations.tolist() if needed else []
        return _Conversation(rollout, planned, durations, draws, rollout % self.profile.replicas)

    # -- routing and cache state --------------------------------------------------------------------

    def _route(self, conv: _Conversation, row: list[float] | None, attempt: int, fresh: bool) -> int:
        """The replica a request lands on: a WebSocket connection stays on one; HTTP routes every request."""
        replicas = self.profile.replicas
        by_draw = self.random_routing and row
        if self.websocket:
            if fresh:
                conv.replica = int(row[_COL_REPLICA] * replicas) if by_draw else conv.sticky_replica  # type: ignore[index]
                conv.store = self.caches[conv.replica] if self.caches is not None else None
            return conv.replica
        replica = int(row[_COL_REPLICA] * replicas) if by_draw else conv.sticky_replica  # type: ignore[index]
        if attempt and self.random_routing:
            # A retry is a new request: route it again with a fresh draw from the same stream.
            replica = (replica + attempt) % replicas
        return replica

    def _plan(
        self,
        conv: _Conversation,
        k: int,
        spec: TurnSpec,
        cache: CacheState,
        expected: bool,
        mult: list[float] | None,
    ) -> tuple[_PlanRef, list[float], bool]:
        """The turn's plan, its stage durations, and whether it is plain (the tile's plan, unscaled).

        A turn in the cache state the tile expected takes the tile's plan (the recorder's row of its tokens,
        bytes and hits); any other gets its own :func:`~labkit.model.plan_turn`.
        """
        if expected:
            if mult:
                return conv.planned.first_row + k, [x * m for x, m in zip(conv.durations[k], mult, strict=False)], False
            return conv.planned.first_row + k, conv.durations[k] if conv.durations else [], True
        plan = plan_turn(self.profile, spec, cache)
        return plan, _durations(plan, mult), False

    # -- faults and the shared connection caches --------------------------------------------------------

    def _catch_up(self, t: float) -> Generator[simpy.Event, None, float]:
        """Bring SimPy's clock up to this agent's own time ``t`` (no event if it is there); returns the clock."""
        env = self.env
        if t > env.now:
            yield env.timeout(t - env.now)
        return env.now

    def _fault(
        self, conv: _Conversation, row: list[float] | None, cache: CacheState, d: list[float], t: float
    ) -> Generator[simpy.Event, None, int]:
        """What happens to a turn's first request: served, refused (the parent is gone) or cut (a drop)."""
        store = conv.store
        if cache.connection_cache_hit:
            # The request reaches the server, which looks its parent up in the connection's cache.
            looked_up_at = t + d[0] + d[1]
            if row is not None and row[_COL_EVICT] < self.faults.evict_rate:
                # The server lost the parent (a fault): the cache is gone.
                if store is not None:
                    yield from self._drop_cache(conv, looked_up_at)
                return _EVICTED
            if store is not None:
                now = yield from self._catch_up(looked_up_at)
                if not store.lookup(conv.rollout, now):
                    return _EVICTED
        if row is not None and row[_COL_DROP] < self.faults.drop_rate:
            return _DROPPED
        return _SERVED

    def _drop_cache(self, conv: _Conversation, t: float) -> Generator[simpy.Event, None, None]:
        """At ``t`` the connection's cache entry is freed (the socket closed, or the server lost it)."""
        now = yield from self._catch_up(t)
        conv.store.discard(conv.rollout, now)  # type: ignore[union-attr]

    def _keep_response(
        self, conv: _Conversation, spec: TurnSpec, t: float, *, last: bool
    ) -> Generator[simpy.Event, None, None]:
        """The completed response replaces the connection's entry; after the last one the client closes."""
        now = yield from self._catch_up(t)
        store = conv.store
        assert store is not None and self.cache_model is not None
        tokens = turn_entry_tokens(spec.context_tokens, spec.new_input_tokens, spec.output_tokens)
        store.put(conv.rollout, entry_bytes(tokens, self.cache_model), now)
        if last:
            store.discard(conv.rollout, now)

    def _refused(
        self,
        conv: _Conversation,
        spec: TurnSpec,
        attempt: int,
        plan: _PlanRef,
        d: list[float],
        t: float,
        mult: list[float] | None,
    ) -> tuple[float, TurnPlan, list[float]]:
        """previous_response_not_found arrives after the server looked the parent up: the client lost the
        upload and validation, then re-sends the full history on the same socket.

        Returns when the error arrived, and the full-context request's plan and stage durations.
        """
        end = t + d[0] + d[1] + d[2]
        if not self.rec.stream:
            self.rec.segment(
                conv.rollout, spec.index, attempt, plan, d, t, t + d[0] + d[1], end, end, math.inf, _CUT_EVICT
            )
        conv.holder = -1
        conv.open = True
        full = plan_turn(self.profile, spec, _AFTER_EVICTION)
        return end, full, _durations(full, mult)

    def _dropped(
        self, conv: _Conversation, turn: int, attempt: int, plan: _PlanRef, d: list[float], t: float, share: float
    ) -> Generator[simpy.Event, None, float]:
        """The connection dropped ``share`` of the way through the request: the client will reconnect and
        re-send (a WebSocket connection's cache died with the socket); returns when it dropped."""
        cut_at = t + share * sum(d)
        if not self.rec.stream:
            t1, t2, t3 = _phase_starts(d, t)
            self.rec.segment(conv.rollout, turn, attempt, plan, d, t, t1, t2, t3, cut_at, _N_STAGES)
        conv.open = False
        if self.websocket:
            conv.holder = -1
            if conv.store is not None:
                yield from self._drop_cache(conv, cut_at)
        return cut_at

    # -- serving ------------------------------------------------------------------------------------------

    def _serve_plain(
        self, conv: _Conversation, k: int, spec: TurnSpec, attempt: int, t: float
    ) -> tuple[float, float, bool]:
        """The common case, nothing in the way: one record for the whole turn, its tool included."""
        planned = conv.planned
        end = t + planned.totals[k]
        if self.rec.stream:
            return end, t + planned.to_decode[k], False
        tool = spec.tool_s if not spec.final and spec.tool_s > 0 else 0.0
        self.rec.turns.extend((conv.rollout, spec.index, attempt, planned.first_row + k, t, end, tool))  # type: ignore[union-attr]
        return end, t + planned.to_decode[k], True

    def _serve_segment(
        self, plan: _PlanRef, d: list[float], rollout: int, turn: int, attempt: int, t: float
    ) -> tuple[float, float]:
        """A request laid out stage by stage with no pool in the way: its end and when its decode started."""
        t1, t2, t3 = _phase_starts(d, t)
        if not self.rec.stream:
            self.rec.segment(rollout, turn, attempt, plan, d, t, t1, t2, t3, math.inf, _N_STAGES)
        return t3 + sum(d[_API_AFTER_COL:]), t2 + sum(d[_INFERENCE_COL:_DECODE_COL])

    def _serve_pooled(
        self,
        plan: _PlanRef,
        d: list[float],
        phases: list[float] | None,
        rollout: int,
        turn: int,
        attempt: int,
        replica: int,
        t: float,
    ) -> Generator[simpy.Event, Any, tuple[float, float]]:
        """One request through the pools: it meets the shared clock only at its phase boundaries (arrival,
        inference, back to the API, done); returns its end and when its decode started.

        The pool pass at each boundary: at the boundary's time, give back the server of the phase that ended,
        take one of the next phase's, waiting if none is free (a wait moves the boundary, and what follows,
        later). The process makes the pass itself if the clock is there already; else an event at the boundary
        makes it (:meth:`Handover.arrive`), and the process, waiting to be handed the server, resumes only at the
        next boundary. ``phases`` are the plan's network, API-before, inference, to-decode (within inference) and
        API-after seconds when the tile summed them already.
        """
        env, rec = self.env, self.rec
        net, pre, infer, to_decode, post = phases if phases is not None else _phase_sums(d)
        starts = [t]  # when each phase started: network, API before, inference, API after; then the end
        waited = [0.0, 0.0]  # API, inference
        at = t
        now = env.now  # the shared clock, as of this process's last resume
        for seconds, then, (leaving, entering, wait_stage, wait_kind) in zip(
            (net, pre, infer, post), (pre, infer, post, 0.0), self.pool_passes[replica], strict=True
        ):
            at += seconds
            if entering is not None:
                if at <= now:  # the process is at the boundary already
                    if leaving is not None:
                        leaving.leave_at(now)
                    ev = entering.enter_at(now, then)
                else:
                    # The pass by a callback at ``at``; the process resumes at the next boundary, whether it
                    # waited or not (no resume at this one).
                    ev = Handover(env, then)
                    ev.leaving, ev.pool, ev.at = leaving, entering, at
                    env.timeout(at - now).callbacks.append(ev.arrive)
                if ev is not None:
                    # Resumed at the next boundary (``then`` after the handover), the handover time as value.
                    handed = yield ev
                    if handed > at:
                        now = env.now
                        waited[wait_kind] += handed - at
                        if not rec.stream:
                            rec.wait(rollout, turn, attempt, wait_stage, at, handed)
                        at = handed
                    else:
                        now = at + then
            elif leaving is not None:
                if at > now:
                    # Nothing to take here: the server goes back by an event at its time, and the agent goes on.
                    env.timeout(at - now).callbacks.append(leaving.release)
                else:
                    leaving.leave_at(now)
            starts.append(at)
        if rec.stream:
            rec.api_wait.append(waited[0])  # type: ignore[union-attr]
            rec.inference_wait.append(waited[1])  # type: ignore[union-attr]
        else:
            rec.segment(rollout, turn, attempt, plan, d, t, starts[1], starts[2], starts[3], math.inf, _N_STAGES)
        return starts[4], starts[2] + to_decode


#: One pool pass per phase boundary: the pool to give a server back to, the pool to take one from, and the
#: stage id and kind (0 API, 1 inference) of a wait there.
_PoolPass: TypeAlias = tuple["Pool | None", "Pool | None", int, int]


def _pool_passes(api: Pool | None, inference: Pool | None) -> tuple[_PoolPass, ...]:
    """The passes at a request's arrival, at inference, back at the API, and at its end, for one replica."""
    holds = (None, api, inference, api, None)  # who serves the network, API-before, inference, API-after, after
    waits = ((_API_WAIT_ID, 0), (_INFERENCE_WAIT_ID, 1), (_API_WAIT_ID, 0), (_API_WAIT_ID, 0))
    return tuple((holds[i], holds[i + 1], *waits[i]) for i in range(4))


def _durations(plan: TurnPlan, mult: list[float] | None) -> list[float]:
    """A plan's stage durations, scaled by the turn's jitter multipliers if it has them."""
    return [s[1] * m for s, m in zip(plan, mult, strict=False)] if mult else [s[1] for s in plan]


def _phase_starts(d: list[float], t: float) -> tuple[float, float, float]:
    """When the API-before, inference and API-after phases of a request started at ``t`` begin."""
    t1 = t + d[0] + d[1]
    t2 = t1 + sum(d[_API_BEFORE_COL:_INFERENCE_COL])
    return t1, t2, t2 + sum(d[_INFERENCE_COL:_API_AFTER_COL])


def _phase_sums(d: list[float]) -> list[float]:
    """A request's network, API-before, inference, to-decode (within inference) and API-after seconds."""
    return [
        d[0] + d[1],
        sum(d[_API_BEFORE_COL:_INFERENCE_COL]),
        sum(d[_INFERENCE_COL:_API_AFTER_COL]),
        sum(d[_INFERENCE_COL:_DECODE_COL]),
        sum(d[_API_AFTER_COL:]),
    ]


@dataclass(frozen=True)
class CacheCounters:
    """A run's connection-cache counters, summed over replicas (``peak_bytes``: of the fullest replica)."""

    hits: int
    misses: int
    evictions: int
    expirations: int
    peak_bytes: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class SimResult:
    """A run's spans (``record="spans"``) or streamed metrics (``record="stream"``), plus the pools' own
    occupancy integrals (for Little's law)."""

    spans: pd.DataFrame | None
    until: float
    inference_time_average: float | None
    inference_arrivals: int | None
    metrics: FleetMetrics | None = None
    table: SpanTable | None = None
    #: Connection-cache counters summed over replicas; ``None`` without a cache policy.
    cache: CacheCounters | None = None


def run(
    profile: Profile,
    workload: Any,
    *,
    rollouts: int = 1,
    agents: int | None = None,
    seed: int = 0,
    jitter: float = 0.0,
    faults: Faults | None = None,
    fleet: Fleet | None = None,
    cache: CachePolicy | None = None,
    stagger_s: float = 0.0,
    scenario: str | None = None,
    source: str = "sim",
    record: Literal["spans", "stream"] = "spans",
    sample_s: float = 1.0,
    as_frame: bool = True,
) -> SimResult:
    """Simulate ``rollouts`` rollouts run by ``agents`` concurrent agents (default: all at once).

    Agent ``i`` runs rollouts ``i, i + agents, ...`` back to back (a closed system) and starts after
    ``i * stagger_s``. ``workload`` is a :class:`~labkit.model.Workload` or any object with ``name`` and
    ``turn_specs(seed)``. ``cache`` bounds each replica's connection-cache memory (WebSocket mode): a
    continuation whose entry was evicted falls back to the full context. ``record="stream"`` keeps no spans
    (``metrics`` holds the aggregates, cache bytes sampled every ``sample_s``); with ``as_frame=False`` the
    spans stay numpy columns (``table``) and no DataFrame is built.
    """
    _check_run(rollouts, agents, jitter, stagger_s, record, sample_s, workload)
    agents = rollouts if agents is None else agents
    fleet = fleet or Fleet()
    recorder: _SpanRecorder | _StreamRecorder = _SpanRecorder() if record == "spans" else _StreamRecorder(rollouts)
    sim = _Run(
        profile,
        workload,
        seed=seed,
        jitter=float(jitter),
        faults=faults or Faults(),
        fleet=fleet,
        cache=cache,
        recorder=recorder,
        sample_s=sample_s,
        rollouts=rollouts,
        agents=min(agents, rollouts),
    )
    for i in range(min(agents, rollouts)):
        sim.env.process(sim.agent(list(range(i, rollouts, agents)), i * stagger_s))
    # The cycle collector stays off while the run allocates its many small objects, and until the span
    # segments are expanded and freed (by reference counting): a collection pass over them would cost more
    # than making them.
    with paused_gc(collect=False):
        sim.env.run()
        until = max(sim.end, sim.env.now)
        pool = sim.inference
        result = SimResult(
            spans=None,
            until=until,
            inference_time_average=pool.time_average(until) if pool else None,
            inference_arrivals=pool.arrivals if pool else None,
        )
        result.cache = _cache_counters(sim.caches)
        if isinstance(recorder, _SpanRecorder):
            table = recorder.table(source, scenario or profile.name)
            recorder.clear()
            result.table = table
            if as_frame:
                result.spans = table.frame()
        else:
            result.metrics = _metrics(
                sim,
                recorder,
                agents=min(agents, rollouts),
                rollouts=rollouts,
                until=until,
                fleet=fleet,
                sample_s=sample_s,
            )
        del sim
    return result


def _check_run(
    rollouts: int, agents: int | None, jitter: float, stagger_s: float, record: str, sample_s: float, workload: Any
) -> None:
    """:func:`run`'s arguments, checked: a ``ValueError`` naming the first bad one."""
    if not isinstance(rollouts, int) or isinstance(rollouts, bool) or rollouts < 1:
        raise ValueError(f"rollouts: must be an integer >= 1, got {rollouts!r}")
    if agents is not None and (not isinstance(agents, int) or isinstance(agents, bool) or agents < 1):
        raise ValueError(f"agents: must be an integer >= 1, got {agents!r}")
    if not (isinstance(jitter, int | float) and jitter >= 0 and math.isfinite(jitter)):
        raise ValueError(f"jitter: must be >= 0, got {jitter!r}")
    if not stagger_s >= 0:
        raise ValueError(f"stagger_s: must be >= 0, got {stagger_s!r}")
    if record not in ("spans", "stream"):
        raise ValueError(f"record: must be 'spans' or 'stream', got {record!r}")
    if not (sample_s > 0 and math.isfinite(sample_s)):
        raise ValueError(f"sample_s: must be > 0, got {sample_s!r}")
    if not callable(getattr(workload, "turn_specs", None)):
        raise ValueError(f"workload: needs a turn_specs(seed) method, got {type(workload).__name__}")


def _cache_counters(caches: list[ReplicaCache] | None) -> CacheCounters | None:
    if caches is None:
        return None
    return CacheCounters(
        hits=sum(c.hits for c in caches),
        misses=sum(c.misses for c in caches),
        evictions=sum(c.evictions for c in caches),
        expirations=sum(c.expirations for c in caches),
        peak_bytes=max(c.series.peak for c in caches if c.series is not None),
    )


def _metrics(
    sim: _Run, rec: _StreamRecorder, *, agents: int, rollouts: int, until: float, fleet: Fleet, sample_s: float
) -> FleetMetrics:
    caches = sim.caches or []
    for c in caches:
        if c.series is not None:
            c.series.close(until)
    return FleetMetrics(
        agents=agents,
        rollouts=rollouts,
        turns=sim.turns,
        requests=sim.turns + sim.fallbacks,
        fallbacks=sim.fallbacks,
        until_s=until,
        e2e_s=rec.e2e,
        ttft=rec.ttft.frozen(),
        api_wait=rec.api_wait.frozen(),
        inference_wait=rec.inference_wait.frozen(),
        api_busy=tuple(p.utilisation(until) for p in sim.api) if sim.api else (),
        inference_busy=(sim.inference.utilisation(until),) if sim.inference else (),
        api_in_system=tuple(p.time_average(until) for p in sim.api) if sim.api else (),
        inference_in_system=(sim.inference.time_average(until),) if sim.inference else (),
        api_workers=fleet.api_workers,
        inference_slots=fleet.inference_slots,
        cache_hits=sum(c.hits for c in caches),
        cache_misses=sum(c.misses for c in caches),
        cache_evictions=sum(c.evictions for c in caches),
        cache_expirations=sum(c.expirations for c in caches),
        cache_peak_bytes=tuple(c.series.peak for c in caches if c.series is not None),
        cache_mean_bytes=tuple(c.series.area / until if until > 0 else 0.0 for c in caches if c.series is not None),
        cache_series=tuple(tuple(c.series.samples) for c in caches if c.series is not None),
        sample_s=sample_s,
    )


def simulate(profile: Profile, workload: Any, **kwargs: Any) -> pd.DataFrame:
    """Spans of simulated rollouts (see :func:`run` for the keyword arguments)."""
    result = run(profile, workload, **kwargs)
    assert result.spans is not None
    return result.spans
