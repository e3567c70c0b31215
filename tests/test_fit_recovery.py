"""Parameter recovery against the simulator: a random profile served live, measured, fitted, then predicted.

One trial here (about half a minute); ``labkit fit --recovery N`` runs many and reports the rate.
"""

from __future__ import annotations

import asyncio

import pytest

from labkit.experiments.recovery import DEFAULT_TOLERANCE, HELD_OUT_TOLERANCE, TOLERANCE, run_trial

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_one_recovery_trial():
    trial, result = asyncio.run(run_trial(11, rollouts=6, held_out=2, concurrency=3, n_boot=200))
    assert set(trial.recovered) == {
        "decode_tps", "prefill_overhead_s", "prefill_tokens_per_s", "prefix_cache_hit_share", "safety_out_s",
        "safety_out_per_1k_s",
    }  # fmt: skip
    for key, p in trial.parameters.items():
        if key in trial.recovered:
            tol = TOLERANCE.get(key, DEFAULT_TOLERANCE)
            assert p["inside"] and p["rel_error"] <= tol, (key, p)
    assert len(trial.held_out_errors) == 2
    assert all(abs(e) <= HELD_OUT_TOLERANCE for e in trial.held_out_errors), trial.held_out_errors
    assert result.parameters["decode_tps"].provenance == "fitted"
