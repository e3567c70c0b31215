"""Seeded fault injection for experiments: dropped connections, stalls, cache evictions, failed turns.

One owner: :class:`FaultInjector` draws every fault of a turn at once (a :class:`TurnFaults`), in request
arrival order from one ``random.Random(seed)``, so a run with the same requests in the same order sees the
same faults; the engine asks that object, and nothing else, whether to evict, stall, fail or cut.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from labkit.wire.protocol import ProtocolError

if TYPE_CHECKING:
    from labkit.live.server.counters import ServerCounters


class DropConnection(Exception):
    """Raised inside a turn to cut the connection without a close handshake (as a network failure)."""


def injected_failure() -> ProtocolError:
    """The 500 that an injected turn failure answers with (a non-streaming HTTP request)."""
    return ProtocolError(
        "server_error",
        "The server had an error while processing your request (injected fault).",
        None,
        status=500,
        type="server_error",
    )


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault parameters. Rates are per response, between 0 and 1; all default to no faults."""

    seed: int = 0
    #: Cut a connection once it has sent this many events (WebSocket: per connection; HTTP: per request).
    drop_after_events: int | None = None
    #: Chance that a response's connection is cut at a uniformly random event of the response.
    drop_rate: float = 0.0
    #: Chance that a response stalls for ``stall_s`` seconds before its first output delta.
    stall_rate: float = 0.0
    stall_s: float = 0.0
    #: Chance that the connection cache is emptied just before a request is looked up in it.
    evict_rate: float = 0.0
    #: Chance that a response fails with a 5xx after its pre-inference stages: ``response.failed`` over
    #: WebSocket and SSE (the error inside ``response.error``), HTTP 500 without streaming.
    fail_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop_rate", "stall_rate", "evict_rate", "fail_rate"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or math.isnan(v) or not 0 <= v <= 1:
                raise ValueError(f"{name}: must be a number within [0, 1], got {v!r}")
        if not isinstance(self.stall_s, int | float) or math.isnan(self.stall_s) or self.stall_s < 0:
            raise ValueError(f"stall_s: must be a number >= 0, got {self.stall_s!r}")
        d = self.drop_after_events
        if d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 1):
            raise ValueError(f"drop_after_events: must be an integer >= 1, got {d!r}")

    @property
    def active(self) -> bool:
        return bool(self.drop_after_events or self.drop_rate or self.stall_rate or self.evict_rate or self.fail_rate)


class FaultPlan(NamedTuple):
    """The faults drawn for one response."""

    #: Cut the connection when the response has sent this many events (``None``: never).
    drop_at_event: int | None = None
    stall_s: float = 0.0
    evict: bool = False
    fail: bool = False


NO_FAULTS = FaultPlan()


class EventCounter:
    """Events sent on one connection (WebSocket) or one request (HTTP): what ``drop_after_events`` counts."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0


class _Clearable(Protocol):
    def clear(self) -> None: ...


class TurnFaults:
    """Every fault of one turn, decided once; the engine applies them through these methods only."""

    __slots__ = ("_counter", "_drop_after", "_metrics", "_sent", "plan")

    def __init__(self, plan: FaultPlan, drop_after: int | None, counter: EventCounter, metrics: ServerCounters) -> None:
        self.plan = plan
        self._drop_after = drop_after
        self._counter = counter
        self._metrics = metrics
        self._sent = 0

    def before_lookup(self, cache: _Clearable | None) -> None:
        """An injected eviction empties the connection cache just before the request is looked up."""
        if self.plan.evict and cache is not None:
            self._metrics.faults_evicted += 1
            cache.clear()

    def stall_s(self) -> float:
        if self.plan.stall_s:
            self._metrics.faults_stalled += 1
        return self.plan.stall_s

    def fail(self) -> bool:
        if self.plan.fail:
            self._metrics.faults_failed += 1
        return self.plan.fail

    def admit(self, n: int, final: bool, stream: bool = True) -> int:
        """How many of the next ``n`` events may go out; fewer than ``n`` means cut after them.

        ``stream=False`` (one JSON answer): ``drop_after_events`` counts messages on the wire, and a JSON
        answer is one, so only a random drop point can cut it.
        """
        allowed = n
        drop_at = self.plan.drop_at_event
        if drop_at is not None:
            allowed = min(allowed, max(0, drop_at - self._sent))
            if final:
                # A drop point beyond the response's last event (it has fewer than drawn) cuts before it.
                allowed = min(allowed, n - 1)
        if self._drop_after is not None and stream:
            allowed = min(allowed, max(0, self._drop_after - self._counter.sent))
        self._sent += allowed
        self._counter.sent += allowed
        if allowed < n:
            self._metrics.faults_dropped += 1
        return allowed


class FaultInjector:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        #: Whether any fault can happen (``Faults`` is frozen: decided once, read per request).
        self.active = faults.active
        self._rng = random.Random(faults.seed)

    def draw(self, expected_events: int) -> FaultPlan:
        """The faults of the next response; ``expected_events`` bounds the random drop point."""
        f = self.faults
        if not self.active:
            return NO_FAULTS
        rng = self._rng
        # Draw every variable every time so that one rate does not shift the others' sequences.
        u_drop, u_stall, u_evict, u_fail = rng.random(), rng.random(), rng.random(), rng.random()
        at = rng.randrange(1, max(2, expected_events))
        return FaultPlan(
            drop_at_event=at if u_drop < f.drop_rate else None,
            stall_s=f.stall_s if u_stall < f.stall_rate else 0.0,
            evict=u_evict < f.evict_rate,
            fail=u_fail < f.fail_rate,
        )

    def for_turn(self, expected_events: int, counter: EventCounter, metrics: ServerCounters) -> TurnFaults:
        """The one fault decision of a turn (drops, 5xx, stalls, evictions), counted in ``metrics``."""
        return TurnFaults(self.draw(expected_events), self.faults.drop_after_events, counter, metrics)
