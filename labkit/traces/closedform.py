"""The closed-form expected end to end of a rollout, from the model layer alone.

:mod:`labkit.traces` replays sessions and checks fits in closed form, but imports only the model (and analysis)
layer, never the simulators: this is the expectation :func:`labkit.sim.analytic.forecast` computes, summed once
(``tests/test_traces.py`` holds the two equal). Each turn's stages are planned by
:func:`labkit.model.plan.plan_rollout` for the undisturbed cache state of its position (a persistent connection
is open after the first turn, a WebSocket connection cache hit after the first turn, an HTTP continuation lands
on its conversation's replica with the profile's :func:`~labkit.model.hit_probability`), the expectation over
the replica hit is linear, and the client's tool times are added.
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.model import CacheState, Profile, TurnSpec, Workload, hit_probability
from labkit.model.plan import plan_rollout


def cache_states(profile: Profile, specs: Sequence[TurnSpec], replica_hit: bool) -> list[CacheState]:
    """The cache state of each turn of an undisturbed rollout."""
    persistent = profile.transport == "websocket" or profile.keep_alive
    out = []
    for spec in specs:
        later = spec.index > 0
        out.append(
            CacheState(
                connection_open=persistent and later,
                connection_cache_hit=profile.chaining == "connection" and later,
                replica_hit=replica_hit and later,
            )
        )
    return out


def expected_e2e_s(profile: Profile, workload: Workload, seed: int | None = None) -> float:
    """Expected seconds of one rollout end to end (model stages plus tool times)."""
    specs = workload.turn_specs(seed)
    p = hit_probability(profile)
    total = float(plan_rollout(profile, specs, cache_states(profile, specs, True)).sum())
    if p < 1.0:
        miss = float(plan_rollout(profile, specs, cache_states(profile, specs, False)).sum())
        total = p * total + (1 - p) * miss
    return total + sum(s.tool_s for s in specs)
