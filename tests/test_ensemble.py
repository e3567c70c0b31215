"""The uncertainty ensemble: exact re-solve of the fitted numbers, the priors, the fit constraint, and the
intervals that headline and compare carry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from labkit.analysis.crossover import crossover_tps
from labkit.analysis.ensemble import (
    PRIORS,
    build_ensemble,
    call_fixed_s,
    e2e_reduction,
    interval,
    load_fit,
    rollout,
)
from labkit.analysis.headline import COMPARISON_INTERVALS, HEADLINE_INTERVALS, compare, headline
from labkit.cli import main
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast

SMALL = 24


@pytest.fixture(scope="module")
def ens():
    return build_ensemble(SMALL, seed=3)


@pytest.mark.parametrize("name", ["http_baseline", "http_chained", "websocket", "websocket_prototype"])
@pytest.mark.parametrize("ratio", [1.0, 0.4, 3.0])
def test_fast_rollout_equals_the_closed_form(name, ratio):
    p, w = load_profile(name), load_workload("codex_realistic")
    f = forecast(p, w.with_(tool_time_median_s=w.tool_time_median_s * ratio))
    r = rollout(p, w, ratio)
    assert r.e2e_s == pytest.approx(f.e2e_s, rel=1e-12)
    assert r.ttft_mean_s == pytest.approx(f.ttft_mean_s, rel=1e-12)
    assert r.overhead_s == pytest.approx(f.api_s + f.network_s, rel=1e-12)
    assert r.inference_s == pytest.approx(f.inference_s, rel=1e-12)
    random = load_profile("http_chained", replicas=4, routing="random")
    assert rollout(random, w).e2e_s == pytest.approx(forecast(random, w).e2e_s, rel=1e-12)


def test_every_member_meets_its_drawn_targets_exactly(ens):
    bug = load_workload("codex_bugfix")
    for m in ens.members:
        d = dict(m.draws)
        b = rollout(m.profile("http_baseline", decode_tps=1000), bug, m.tool_ratio)
        o = rollout(m.profile("http_optimized", decode_tps=1000), bug, m.tool_ratio)
        assert 1 - o.ttft_mean_s / b.ttft_mean_s == pytest.approx(d["ttft_target"], abs=1e-9)
        assert e2e_reduction(m, "http_baseline", "websocket", bug, 1000) == pytest.approx(d["e2e_target"], abs=1e-9)
        assert m.safety_speedup >= 1 and m.api_scale > 0
        # Every draw inside its prior's range; the targets within the published tolerance.
        for prior in PRIORS:
            assert prior.lo <= d[prior.name] <= prior.hi, prior.name
        assert 0.43 <= d["ttft_target"] <= 0.47 and 0.38 <= d["e2e_target"] <= 0.42


def test_members_differ_in_more_than_a_scale(ens):
    d = ens.draws()
    # The split of the fixed API cost over the stages, hops, prefill and tools all vary.
    for col in ("hops", "prefill_tokens_per_s", "tool_time_median_s", "per_token_scale", "safety_in_s split"):
        assert d[col].nunique() > 3, col
    m = ens.members[0]
    opt = m.profile("http_optimized")
    # The sprint's presets keep their own hops; the baseline's hops are the member's.
    assert opt.hops == load_profile("http_optimized").hops and m.profile("http_baseline").hops == m.baseline.hops
    assert opt.safety_in_s == pytest.approx(m.baseline.safety_in_s * m.safety_factor)
    assert m.profile("ideal").validate_s == 0


def test_ensemble_is_seeded_and_cached(ens):
    again = build_ensemble(SMALL, seed=3)
    assert again is ens
    other = build_ensemble(SMALL, seed=4)
    assert [m.api_scale for m in other.members] != [m.api_scale for m in ens.members]
    assert ens.tried >= len(ens) and sum(ens.rejected.values()) == ens.tried - len(ens)
    with pytest.raises(ValueError, match="^members:"):
        build_ensemble(1)


def test_guide_bound_holds_in_every_member(ens):
    from labkit.analysis.claims import TOLERANCE, realistic_sessions

    for m in ens.members[:6]:
        for w in realistic_sessions():
            assert e2e_reduction(m, "http_baseline", "websocket", w, 1000) <= 0.40 + TOLERANCE + 1e-12


def test_fit_bounds_the_fixed_time_per_call(tmp_path: Path, ens):
    fixed = [call_fixed_s(m.profile("websocket")) for m in ens.members]
    hi = float(np.median(fixed))
    path = tmp_path / "fit.json"
    doc = {
        "parameters": {
            "decode_tps": {"value": 60.0, "lo": 55.0, "hi": 66.0, "provenance": "fitted: 2 files, 40 calls"},
            "call_fixed_s": {"value": hi * 0.8, "lo": hi * 0.5, "hi": hi, "provenance": "fitted: 2 files, 40 calls"},
        },
        "calls": 40,
        "sessions": 2,
    }
    path.write_text(json.dumps(doc))
    fit = load_fit(path)
    assert fit.call_fixed_hi == pytest.approx(hi) and fit.decode_tps == 60.0
    bounded = build_ensemble(SMALL, seed=3, fit=fit)
    assert all(call_fixed_s(m.profile("websocket")) <= hi for m in bounded.members)
    assert bounded.rejected.get("fit_call_fixed_s", 0) > 0
    assert bounded.summary()["fit"]["call_fixed_hi"] == pytest.approx(hi)
    for bad, field in (({"parameters": {}}, "call_fixed_s"), ({"runs": 1}, "parameters")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=rf"^fit\.{field}|^fit\.parameters\.{field}"):
            load_fit(path)


def test_headline_and_compare_carry_intervals_beside_every_value(ens):
    h = headline(ensemble=ens)
    d = h.to_dict()
    plain = headline(intervals=False).to_dict()
    assert set(plain) <= set(d) and plain["intervals"] is None
    assert set(d["intervals"]) == set(HEADLINE_INTERVALS)
    for key, iv in d["intervals"].items():
        assert iv["lo"] <= iv["median"] <= iv["hi"], key
    # The fitted numbers stay within their tolerance over the whole ensemble.
    assert 0.43 <= d["intervals"]["ttft_reduction"]["lo"] <= d["intervals"]["ttft_reduction"]["hi"] <= 0.47
    assert "(5-95%: " in h.text() and f"{h.e2e_reduction_at_1000_tps:7.1%} (5-95%: " in h.text()
    c = compare("http_chained", "websocket", tps=4000, ensemble=ens).to_dict()
    assert set(c["intervals"]) == set(COMPARISON_INTERVALS) and c["ensemble"]["members"] == SMALL


def test_closed_form_crossover_is_the_bisection_one():
    from labkit.analysis.ensemble import DEFAULTS
    from labkit.analysis.headline import headline_values

    v = headline_values(DEFAULTS, "codex_bugfix", 65.0, 1000.0)
    assert v["crossover_tps"] == pytest.approx(crossover_tps("http_baseline", "codex_bugfix"), rel=1e-6)


def test_rests_on_names_the_driving_assumption(ens):
    tools = ens.map(lambda m: m.workload("codex_bugfix").tool_time_median_s)
    name, rho = ens.rests_on(tools)
    assert name == "tool_time_median_s" and rho == pytest.approx(1.0)
    assert ens.rests_on(np.ones(len(ens))) == ("none", 0.0)
    iv = interval([1.0, 2.0, 3.0, math.nan])
    assert iv.lo <= iv.median <= iv.hi and iv.median == 2.0


def test_cli_headline_compare_and_claims_json(capsys: pytest.CaptureFixture, tmp_path: Path):
    assert main(["headline", "--json", "--members", str(SMALL), "--seed", "3"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"ttft_reduction", "crossover_tps", "intervals", "ensemble"} <= set(d)
    assert main(["compare", "http_baseline", "websocket", "--json", "--members", str(SMALL), "--seed", "3"]) == 0
    assert "intervals" in json.loads(capsys.readouterr().out)
    assert main(["claims", "--json", "--members", str(SMALL), "--seed", "3"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["mape_by_source"] and r["ensemble"]["members"] == SMALL
    assert main(["claims", "--members", str(SMALL), "--seed", "3"]) == 0
    assert "MAPE by source" in capsys.readouterr().out
    missing = tmp_path / "nope.json"
    assert main(["headline", "--fit", str(missing)]) == 2
    assert "fit:" in capsys.readouterr().err
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"parameters": {"call_fixed_s": {"value": 2.9, "lo": 2.0, "hi": 4.0}}}))
    argv = ["headline", "--json", "--members", str(SMALL), "--seed", "3", "--fit", str(fit)]
    argv += ["--fit-profile", "websocket"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["ensemble"]["fit"]["call_fixed_hi"] == 4.0


def test_model_guide_priors_are_the_code_s():
    from labkit.analysis.ensemble import priors_markdown

    text = (Path(__file__).resolve().parents[1] / "docs" / "guides" / "model.md").read_text()
    start = text.index("<!-- priors:begin -->") + len("<!-- priors:begin -->")
    assert text[start : text.index("<!-- priors:end -->")].strip() == priors_markdown().strip()
