"""The robust fit of per-call time on real sessions: recovery, robustness, holdout, the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labkit.cli import main
from labkit.model import load_profile
from labkit.traces import fit_sessions
from labkit.traces.sessionfit import robust_fit
from labkit.traces.sessionrecovery import recover_format
from labkit.traces.synth import Truth, synth_sessions, write_format

SHIPPED = Path(__file__).parent.parent / "labkit" / "data" / "traces" / "tracelab_round_trace.jsonl"


@pytest.mark.parametrize("fmt", ["codex", "codex-0.147", "codex-usage-records", "tracelab", "otlp", "labkit"])
def test_known_parameters_are_recovered_through_each_format(fmt):
    truth = Truth(call_fixed_s=1.8, decode_tps=90.0, reasoning_tps=70.0, uncached_input_s_per_1k=0.1)
    r = recover_format(fmt, truth, n_sessions=6, calls_per_session=30, seed=1, n_boot=40)
    for key, p in r.parameters.items():
        assert p.rel_error < 0.1, (key, p)
    assert r.parameters["decode_tps"].inside and r.parameters["call_fixed_s"].inside
    assert r.median_abs_error is not None and r.median_abs_error < 0.1
    assert r.read_back_error < 1e-3


def test_a_heavy_tail_does_not_move_the_robust_intercept():
    rng = np.random.default_rng(0)
    n = 400
    out = rng.uniform(0.02, 1.0, n)
    x = np.column_stack([np.ones(n), out, np.zeros(n), rng.uniform(0, 2, n)])
    y = 2.0 + out * 15 + x[:, 3] * 0.05 + rng.normal(0, 0.1, n)
    y[rng.random(n) < 0.1] += 30.0  # a tenth of the calls held up by a rate limit
    coef = robust_fit(x, y)
    ols = np.linalg.lstsq(x[:, [0, 1, 3]], y, rcond=None)[0]
    assert coef[0] == pytest.approx(2.0, abs=0.25) and coef[1] == pytest.approx(15.0, rel=0.05)
    assert ols[0] > 3.5  # least squares puts the tail into the fixed part
    assert coef[2] == coef[1]  # no reasoning tokens: they decode at the visible output's speed


def test_holdout_predicts_the_sum_with_the_mean_residual(tmp_path):
    truth = Truth(tail_share=0.2, tail_mean_s=8.0)
    sessions = synth_sessions(truth, n_sessions=6, calls_per_session=30, seed=4)
    fit = fit_sessions(write_format(sessions, "codex", tmp_path), n_boot=30, with_holdout=True)
    assert fit.holdout is not None and len(fit.holdout) == 6
    # The robust fit's typical call is below the mean of a skewed call time; the mean residual adds it back.
    assert fit.parameters["call_mean_residual_s"].value > 0.5
    assert fit.median_abs_error is not None and fit.median_abs_error < 0.15
    measured = {s.id: s.model_s for s in sessions}
    for row in fit.holdout:
        assert row.measured_s == pytest.approx(measured[row.session], abs=0.1)


def test_cli_fit_json_contract_several_files_and_profile(tmp_path, capsys):
    sessions = synth_sessions(Truth(), n_sessions=4, calls_per_session=20, seed=5)
    codex = write_format(sessions[:2], "codex-0.147", tmp_path / "codex")
    otlp = write_format(sessions[2:], "otlp", tmp_path / "otlp")
    out = tmp_path / "p.toml"
    args = ["fit", *map(str, codex + otlp), "--holdout", "--json", "--boot", "30", "--out", str(out)]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sessions"] == 4 and doc["calls"] == sum(len(s.calls) for s in sessions)
    for name in ("decode_tps", "call_fixed_s"):
        assert set(doc["parameters"][name]) >= {"value", "lo", "hi", "provenance"}
        assert doc["parameters"][name]["provenance"] == "fitted"
    assert "residuals" in doc and doc["median_abs_error"] is not None
    assert [set(r) for r in doc["holdout"]] == [{"session", "calls", "measured_s", "predicted_s"}] * 4
    text = out.read_text()
    assert f"fitted: {codex[0].name}" in text and f"({doc['calls']} calls, 4 sessions)" in text
    assert "[not_separable]" in text and "assumption" in text
    prof = load_profile(out)
    assert prof.decode_tps == pytest.approx(doc["parameters"]["decode_tps"]["value"])


def test_cli_fit_on_the_shipped_sessions_and_errors(capsys):
    assert main(["fit", str(SHIPPED), "--holdout", "--json", "--boot", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sessions"] == 2 and doc["calls"] == 19 and len(doc["holdout"]) == 2
    assert "intervals" in doc["not_separable"]  # two sessions: the bootstrap says it is coarse
    assert main(["fit", str(SHIPPED), "--format", "nope"]) == 2
    assert "format" in capsys.readouterr().err


def test_one_sessions_tail_is_not_charged_to_the_others():
    from labkit.traces.sessionfit import tail_per_call

    r = np.concatenate([np.full(10, 0.5), np.full(10, 0.7), np.full(200, 9.0)])
    session = np.repeat([0, 1, 2], [10, 10, 200])
    assert tail_per_call(r, session) == pytest.approx(0.7)  # the median of the sessions' means, not 8.2
    assert tail_per_call(r[:10], session[:10]) == pytest.approx(0.5)


def test_the_tracelab_fitted_preset_is_the_fit_of_the_shipped_sessions():
    from labkit.traces import shipped_trace

    preset = load_profile("tracelab_fitted")
    fitted = fit_sessions(shipped_trace()).profile(0, "tracelab_fitted")
    for key in ("decode_tps", "prefill_tokens_per_s", "queue_s"):
        assert getattr(preset, key) == pytest.approx(getattr(fitted, key), rel=1e-3), key
    base = load_profile("websocket")
    assert preset.transport == base.transport and preset.safety_in_s == base.safety_in_s


def test_one_spans_table_fits_per_call_on_request(tmp_path, capsys):
    sessions = synth_sessions(Truth(), n_sessions=3, calls_per_session=20, seed=6)
    (spans,) = write_format(sessions, "labkit", tmp_path)
    assert main(["fit", str(spans), "--per-call", "--json", "--boot", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sessions"] == 3 and "call_fixed_s" in doc["parameters"] and "holdout" not in doc
    assert main(["fit", str(spans), "--holdout", "--json", "--boot", "30"]) == 0
    assert len(json.loads(capsys.readouterr().out)["holdout"]) == 3
