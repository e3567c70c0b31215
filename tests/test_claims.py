"""The published claims against the model: the table, the realistic sessions, the region, the solved defaults."""

from __future__ import annotations

import pytest

from labkit.analysis.claims import (
    CLAIMS,
    Assumptions,
    check_claims,
    claims_region,
    realistic_session,
    realistic_sessions,
    session_shape,
    solve_defaults,
)
from labkit.analysis.headline import headline
from labkit.model import load_profile, load_workload


def test_the_defaults_keep_every_claim_and_the_headline():
    r = check_claims()
    assert r.all_hold, r.frame().to_string()
    assert [c.key for c in r.checks] == [c.key for c in CLAIMS]
    h = headline()
    assert abs(h.ttft_reduction - h.published_ttft_reduction) <= 0.02
    assert abs(h.e2e_reduction_at_1000_tps - h.published_e2e_reduction) <= 0.02
    d = r.to_dict()
    assert d["all_hold"] and {"source", "published", "model", "holds", "workloads"} <= set(d["checks"][0])


def test_realistic_sessions_are_sized_like_real_ones():
    for w in realistic_sessions():
        s = session_shape(w)
        assert 28 <= s["model_calls"] <= 286
        assert 67_000 <= s["median_input_tokens"] <= 125_000, w.name
        assert 240 <= s["median_output_tokens"] <= 310
        assert 30 <= s["mean_reasoning_tokens"] <= 60
        assert 0.12 <= s["tool_median_s"] <= 0.17
        assert 0.9 <= s["cached_share"] <= 0.96
    long = realistic_session(286, 68_000)
    assert long.initial_context_tokens >= 20_000 and long.tool_output_tokens < 250  # shrunk, as compaction does


def test_larger_per_token_costs_break_the_realistic_claims():
    # The first version's per-token costs (20x today's) on realistic sessions: far past "up to ~40%".
    r = check_claims(Assumptions(per_token_scale=20.0), sessions=realistic_sessions()[:2])
    assert not r.all_hold and "guide_up_to_40" in r.failing()
    assert r.checks[2].model_hi > 0.45


def test_region_marks_where_all_hold():
    fam = realistic_sessions()[:3]
    df = claims_region([0.5, 1.0], [1.0, 20.0], sessions=fam)
    assert len(df) == 4 and set(df["claims_held"]) <= set(range(len(CLAIMS) + 1))
    row = df[(df.api_scale == 1.0) & (df.per_token_scale == 1.0)].iloc[0]
    assert row["all_hold"]
    assert not df[(df.api_scale == 0.5)]["all_hold"].any()


def test_solve_defaults_returns_the_calibrated_scale():
    a = solve_defaults(per_token_scale=1.0)
    # The data file holds rounded values of this solution: the solved scale is 1 within rounding.
    assert a.api_scale == pytest.approx(1.0, abs=0.02)
    speedup = load_profile("http_baseline").safety_in_s / load_profile("http_optimized").safety_in_s
    assert a.safety_speedup == pytest.approx(speedup, rel=0.02)
    with pytest.raises(ValueError, match="^tool_scale:"):
        Assumptions(tool_scale=-1)


def test_codex_realistic_is_a_preset():
    w = load_workload("codex_realistic")
    assert w.turns == 60 and w.parallel_tool_calls > 4 and w.reasoning_tokens > 0
