"""labkit fit: exact on noise-free simulated spans, the profile file it writes, the CLI contract."""

from __future__ import annotations

import json
import math
import tomllib

import pytest

from labkit.cli import main
from labkit.experiments.recovery import RANGES, random_profile, token_cost
from labkit.model import load_profile, load_workload
from labkit.sim.des import simulate
from labkit.traces.fit import FITTED, compare_parameters, fit_spans, write_profile


@pytest.fixture(scope="module")
def truth_and_spans():
    # The simulated spans have no upload bandwidth term (the fit assumes none, see labkit.traces.fit).
    # The fit carries the round trip in the fixed TTFT cost unless told to derive it: a truth without one.
    truth = random_profile(7).with_(upload_bytes_per_s=math.inf, rtt_s=0.0)
    return truth, simulate(truth, load_workload("calibration"), rollouts=8, seed=7)


def test_fit_is_exact_on_noise_free_simulated_spans(truth_and_spans):
    truth, spans = truth_and_spans
    result = fit_spans(spans, base="websocket", source="sim.csv", n_boot=50)
    cmp = compare_parameters(result, truth)
    assert set(cmp) == set(FITTED)
    for key, c in cmp.items():
        assert c["rel_error"] < 1e-3, (key, c)
    assert result.parameters["rtt_s"].provenance == "assumed" and result.parameters["rtt_s"].value == 0
    assert result.parameters["validate_s"].provenance == "assumed"
    assert result.parameters["decode_tps"].source == "sim.csv"
    assert abs(result.residuals["e2e"]["max_abs_rel"]) < 1e-4
    assert result.residuals["ttft"]["rmse_s"] < 1e-4


def test_rtt_from_connect_takes_the_round_trip_out_of_the_fixed_cost():
    truth = random_profile(8).with_(upload_bytes_per_s=math.inf)  # rtt 40 ms, connect 80 ms = 2 round trips
    spans = simulate(truth, load_workload("calibration"), rollouts=8, seed=8)
    derived = fit_spans(spans, base="websocket", rtt_from_connect=True, n_boot=50)
    assert derived.parameters["rtt_s"].provenance == "derived"
    assert derived.parameters["rtt_s"].value == pytest.approx(truth.rtt_s, rel=1e-6)
    assert derived.parameters["prefill_overhead_s"].value == pytest.approx(truth.prefill_overhead_s, rel=1e-3)
    carried = fit_spans(spans, base="websocket", n_boot=50)
    assert carried.parameters["prefill_overhead_s"].value == pytest.approx(
        truth.prefill_overhead_s + truth.rtt_s, rel=1e-3
    )


def test_fit_draws_the_truth_from_non_default_ranges():
    base = load_profile("websocket")
    p = random_profile(3)
    for key, (lo, hi) in RANGES.items():
        assert lo <= getattr(p, key) <= hi and getattr(p, key) != getattr(base, key)
    assert random_profile(3) == p and random_profile(4) != p


def test_fitted_profile_file_loads_with_provenance(truth_and_spans, tmp_path):
    _, spans = truth_and_spans
    result = fit_spans(spans, base="websocket", name="mine", source="sim.csv", n_boot=50)
    path = write_profile(result, tmp_path / "mine.toml")
    prof = load_profile(path)
    assert prof.name == "mine" and prof.decode_tps == pytest.approx(result.profile.decode_tps)
    assert prof.upload_bytes_per_s == math.inf and prof.transport == "websocket"
    doc = tomllib.loads(path.read_text())["profile"]
    assert doc["base"] == "websocket"
    assert doc["decode_tps"]["provenance"] == "fitted" and doc["decode_tps"]["source"] == "sim.csv"
    assert doc["decode_tps"]["lo"] <= doc["decode_tps"]["value"] <= doc["decode_tps"]["hi"]
    assert "validate_s" not in doc  # assumed and equal to the base: left to the base
    # The profile works wherever a preset does: replay takes the file.
    assert main(["replay", "--profiles", f"websocket,{path}", "--tps", "65", "--json"]) == 0


def test_cli_fit_json_contract(truth_and_spans, tmp_path, capsys):
    _, spans = truth_and_spans
    spans.to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "p.toml"
    assert main(["fit", str(tmp_path / "s.csv"), "--out", str(out), "--json", "--boot", "50"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["parameters"]["decode_tps"]) >= {"value", "lo", "hi", "provenance"}
    assert doc["parameters"]["decode_tps"]["provenance"] == "fitted"
    assert doc["parameters"]["hops"]["provenance"] == "assumed" and doc["parameters"]["hops"]["lo"] is None
    assert {"ttft", "decode", "complete", "e2e"} <= set(doc["residuals"])
    assert load_profile(out).name == "fitted"


def test_fit_refuses_what_it_cannot_fit(tmp_path, capsys):
    spans = simulate(load_profile("websocket"), load_workload("fast_test"), rollouts=1)
    with pytest.raises(ValueError, match="at least 8"):
        fit_spans(spans)
    assert main(["fit"]) == 2
    assert "give a spans file" in capsys.readouterr().err


def test_calibration_token_cost(capsys):
    cost = token_cost("calibration", rollouts=6)
    w = load_workload("calibration")
    assert cost["requests"] == 6 * w.turns
    assert cost["input_tokens"] == sum(s.conversation_tokens for i in range(6) for s in w.turn_specs(i))
    assert main(["fit", "--cost", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == cost
