"""Per-call timing from every importer: Codex >= 0.147 rollouts, TraceLab's TTFT, human wait kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.traces import load_trace, shipped_trace, trace_workload
from labkit.traces.synth import SYNTH_FORMATS, Truth, synth_sessions, write_format
from labkit.traces.timing import session_timing, trace_timings

FIX = Path(__file__).parent / "fixtures" / "traces"


def test_codex_0147_item_completed_rollout():
    (s,) = load_trace(FIX / "codex_0147.jsonl")
    assert s.id == "019b0c1d-2e3f-7a4b-9c5d-6e7f8a9b0c1d" and s.model == "gpt-5.4-codex"
    # Four calls: the rate-limit-only count and the repeated totals are not calls.
    assert [c.input_tokens for c in s.calls] == [20000, 20600, 20800, 21000]
    assert [c.cached_input_tokens for c in s.calls] == [12000, 19500, 19500, 20500]
    assert [c.reasoning_tokens for c in s.calls] == [100, 10, 40, 0]
    assert s.skipped == {
        "token_count without info": 1,
        "repeated token totals": 1,
        "unknown line type 'world_state_snapshot'": 1,
        "unknown item_completed type 'MemoryRecall'": 1,
    }
    first, second, third, last = s.calls
    # Input complete: the UserMessage item (no user_message event in >= 0.147), then the last tool output.
    assert first.start_s == pytest.approx(0.041, abs=1e-6) and first.end_s == pytest.approx(3.03, abs=1e-6)
    assert second.start_s == pytest.approx(7.001, abs=1e-6)  # the CommandExecution item after the last output
    assert third.start_s == pytest.approx(150.011, abs=1e-6)
    # Parallel tool calls; CommandExecution's duration is the tool's own time.
    assert first.parallel
    assert [t.seconds for t in first.tool_calls] == [pytest.approx(3.95), pytest.approx(0.35)]
    # time_to_first_token_ms on task_complete belongs to each turn's first call only.
    assert first.ttft_s == pytest.approx(2.17) and third.ttft_s == pytest.approx(2.59)
    assert second.ttft_s is None and last.ttft_s is None


def test_human_wait_is_kept_apart_from_model_and_tool_time():
    t = session_timing(load_trace(FIX / "codex_0147.jsonl").sessions[0])
    assert [c.human_s > 0 for c in t.calls] == [False, True, False, False]
    assert t.human_s == pytest.approx(150.011 - 9.51, abs=1e-3)
    assert t.model_s == pytest.approx(sum(c.seconds for c in t.calls))
    assert t.model_s == pytest.approx(
        (3.03 - 0.041) + (9.51 - 7.001) + (152.61 - 150.011) + (154.31 - 152.901), abs=1e-3
    )
    assert t.tool_s == pytest.approx((7.001 - 3.03) + (152.901 - 152.61), abs=1e-3)


def test_tracelab_ttft_is_the_first_output_event():
    codex = next(s for s in shipped_trace() if s.id.startswith("codex:"))
    timed = [c for c in codex.calls if c.ttft_s is not None]
    assert timed and all(0 <= c.ttft_s <= c.seconds for c in timed)
    assert any(c.ttft_s < c.seconds for c in timed)  # a reasoning event before the last output


@pytest.mark.parametrize("fmt", SYNTH_FORMATS)
def test_every_format_reads_back_the_generated_model_time(tmp_path, fmt):
    sessions = synth_sessions(Truth(), n_sessions=3, calls_per_session=12, seed=3)
    timings = trace_timings(load_trace(write_format(sessions, fmt, tmp_path)))
    assert len(timings) == 3
    for want, got in zip(sessions, timings, strict=True):
        assert len(got.calls) == len(want.calls)
        assert got.model_s == pytest.approx(want.model_s, abs=2e-3 * len(want.calls))
        # The human waits the generator put between turns are never model time.
        turns = sum(c.opens_turn for c in want.calls)
        assert sum(c.human_s > 1 for c in got.calls) == turns - 1


@pytest.mark.parametrize("profile", ["http_baseline", "http_chained", "websocket", "websocket_prototype"])
def test_the_traces_closed_form_equals_the_analytic_forecast(profile):
    from labkit.model import load_profile, load_workload
    from labkit.sim.analytic import forecast
    from labkit.traces.closedform import expected_e2e_s

    prof = load_profile(profile).with_(replicas=4, routing="random")  # a replica miss is possible
    for w in (load_workload("codex_bugfix"), *(trace_workload(s) for s in shipped_trace())):
        assert expected_e2e_s(prof, w, seed=3) == pytest.approx(forecast(prof, w, seed=3).e2e_s, rel=1e-12)


def test_codex_token_usage_records_mark_the_calls_once(tmp_path):
    sessions = synth_sessions(Truth(), n_sessions=1, calls_per_session=10, seed=8)
    (path,) = write_format(sessions, "codex-usage-records", tmp_path)
    (s,) = load_trace(path)
    assert len(s.calls) == len(sessions[0].calls)  # not one from the record and one from the token_count
    assert s.skipped["repeated token_usage_record"] == len(s.calls)
    # Every token_count is passed over: two per call (the same totals twice) and a rate-limit one per user turn.
    turns = sum(c.opens_turn for c in sessions[0].calls)
    assert s.skipped["token_count snapshot (token_usage_record lines mark the calls)"] == 2 * len(s.calls) + turns
    assert [c.input_tokens for c in s.calls] == [c.input_tokens for c in sessions[0].calls]
