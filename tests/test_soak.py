"""Soak at suite size: concurrent WebSocket connections x 20 turns against one server process.

0 rollouts lost; the server's cached bytes never exceed its ``max_cached_bytes`` budget (evictions are
counted in its metrics, and the evicted connections' clients fall back to the full context); the server's
RSS, sampled over the whole run, stays bounded. ``labkit bench soak`` runs the same at 1,000 connections.
"""

from __future__ import annotations

import pytest

from labkit.bench.soak import soak

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
