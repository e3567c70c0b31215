"""Seeded fault injection for experiments: dropped connections, stalls, cache evictions, failed turns.

Every decision is drawn from one ``random.Random(seed)`` in request arrival order, so a run with the
same requests in the same order sees the same faults.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

from labkit.wire.protocol import ProtocolError


class DropConnection(Exception):
    """Raised inside a turn to cut the connection without a close handshake (as a network failure)."""


def injected_failure() -> ProtocolError:
    """The 500 that an injected turn failure answers with, on either transport."""
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
    #: Chance that a response fails with a 5xx (HTTP 500, ``response.failed`` over SSE, an ``error``
    #: event with status 500 over WebSocket) after its pre-inference stages.
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


class FaultInjector:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def draw(self, expected_events: int) -> FaultPlan:
        """The faults of the next response; ``expected_events`` bounds the random drop point."""
        f = self.faults
        if not f.active:
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
