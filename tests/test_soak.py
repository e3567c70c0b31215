"""Soak at suite size: concurrent WebSocket connections x 20 turns against one server process.

0 rollouts lost; the server's cached bytes never exceed its ``max_cached_bytes`` budget (evictions are
counted in its metrics, and the evicted connections' clients fall back to the full context); the server's
RSS, sampled over the whole run, stays bounded. ``labkit bench soak`` runs the same at 1,000 connections.
"""

from __future__ import annotations

import pytest

from labkit.bench.soak import soak

pytestmark = pytest.mark.live

CONNECTIONS = 150
TURNS = 20
#: Modelled bytes one connection's cache holds at the end of its rollout (2,000 + 20 x 240 tokens, 4 B each).
PER_CONNECTION = (2000 + TURNS * 240) * 4


def _rss_bound_mb(connections: int) -> float:
    # Interpreter noise plus per-connection buffers and objects; the cache holds token counts, not text.
    return 16 + connections * 0.1


def _check_common(fig: dict, budget: int) -> None:
    assert fig["errors"] == 0, fig["first_error"]
    assert fig["rollouts_finished"] == CONNECTIONS
    assert fig["turns_completed"] == CONNECTIONS * TURNS
    assert fig["samples"] >= 5
    assert fig["cached_bytes_peak"] <= budget
    assert fig["rss_peak_mb"] - fig["rss_start_mb"] <= _rss_bound_mb(CONNECTIONS), fig
    assert fig["server_metrics"]["responses_failed"] == 0
    # The store ran capped, and the record says how RSS grew per 10,000 responses.
    caps = fig["store_caps"]
    assert fig["server_metrics"]["stored_responses"] <= caps["max_stored"]
    assert fig["server_metrics"]["stored_bytes"] <= caps["max_stored_bytes"]
    assert fig["responses"] >= CONNECTIONS * TURNS
    assert isinstance(fig["rss_growth_mb_per_10k_responses"], float)


@pytest.mark.slow
def test_soak_within_a_generous_budget() -> None:
    budget = 2 * CONNECTIONS * PER_CONNECTION
    fig = soak(CONNECTIONS, TURNS, budget)
    _check_common(fig, budget)
    # Nothing had to be evicted, so no client had to fall back and the server saw no error at all.
    assert fig["server_metrics"]["cache_evictions"] == 0
    assert fig["fallbacks"] == 0
    assert fig["server_metrics"]["errors"] == 0
    assert fig["cached_bytes_peak"] > CONNECTIONS * 2000 * 4  # the caches did hold the conversations


@pytest.mark.slow
def test_soak_under_a_tight_budget_evicts_and_recovers() -> None:
    budget = CONNECTIONS * PER_CONNECTION // 4
    fig = soak(CONNECTIONS, TURNS, budget)
    _check_common(fig, budget)
    evictions = fig["server_metrics"]["cache_evictions"]
    assert evictions > 0
    # Every fallback is a continuation whose parent the budget evicted; each one recovered.
    assert fig["fallbacks"] == fig["fallback_codes"].get("previous_response_not_found", 0) > 0
    assert fig["fallbacks"] <= evictions


def test_cache_budget_evicts_least_recently_used_across_connections() -> None:
    from labkit.live.server.counters import ServerCounters
    from labkit.live.server.engine import CacheBudget, LaneCache
    from labkit.live.server.state import ResponseRecord

    metrics = ServerCounters()
    budget = CacheBudget(1000, 4.0, metrics)  # 250 tokens
    a, b = LaneCache(budget), LaneCache(budget)

    def rec(rid: str, tokens: int) -> ResponseRecord:
        return ResponseRecord(rid, 1, tokens, 0, "conv")

    a.put(None, rec("r1", 100))
    b.put(None, rec("r2", 100))
    assert budget.total == 800 and metrics.cache_evictions == 0
    assert a.find("r1") is not None  # a is now the most recently used
    b.put("lane", rec("r3", 60))  # 1,040 bytes: the least recently used (b's default lane) goes
    assert metrics.cache_evictions == 1 and b.find("r2") is None and a.find("r1") is not None
    assert budget.total == 640 <= budget.max_bytes
    a.put(None, rec("r4", 120))  # replaces r1 on the same lane: its bytes are returned first
    assert budget.total == 720 and metrics.cache_evictions == 1
    b.clear()  # a closed connection gives its bytes back
    assert budget.total == 480 and a.find("r4") is not None
    assert a.evict(None, "r4") and budget.total == 0
    a.put(None, rec("huge", 1000))  # larger than the whole budget: not kept at all
    assert a.lanes == {} and budget.total == 0 and metrics.cache_evictions == 2
    with pytest.raises(ValueError, match="max_cached_bytes"):
        CacheBudget(-1, 4.0, metrics)
