"""The DES and the live server agree on hit rate and fallbacks under the same connection-cache byte budget.

Same workload, same per-agent seeds (the live runner's rollout ``i`` uses seed ``i``, the DES's rollout ``i``
of run seed 0 too), same profile on loopback, all agents starting at once; both size entries with
:func:`labkit.model.cache.entry_bytes` (the server's text-only model). The live server evicts least
recently used entries when a completed response would exceed ``max_cached_bytes``; an evicted connection's
next continuation gets ``previous_response_not_found`` and the client resends the full context.

Tolerance: hit rates within 0.06 absolute and fallbacks within 8 (of ~108 continuations): LRU order
follows completion times, which on a live socket differ from the model's by scheduling jitter, so the
same eviction may fall on a neighbour. Measured: 0.648 live vs 0.685 DES at 30% of the memory all
connections would hold, identical counts at 60% (this machine, a 2-core VM).
The comparison only means something if the live run kept real time: its wall time must stay within 25%
of the DES's simulated time.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from labkit.model import load_profile, load_workload
from labkit.model.cache import CacheModel, CachePolicy, entry_bytes
from labkit.sim.des import run

pytestmark = pytest.mark.live

AGENTS = 12
TURNS = 10
OVERRIDES = {
    "turns": TURNS,
    "initial_context_tokens": 2000,
    "tool_output_tokens": 200,
    "output_tokens": 40,
    "final_output_tokens": 60,
    "token_sigma": 0.0,
    "tool_time_median_s": 0.1,
    "tool_time_sigma": 0.6,  # agents drift apart, so LRU order is not a plain round robin
}
TPS = 1000.0


async def _live(budget: int) -> tuple[dict, int, float]:
    from labkit.live.runner import run_rollout
    from labkit.live.server import SimServer

    profile = load_profile("websocket", decode_tps=TPS)
    workload = load_workload("codex_bugfix", **OVERRIDES)
    server = await SimServer.start(profile=profile, workload=workload, port=0, instant=False, max_cached_bytes=budget)
    try:
        t0 = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    run_rollout("ws", workload, base_url=server.base_url, seed=i, rollout=i, t0=t0, max_attempts=4)
                    for i in range(AGENTS)
                )
            ),
            timeout=60,
        )
        wall = time.perf_counter() - t0
        metrics = server.metrics
    finally:
        await server.stop()
    assert all(r.finished and r.turns == TURNS for r in results)
    fallbacks = sum(1 for r in results for f in r.fallbacks if f.code == "previous_response_not_found")
    return metrics, fallbacks, wall


def _des(budget: int):
    profile = load_profile("websocket", decode_tps=TPS).loopback()
    workload = load_workload("codex_bugfix", **OVERRIDES)
    policy = CachePolicy(budget, model=CacheModel.text_only(profile.bytes_per_token))
    res = run(profile, workload, rollouts=AGENTS, agents=AGENTS, seed=0, cache=policy, record="stream")
    assert res.metrics is not None
    return res.metrics


@pytest.mark.parametrize("share", [0.3, 0.6])
def test_des_and_live_server_agree_under_a_byte_budget(share: float) -> None:
    # What every connection's cache would hold at its last turn, if nothing were evicted.
    full = AGENTS * entry_bytes(2000 + TURNS * 240, CacheModel.text_only(4.0))
    budget = int(full * share)
    live, live_fallbacks, wall = asyncio.run(_live(budget))
    des = _des(budget)
    assert wall <= 1.25 * des.until_s, f"the live run did not keep real time ({wall:.1f} s vs {des.until_s:.1f} s)"
    live_lookups = live["cache_hits"] + live["cache_misses"]
    assert live_lookups == des.cache_hits + des.cache_misses == AGENTS * (TURNS - 1)
    live_rate = live["cache_hits"] / live_lookups
    assert des.cache_evictions > 0 and live["cache_evictions"] > 0
    assert abs(live_rate - des.hit_rate) <= 0.06, (live_rate, des.hit_rate)
    assert abs(live_fallbacks - des.fallbacks) <= 8, (live_fallbacks, des.fallbacks)
    assert des.fallbacks == des.cache_misses and 0 < des.hit_rate < 1


def test_a_generous_budget_never_falls_back_in_either() -> None:
    full = AGENTS * entry_bytes(2000 + TURNS * 240, CacheModel.text_only(4.0))
    live, live_fallbacks, _ = asyncio.run(_live(2 * full))
    des = _des(2 * full)
    assert live["cache_evictions"] == des.cache_evictions == 0
    assert live_fallbacks == des.fallbacks == 0 and des.hit_rate == 1.0
