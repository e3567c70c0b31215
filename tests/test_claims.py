"""The published claims against the model: the table, the realistic sessions, the region, the solved defaults."""

from __future__ import annotations

import pytest

from labkit.analysis.claims import (
    CLAIMS,
    Assumptions,
    cached_prompt_ttft_reduction,
    calibration_report,
    check_claims,
    claims_region,
    realistic_session,
    realistic_sessions,
    session_shape,
    solve_defaults,
)
from labkit.analysis.headline import headline
from labkit.analysis.registry import load_registry
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


# -- the registry and the calibration report ----------------------------------------------------------------------


def _entry(**changes):
    base = {
        "value": 0.4,
        "unit": "fraction",
        "claim": "up to 40% faster",
        "qualifier": "up to",
        "role": "checked",
        "system": "openai",
        "verified": "primary",
        "source": "a guide",
        "title": "A guide",
        "url": "https://example.org/guide",
        "conditions": {"tool_calls_min": 20, "decode_tps": "not stated"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_registry_holds_every_public_number_with_its_conditions():
    reg = {e.key: e for e in load_registry()}
    for key in (
        "ttft_reduction_critical_path",
        "e2e_reduction_websocket",
        "guide_e2e_up_to_40",
        "partner_cline",
        "partner_cursor",
        "partner_vercel",
        "caching_ttft_1k",
        "caching_ttft_150k",
        "tracelab_cached_share",
        "tracelab_tool_median_claude_code",
        "tracelab_tool_median_codex",
        "smg_ttft_p50_8_turns",
        "smg_ttft_p50_40_turns",
    ):
        assert key in reg, key
    guide = reg["guide_e2e_up_to_40"]
    assert guide.qualifier == "up to" and guide.condition("tool_calls_min") == 20
    assert reg["caching_ttft_150k"].condition("prompt_tokens") == 150_000 and reg["caching_ttft_1k"].value == 0.07
    assert reg["partner_cursor"].verified == "2nd" and reg["partner_cline"].value == 0.39
    # Another system's numbers are kept apart and never fitted.
    assert {e.system for e in reg.values() if e.key.startswith("smg_")} == {"other"}
    assert all(e.role != "fitted" for e in reg.values() if e.system == "other")
    assert {e.role for e in reg.values()} == {"fitted", "checked", "input"}
    assert reg["partner_cursor"].published_text == "up to 30%"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"value": "40%"}, "value"),
        ({"value": float("nan")}, "value"),
        ({"qualifier": "roughly"}, "qualifier"),
        ({"role": "tuned"}, "role"),
        ({"system": None}, "system"),
        ({"claim": ""}, "claim"),
        ({"url": "example.org"}, "url"),
        ({"conditions": {"tps": [1, 2]}}, "conditions.tps"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_registry_entry_names_its_field(changes, field):
    with pytest.raises(ValueError, match=rf"^published\.guide\.{field}:"):
        load_registry({"guide": _entry(**changes)})
    ok = load_registry({"guide": _entry()})[0]
    assert ok.value == 0.4 and ok.to_dict()["conditions"] == {"tool_calls_min": 20, "decode_tps": "not stated"}


def test_calibration_report_compares_each_number_on_its_conditions():
    report = calibration_report()
    rows = {r.entry.key: r for r in report.rows}
    assert [r.entry.key for r in report.rows] == [e.key for e in load_registry()]
    # The fitted numbers are met; "up to" is the model's maximum over the stated range.
    assert rows["e2e_reduction_websocket"].error == pytest.approx(0, abs=0.02 / 0.4)
    best_realistic = check_claims().checks[2].model_hi
    assert rows["guide_e2e_up_to_40"].model == pytest.approx(max(best_realistic, rows["e2e_reduction_websocket"].model))
    assert "maximum" in rows["partner_cursor"].how
    # Inputs, another system and a workload the model lacks carry no model value and count in no MAPE.
    for key in ("tps_gpt5", "smg_ttft_p50_40_turns", "tracelab_tool_median_claude_code"):
        assert rows[key].model is None and rows[key].error is None
    assert "another system" in rows["smg_ttft_p50_8_turns"].how
    mape = report.mape_by_source()
    assert "smg gateway #1770 (another system)" not in mape
    post = "OpenAI's engineering post"
    fitted = [abs(r.error) for r in report.rows if r.entry.source == post and r.error is not None]
    assert mape["OpenAI's engineering post"] == (pytest.approx(sum(fitted) / len(fitted)), len(fitted))
    # Caching: the longer the cached prompt, the larger the TTFT cut.
    assert 0 < rows["caching_ttft_1k"].model < rows["caching_ttft_150k"].model < 1
    d = report.to_dict()
    assert {"entries", "mape_by_source", "ensemble"} <= set(d)
    assert {"value", "conditions", "url", "role", "qualifier", "model", "error", "interval"} <= set(d["entries"][0])


def test_cached_prompt_reduction_is_the_prefill_it_saves():
    from labkit.analysis.ensemble import DEFAULTS, Defaults

    class InstantPrefill(Defaults):
        def profile(self, p, **overrides):
            return load_profile(p, prefill_tokens_per_s=1e15, **overrides)

    # Only the prefill of the cached tokens differs: with free prefill, caching saves nothing.
    assert cached_prompt_ttft_reduction(InstantPrefill(), 150_000) == pytest.approx(0, abs=1e-6)
    # red = (N/P) / (F + kN + N/P), so 1/red is affine in 1/N: three prompt sizes lie on one line.
    inv = [1 / cached_prompt_ttft_reduction(DEFAULTS, n) for n in (2_000, 8_000, 32_000)]
    x = [1 / 2_000, 1 / 8_000, 1 / 32_000]
    slope = (inv[0] - inv[1]) / (x[0] - x[1])
    assert inv[2] == pytest.approx(inv[1] + slope * (x[2] - x[1]), rel=1e-9)


def test_claims_page_is_what_labkit_claims_computes():
    from pathlib import Path

    from labkit.analysis.ensemble import default_ensemble

    text = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "claims.md").read_text()
    start = text.index("<!-- claims:begin -->") + len("<!-- claims:begin -->")
    end = text.index("<!-- claims:end -->")
    assert text[start:end].strip() == calibration_report(default_ensemble()).markdown().strip(), (
        "regenerate with `labkit claims --markdown`"
    )
