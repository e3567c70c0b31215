"""Prediction vs measurement, and the measure / validate commands.

The accuracy target (median per-turn error within max(1 ms, 2%) at 1,000 TPS) is a property of this
machine: ``labkit validate`` reports it. The tests check behaviour that holds on any machine: the live
run produces the same turns and output sizes as the model, and the paced server is never earlier than
the model says.
"""

from __future__ import annotations

import dataclasses
import json
import select
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.metrics import turn_metrics
from labkit.cli import main
from labkit.experiments.validate import (
    BREAKDOWN_COLUMNS,
    DEFAULT_PROFILE,
    check_transport_profile,
    error_summary,
    predict_and_measure,
    predict_spans,
    resolve_profile,
    turn_errors,
)
from labkit.model import load_profile, load_workload

pytestmark = pytest.mark.live

WORKLOAD = load_workload("fast_test")
SUMMARY_KEYS = {"median_abs_error_s", "median_rel_error", "p95_rel_error", "turns"}


def test_prediction_is_the_loopback_model_per_turn():
    profile = load_profile("websocket", decode_tps=1000.0)
    spans, predictor = predict_spans(profile, WORKLOAD, rollouts=2)
    assert predictor in ("des", "analytic")
    tm = turn_metrics(spans)
    assert sorted(tm["rollout"].unique()) == [0, 1] and len(tm) == 2 * WORKLOAD.turns
    # Repetitions of one scenario have one prediction; the network stages are zero on loopback.
    a, b = (tm[tm["rollout"] == r]["latency_s"].to_numpy() for r in (0, 1))
    assert np.array_equal(a, b)
    network = spans[spans["stage"].isin(["connect", "upload", "download"])]
    assert ((network["end_s"] - network["start_s"]) == 0).all()
    from labkit.sim.analytic import forecast

    assert np.allclose(a, forecast(profile.loopback(), WORKLOAD).turn_latency_s)


def test_errors_are_measured_minus_predicted():
    predicted, _ = predict_spans(load_profile("websocket"), WORKLOAD)
    shift = 0.004
    measured = predicted.copy()
    # Stretch every turn's last request stage by a constant: latency +4 ms, TTFT unchanged.
    last = measured[measured["stage"] != "tool"].groupby("turn")["end_s"].idxmax()
    measured.loc[last, "end_s"] += shift
    turns = turn_errors(predicted, measured)
    assert np.allclose(turns["error_s"], shift) and np.allclose(turns["ttft_error_s"], 0.0)
    s = error_summary(turns)
    assert set(s) >= SUMMARY_KEYS and s["turns"] == WORKLOAD.turns
    assert s["median_abs_error_s"] == pytest.approx(shift)
    assert s["median_rel_error"] == pytest.approx(np.median(shift / turns["predicted_latency_s"]))
    assert s["tokens_mismatch"] == 0 and s["fallbacks"] == 0
    with pytest.raises(ValueError, match="^turns"):
        error_summary(turns.iloc[0:0])


def test_profiles_must_match_the_transport():
    assert resolve_profile(None, "ws", 500).name == DEFAULT_PROFILE["ws"]
    assert resolve_profile(None, "ws", 500).decode_tps == 500
    check_transport_profile("http-chained", load_profile("http_chained"))
    with pytest.raises(ValueError, match="^profile"):
        check_transport_profile("ws", load_profile("http_baseline"))
    with pytest.raises(ValueError, match="^transport"):
        resolve_profile(None, "smoke-signals", 1000)
    with pytest.raises(ValueError, match="^tps"):
        resolve_profile(None, "ws", -1)


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_live_run_matches_the_models_turns(transport):
    v = await predict_and_measure(None, WORKLOAD, 2000, transport)
    summary = v.summary()
    assert summary.turns == WORKLOAD.turns and summary.tokens_mismatch == 0 and summary.fallbacks == 0
    assert isinstance(summary.target_met, bool) and summary.median_server_overrun_s is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.turns = 0  # type: ignore[misc]
    s = v.to_dict()
    assert s == summary.to_dict() and json.loads(json.dumps(s)) == s
    assert set(v.measured["source"]) == {"live"} and set(v.predicted["source"]) <= {"sim", "analytic"}
    # The server waits until each deadline of the model's plan: a measurement is never earlier.
    assert (v.turns["error_s"] > -5e-4).all() and (v.turns["ttft_error_s"] > -5e-4).all()
    assert np.isfinite(v.turns[["error_s", "rel_error", "ttft_error_s"]].to_numpy()).all()
    # The server's own plan for each turn is the model's prediction, so the parts the probe separates
    # (before send, client->server, server overrun, server->client) add up to each turn's error.
    parts = v.breakdown.set_index(["rollout", "turn"])
    errors = v.turns.set_index(["rollout", "turn"])
    assert len(parts) == WORKLOAD.turns
    assert np.allclose(parts["planned_server_s"], errors["predicted_latency_s"], atol=1e-9)
    assert np.allclose(parts[list(BREAKDOWN_COLUMNS)].sum(axis=1), errors["error_s"], atol=1e-6)
    assert (parts["server_overrun_s"] > -5e-4).all()
    assert {f"median_{c}" for c in BREAKDOWN_COLUMNS} <= set(s)


def test_validate_command_prints_the_summary(capsys, tmp_path):
    csv = tmp_path / "turns.csv"
    assert main(["validate", "--tps", "2000", "--workload", "fast_test", "--json", "--csv", str(csv)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert set(s) >= SUMMARY_KEYS and s["turns"] == WORKLOAD.turns and s["transport"] == "ws"
    assert len(pd.read_csv(csv)) == WORKLOAD.turns
    figures = tmp_path / "figures"
    argv = ["validate", "--tps", "2000", "--workload", "fast_test", "--transport", "http-chained"]
    assert main([*argv, "--figure", str(figures)]) == 0
    out = capsys.readouterr().out
    for key in SUMMARY_KEYS:
        assert key in out
    names = {p.name for p in figures.iterdir()}
    assert {"validate_http_chained_fast_test_latency.html", "validate_http_chained_fast_test_ttft.html"} <= names


def test_measure_command_against_its_own_server(capsys, tmp_path):
    spans, events = tmp_path / "spans.csv", tmp_path / "events.csv"
    argv = ["measure", "--transport", "http", "--tps", "4000", "--workload", "fast_test", "--json"]
    assert main([*argv, "--spans", str(spans), "--events", str(events)]) == 0
    s = json.loads(capsys.readouterr().out)
    table = pd.read_csv(spans)
    assert set(table["source"]) == {"live"} and table["turn"].nunique() == WORKLOAD.turns
    assert {"turn", "attempt", "type", "t_s"} <= set(pd.read_csv(events).columns)
    assert s["profile"] == "http_optimized" and s["configured_tps"] == 4000 and s["turns"] == WORKLOAD.turns
    assert 0 < s["ttft_p50_s"] <= s["turn_latency_p50_s"] <= s["e2e_p50_s"]
    assert main(["measure", "--transport", "ws", "--profile", "http_baseline"]) == 2
    assert "profile" in capsys.readouterr().err


def test_measure_command_against_a_base_url(capsys):
    # A separate `labkit serve` process: measure must work against any URL, as against the real API.
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit", "serve", "--port", "0", "--instant", "--workload", "fast_test"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            # Never block on a silent child: wait for a line at most until the deadline.
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else ""
            if "http://" in line:
                url = line[line.index("http://") :].split()[0]
            elif ready and not line:
                break  # the child exited
        assert url, "labkit serve did not print its URL"
        base = url if url.rstrip("/").endswith("/v1") else url.rstrip("/") + "/v1"
        argv = ["measure", "--transport", "ws", "--workload", "fast_test", "--rollouts", "2", "--base-url", base]
        assert main([*argv, "--json"]) == 0
        s = json.loads(capsys.readouterr().out)
        assert s["base_url"] == base and s["rollouts"] == 2 and s["turns"] == 2 * WORKLOAD.turns
        assert main([*argv, "--tps", "1000"]) == 2
        assert main(argv) == 0
        assert "TTFT" in capsys.readouterr().out
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_profiles_by_path(capsys, tmp_path):
    # A profile file: a preset as its base, one value changed, its own name.
    path = tmp_path / "fast_ws.toml"
    path.write_text('[profile]\nname = "fast_ws"\nbase = "websocket"\ndecode_tps = 3000.0\n')
    assert resolve_profile(str(path), "ws", None).decode_tps == 3000.0
    argv = ["--workload", "fast_test", "--profile", str(path), "--json"]
    assert main(["validate", *argv]) == 0
    s = json.loads(capsys.readouterr().out)
    # validate's --tps (default 1000) applies over the file's rate; measure keeps the file's.
    assert s["profile"] == "fast_ws" and s["tps"] == 1000.0 and s["turns"] == WORKLOAD.turns
    assert main(["measure", *argv]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["profile"] == "fast_ws" and m["configured_tps"] == 3000.0 and m["tool_calls"] == WORKLOAD.turns - 1
    # A file whose base is an HTTP preset describes another system than --transport ws.
    http = tmp_path / "slow_http.toml"
    http.write_text('base = "http_baseline"\n')
    assert main(["measure", "--workload", "fast_test", "--profile", str(http)]) == 2
    assert "profile" in capsys.readouterr().err


async def test_measure_returns_a_frozen_summary():
    from labkit.experiments.measure import MeasureSummary, measure

    m = await measure("ws", WORKLOAD, tps=4000)
    s = m.summary()
    assert isinstance(s, MeasureSummary) and s.turns == WORKLOAD.turns and s.rollouts == 1
    assert s.tool_calls == WORKLOAD.turns - 1 and s.queued_responses == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.turns = 0  # type: ignore[misc]
    assert m.to_dict() == s.to_dict() and json.loads(json.dumps(m.to_dict()))["transport"] == "ws"
    with pytest.raises(ValueError, match="^workload"):
        await measure("ws", _Trace())


class _Trace:
    name = "trace"

    def turn_specs(self, seed):
        return WORKLOAD.turn_specs(seed)
