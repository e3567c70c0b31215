"""The closed-form expected end to end of a rollout, for the trace fits and replays.

:mod:`labkit.traces` imports only the model (and analysis) layer, never the simulators: the closed form lives in
the model layer (:mod:`labkit.model.closedform`, the one copy, which :func:`labkit.sim.analytic.forecast`
re-exports too), and its names are re-exported here for the importers that reach it through this module.
"""

from __future__ import annotations

from collections.abc import Sequence

from labkit.model import CacheState, Profile, TurnSpec
from labkit.model.closedform import cache_state, expected_e2e_s


def cache_states(profile: Profile, specs: Sequence[TurnSpec], replica_hit: bool) -> list[CacheState]:
    """The cache state of each turn of an undisturbed rollout (:func:`labkit.model.closedform.cache_state`)."""
    return [cache_state(profile, spec, replica_hit) for spec in specs]


__all__ = ["cache_states", "expected_e2e_s"]
