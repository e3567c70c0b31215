"""Connection-cache memory in the closed form: what a rollout costs when the connection caches of one replica
share a byte budget (the model behind the what-if dashboard's memory sliders).

A WebSocket connection keeps its conversation in memory (the previous response's state and its rendered
tokens). When ``sockets`` connections share ``budget_bytes``, a continuation finds its conversation with the
probability :func:`cache_hit_share`; a miss is answered ``previous_response_not_found`` and the turn resends the
full context (:func:`evicted`). The expectation of a rollout is then linear in the hit share (:func:`mix`).
The discrete-event simulator models the same budget with an LRU per replica (``labkit.sim``); this is its
closed-form counterpart, fast enough for a slider (a few forecasts per change).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from labkit.model import Profile, TurnSpec
from labkit.sim.analytic import RolloutForecast, forecast

#: Bytes a connection cache holds per token of conversation beyond the profile's own: the rendered int32 ids.
CACHE_BYTES_PER_TOKEN_RENDERED = 4


class TurnSource(Protocol):
    """A workload, or anything that lays out a rollout's turns (a replayed session)."""

    def turn_specs(self, seed: int | None = None) -> Sequence[TurnSpec]: ...


def cache_hit_share(workload: TurnSource, profile: Profile, budget_bytes: float, sockets: float) -> float:
    """Chance a continuation finds its conversation in the connection cache when ``sockets`` connections share
    ``budget_bytes`` of one replica: the share of the mean demand that fits (LRU under even use)."""
    specs = workload.turn_specs()
    held = float(np.mean([s.conversation_tokens + s.output_tokens for s in specs]))
    demand = sockets * held * (profile.bytes_per_token + CACHE_BYTES_PER_TOKEN_RENDERED)
    return 1.0 if demand <= 0 else float(min(1.0, budget_bytes / demand))


def evicted(profile: Profile) -> Profile:
    """What a turn costs after ``previous_response_not_found``: the full context over the open socket."""
    return profile.with_(chaining="none", sampling_loop=False, incremental_safety=False, rendered_token_cache=False)


def mix(hit: RolloutForecast, miss: RolloutForecast, p: float, extra_s: float) -> RolloutForecast:
    """The expectation of a rollout whose continuations hit with probability ``p`` (every stage is linear in the
    hit); a miss also costs ``extra_s`` in total for the error round trips (added to ``upload``)."""
    stage = {k: p * hit.stage_s[k] + (1 - p) * miss.stage_s[k] for k in hit.stage_s}
    stage["upload"] += (1 - p) * extra_s
    ttft = tuple(p * a + (1 - p) * b for a, b in zip(hit.ttft_s, miss.ttft_s, strict=True))
    lat = tuple(p * a + (1 - p) * b for a, b in zip(hit.turn_latency_s, miss.turn_latency_s, strict=True))
    return RolloutForecast(hit.profile, hit.workload, stage, ttft, lat, sum(stage.values()))


def forecast_under_budget(
    profile: Profile, workload: TurnSource, budget_bytes: float, sockets: float
) -> RolloutForecast:
    """The closed-form forecast of ``profile`` when its connection caches share ``budget_bytes`` among
    ``sockets`` connections: profiles without a connection cache (or sampling loop) are unaffected."""
    fc = forecast(profile, workload)  # type: ignore[arg-type]
    if not (profile.chaining == "connection" or profile.sampling_loop):
        return fc
    hit = cache_hit_share(workload, profile, budget_bytes, sockets)
    if hit >= 1.0:
        return fc
    miss = forecast(evicted(profile), workload)  # type: ignore[arg-type]
    # Each continuation that misses pays one more round trip for the error before it resends.
    return mix(fc, miss, hit, profile.rtt_s * (len(fc.ttft_s) - 1))


def speedup_curve(fc: RolloutForecast, base: RolloutForecast, tps: float, grid: np.ndarray) -> np.ndarray:
    """End-to-end speedup of ``fc`` over ``base`` at every decode speed of ``grid``.

    In the latency model only the ``decode`` and ``reasoning`` stages depend on the decode speed, both as
    tokens / TPS, so a forecast at one speed gives the whole curve exactly. (A test checks this against full
    forecasts, so a model change that breaks it is caught.)
    """
    scale = tps / grid

    def e2e(f: RolloutForecast) -> np.ndarray:
        dep = f.stage_s["decode"] + f.stage_s["reasoning"]
        return f.e2e_s - dep + dep * scale

    return e2e(base) / e2e(fc)


__all__ = [
    "CACHE_BYTES_PER_TOKEN_RENDERED",
    "TurnSource",
    "cache_hit_share",
    "evicted",
    "forecast_under_budget",
    "mix",
    "speedup_curve",
]
