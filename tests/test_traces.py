"""Importers (Codex, TraceLab, OTLP, labkit spans), trace workloads, replay, exporters: small fixtures, no sockets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from labkit.cli import main
from labkit.model import load_profile, load_workload
from labkit.sim.analytic import forecast
from labkit.sim.des import simulate
from labkit.traces import (
    TraceError,
    detect_format,
    load_trace,
    read_spans_file,
    replay,
    shipped_trace,
    spans_to_otlp,
    spans_to_perfetto,
    summary,
    trace_workload,
)
from labkit.traces.otlp import read_otlp
from labkit.traces.spansio import sessions_from_spans

FIX = Path(__file__).parent / "fixtures" / "traces"


# -- Codex CLI rollouts ---------------------------------------------------------------------------------------


def test_codex_rollout_calls_tokens_tools_and_skips():
    (s,) = load_trace(FIX / "codex_rollout.jsonl")
    assert s.format == "codex" and s.id == "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    assert s.model == "gpt-5.3-codex"
    # Three model calls: the repeated totals and the info=null rate-limit update are not calls.
    assert [c.input_tokens for c in s.calls] == [70000, 70900, 71300]
    assert [c.cached_input_tokens for c in s.calls] == [66000, 69000, 70000]
    assert [c.output_tokens for c in s.calls] == [280, 300, 240]
    assert [c.reasoning_tokens for c in s.calls] == [40, 50, 30]
    assert s.skipped == {
        "token_count without info": 1,
        "repeated token totals": 1,
        "unknown line type 'ghost_snapshot'": 1,
    }
    first, second, last = s.calls
    # Two function calls issued in one response, paired with outputs written after the token count.
    assert [t.call_id for t in first.tool_calls] == ["call_a1", "call_a2"]
    assert first.tool_calls[0].duration_s == pytest.approx(0.11)  # exec_command_end's duration wins
    assert first.tool_calls[1].seconds == pytest.approx(0.5, abs=1e-6)  # 03.650 - 03.150
    assert first.parallel and first.tool_s == pytest.approx(0.5, abs=1e-6)
    assert second.tool_calls[0].name == "apply_patch" and second.tool_calls[0].seconds == pytest.approx(0.15, abs=1e-6)
    assert last.tool_calls == ()
    # Request time: the user message before the first output item; end: the counted token_count line.
    assert first.start_s == pytest.approx(0.041, abs=1e-6) and first.end_s == pytest.approx(3.16, abs=1e-6)
    assert second.start_s == pytest.approx(3.65, abs=1e-6)  # the last tool output before its first item
    assert last.start_s == pytest.approx(6.05, abs=1e-6)


def test_codex_legacy_bare_items_and_totals_only():
    (s,) = load_trace(FIX / "codex_legacy.jsonl", "codex")
    assert s.id == "legacy-session-1"
    # No last_token_usage: each call's tokens are the difference of the totals.
    assert [(c.input_tokens, c.cached_input_tokens, c.output_tokens) for c in s.calls] == [
        (5000, 0, 60),
        (5100, 4800, 30),
    ]
    assert s.skipped["legacy state line"] == 3
    assert [t.name for t in s.calls[0].tool_calls] == ["shell"]


def test_codex_broken_lines_name_file_line_and_field():
    with pytest.raises(TraceError, match=r"total_token_usage\.input_tokens: .*codex_broken_usage\.jsonl:3:"):
        load_trace(FIX / "codex_broken_usage.jsonl")
    with pytest.raises(TraceError, match=r"line: .*codex_not_json\.jsonl:2: not JSON"):
        load_trace(FIX / "codex_not_json.jsonl", "codex")


# -- TraceLab ------------------------------------------------------------------------------------------------


def test_shipped_tracelab_sessions():
    trace = shipped_trace()
    assert [s.format for s in trace] == ["tracelab", "tracelab"]
    codex = next(s for s in trace if s.id.startswith("codex:"))
    assert len(codex.calls) == 9 and codex.tool_calls == 10
    assert codex.calls[0].input_tokens == 9324 and codex.calls[0].cached_input_tokens == 6912
    assert codex.calls[0].reasoning_tokens == 199 and len(codex.calls[0].tool_calls) == 3
    # Request sent = the latest input event; end = the latest output event (TraceLab's own proxy).
    assert codex.calls[1].seconds == pytest.approx(8.390 - 6.704, abs=1e-6)
    assert codex.calls[0].tool_calls[2].seconds == pytest.approx(1.176)
    table = summary(trace)
    assert list(table["model_calls"]) == [10, 9]
    assert table.loc[1, "max_parallel_tools"] == 3
    # The agent-loop time leaves out the user's think time between the session's three tasks.
    assert codex.measured_s() < codex.calls[-1].end_s - codex.calls[0].start_s - 20


def test_tracelab_broken_row():
    with pytest.raises(TraceError, match=r"prefix_tokens: .*tracelab_broken\.jsonl:2: 70000 exceeds"):
        load_trace(FIX / "tracelab_broken.jsonl")


# -- OTLP ----------------------------------------------------------------------------------------------------


def test_otlp_genai_import_single_object_and_collector_lines():
    (s,) = load_trace(FIX / "otlp_genai.json")
    assert s.format == "otlp" and s.model == "gpt-5.3-codex-2026-02"
    assert [(c.input_tokens, c.cached_input_tokens, c.output_tokens, c.reasoning_tokens) for c in s.calls] == [
        (70000, 66000, 280, 40),
        (70900, 69000, 300, 50),
    ]
    assert s.calls[0].ttft_s == 1.25 and s.calls[1].ttft_s is None
    assert [t.call_id for t in s.calls[0].tool_calls] == ["call_a1", "call_a2"] and s.calls[0].parallel
    assert s.skipped == {"span operation 'create_agent'": 1}
    (lines,) = load_trace(FIX / "otlp_collector.jsonl")
    assert detect_format(FIX / "otlp_collector.jsonl") == "otlp"
    assert [c.input_tokens for c in lines.calls] == [70000, 70900]
    with pytest.raises(TraceError, match=r"resourceSpans: .*otlp_not_traces\.json:1: missing"):
        load_trace(FIX / "otlp_not_traces.json", "otlp")


def test_large_single_document_otlp_is_detected(sim_spans, tmp_path):
    doc = spans_to_otlp(sim_spans)
    # A document larger than the head the detector parses (a long session's export): a big resource attribute.
    doc["resourceSpans"][0]["resource"]["attributes"].append(
        {"key": "padding", "value": {"stringValue": "x" * (1 << 20)}}
    )
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    assert path.stat().st_size > 1 << 20
    assert detect_format(path) == "otlp" and len(load_trace(path)) == 2


def test_unknown_format_is_an_error(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"hello": 1}\n')
    with pytest.raises(TraceError, match="cannot tell the format"):
        load_trace(p)
    with pytest.raises(ValueError, match="format: expected one of"):
        load_trace(p, "har")


# -- labkit spans, exporters, round trip ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim_spans() -> pd.DataFrame:
    return simulate(load_profile("websocket"), load_workload("fast_test"), rollouts=2, seed=3)


def test_spans_csv_and_parquet_import(sim_spans, tmp_path):
    sim_spans.to_csv(tmp_path / "s.csv", index=False)
    sim_spans.to_parquet(tmp_path / "s.parquet")
    a = load_trace(tmp_path / "s.csv")
    b = load_trace(tmp_path / "s.parquet")
    assert len(a) == 2 and [c.input_tokens for c in a.sessions[0].calls] == [
        c.input_tokens for c in b.sessions[0].calls
    ]
    w = load_workload("fast_test")
    specs = w.turn_specs(3 * 1_000_003 + 0 + w.seed)  # the DES's seed of rollout 0
    assert [c.input_tokens for c in a.sessions[0].calls] == [s.conversation_tokens for s in specs]
    assert [c.output_tokens for c in a.sessions[0].calls] == [s.output_tokens for s in specs]
    bad = tmp_path / "bad.csv"
    text = (tmp_path / "s.csv").read_text().splitlines()
    cols = text[1].split(",")
    cols[5] = "soon"
    text[1] = ",".join(cols)
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(TraceError, match=r"start_s: .*bad\.csv:2: not a number"):
        read_spans_file(bad)


def test_otlp_export_parses_as_proto_and_round_trips(sim_spans, tmp_path):
    from google.protobuf.json_format import Parse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = spans_to_otlp(sim_spans, origin_unix_ns=1_772_442_000_000_000_000)
    req = Parse(json.dumps(doc), ExportTraceServiceRequest())
    spans = req.resource_spans[0].scope_spans[0].spans
    names = [s.name.split(" ")[0] for s in spans]
    assert names.count("invoke_agent") == 2 and names.count("chat") == 10 and names.count("execute_tool") == 8
    chat = next(s for s in spans if s.name.startswith("chat"))
    keys = {a.key for a in chat.attributes}
    assert {"gen_ai.usage.input_tokens", "gen_ai.response.time_to_first_chunk", "labkit.transport"} <= keys
    path = tmp_path / "out.json"
    path.write_text(json.dumps(doc))
    back = read_otlp(path)
    direct = sessions_from_spans(sim_spans)
    for s_back, s_direct in zip(back, direct, strict=True):
        assert [
            (c.input_tokens, c.cached_input_tokens, c.output_tokens, c.reasoning_tokens, len(c.tool_calls))
            for c in s_back.calls
        ] == [
            (c.input_tokens, c.cached_input_tokens, c.output_tokens, c.reasoning_tokens, len(c.tool_calls))
            for c in s_direct.calls
        ]


def test_perfetto_export_one_track_per_rollout(sim_spans):
    doc = spans_to_perfetto(sim_spans)
    ev = doc["traceEvents"]
    threads = [e for e in ev if e["ph"] == "M" and e["name"] == "thread_name"]
    assert [t["args"]["name"] for t in threads] == ["rollout 0", "rollout 1"]
    slices = [e for e in ev if e["ph"] == "X"]
    assert all(e["dur"] >= 0 for e in slices)
    # Stages nest inside their turn's slice on the same track.
    for turn in (e for e in slices if e["cat"] == "turn"):
        inner = [
            e
            for e in slices
            if e["tid"] == turn["tid"] and e["cat"] == "stage" and e["args"]["turn"] == int(turn["name"][5:])
        ]
        assert inner and all(
            turn["ts"] - 1e-3 <= e["ts"] and e["ts"] + e["dur"] <= turn["ts"] + turn["dur"] + 1e-3 for e in inner
        )


def test_cli_export_both_formats(sim_spans, tmp_path, capsys):
    sim_spans.to_csv(tmp_path / "s.csv", index=False)
    assert main(["export", str(tmp_path / "s.csv"), "--format", "otlp", "--out", str(tmp_path / "o.json")]) == 0
    assert main(["export", str(tmp_path / "s.csv"), "--format", "perfetto", "--out", str(tmp_path / "p.json")]) == 0
    assert "resourceSpans" in json.loads((tmp_path / "o.json").read_text())
    assert "traceEvents" in json.loads((tmp_path / "p.json").read_text())


# -- trace workloads and replay ------------------------------------------------------------------------------


def test_trace_workload_drives_closed_form_and_des():
    (s,) = load_trace(FIX / "codex_rollout.jsonl")
    w = trace_workload(s)
    specs = w.turn_specs()
    assert specs == w.turn_specs(seed=99)
    assert [(t.context_tokens, t.new_input_tokens) for t in specs] == [(0, 70000), (70280, 620), (71200, 100)]
    assert [t.output_tokens for t in specs] == [240, 250, 210] and [t.reasoning_tokens for t in specs] == [40, 50, 30]
    assert (
        [t.tool_calls for t in specs] == [2, 1, 0]
        and specs[0].tool_s == pytest.approx(0.5, abs=1e-6)
        and specs[-1].final
    )
    assert w.tool_calls == 3 and w.prefix_cache_share == pytest.approx((69000 + 70000) / (70280 + 71200))
    prof = load_profile("websocket")
    closed = forecast(prof, w).e2e_s
    des = simulate(prof, w)
    assert des["end_s"].max() - des["start_s"].min() == pytest.approx(closed, rel=1e-9)


def test_replay_json_contract(capsys):
    assert main(["replay", "--profiles", "http_baseline,websocket", "--tps", "65,1000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    keys = {
        "id", "format", "model_calls", "tool_calls", "input_tokens", "cached_input_tokens", "output_tokens",
        "reasoning_tokens", "skipped_lines", "predicted_e2e_s", "measured_s",
    }  # fmt: skip
    assert len(doc["sessions"]) == 2
    for s in doc["sessions"]:
        assert keys <= set(s)
        assert set(s["predicted_e2e_s"]) == {"http_baseline", "websocket"}
        assert set(s["predicted_e2e_s"]["websocket"]) == {"65", "1000"}
        # WebSocket mode saves time on real sessions, more of it (as a share) at 1,000 TPS than at 65.
        gain = {
            k: 1 - s["predicted_e2e_s"]["websocket"][k] / s["predicted_e2e_s"]["http_baseline"][k]
            for k in ("65", "1000")
        }
        assert 0 < gain["65"] < gain["1000"]
        assert s["measured_s"] > 0


def test_replay_accepts_profile_files_and_reports_errors(tmp_path, capsys):
    p = tmp_path / "mine.toml"
    p.write_text('[profile]\nname = "mine"\nbase = "websocket"\ndecode_tps = 65\n')
    (r,) = replay(load_trace(FIX / "codex_rollout.jsonl"), [str(p)])
    assert list(r.predicted_e2e_s) == ["mine"] and list(r.predicted_e2e_s["mine"]) == ["65"]
    assert main(["replay", str(FIX / "codex_broken_usage.jsonl")]) == 2
    assert "codex_broken_usage.jsonl:3" in capsys.readouterr().err
    assert main(["replay", "--tps", "fast"]) == 2


def test_directory_of_sessions(tmp_path):
    d = tmp_path / "sessions" / "2026" / "03" / "02"
    d.mkdir(parents=True)
    (d / "rollout-a.jsonl").write_text((FIX / "codex_rollout.jsonl").read_text())
    (d / "rollout-b.jsonl").write_text((FIX / "codex_legacy.jsonl").read_text())
    trace = load_trace(tmp_path / "sessions")
    assert len(trace) == 2 and not math.isnan(summary(trace)["input_median"].iloc[0])


def test_trace_figures_from_the_shipped_sessions():
    from labkit.traces import calls_frame, replay_frame, tools_frame
    from labkit.viz import traces as tviz

    trace = shipped_trace()
    codex = trace.sessions[1]
    fig = tviz.session_calls(calls_frame(codex))
    assert [t.name for t in fig.data] == [
        "cached input",
        "uncached input",
        "reasoning",
        "visible output",
        "longest tool call",
    ]
    assert list(fig.data[-1].text[:1]) == ["3"]  # three tool calls answered in parallel in the first response
    tools = pd.concat([tools_frame(s) for s in trace])
    assert len(tviz.tool_time_ecdf(tools).data) == 2
    frame = replay_frame(replay(trace, ["http_baseline", "websocket"], [65, 1000]))
    bars = tviz.replay_bars(frame, 1000)
    assert {t.name for t in bars.data} >= {"measured (as recorded)"}
    assert len(tviz.whatif_curve(frame, codex.id).data) == 2
    with pytest.raises(ValueError, match="tps: no replay at 300"):
        tviz.replay_bars(frame, 300)
    table = pd.DataFrame(
        {"parameter": ["decode_tps"], "value": [990.0], "lo": [980.0], "hi": [1000.0], "reference": [1000.0]}
    )
    assert tviz.fit_parameters(table).data[0].x[0] == pytest.approx(0.99)


def test_codex_version_with_last_usage_only():
    (s,) = load_trace(FIX / "codex_last_only.jsonl")
    assert [(c.input_tokens, c.output_tokens, c.reasoning_tokens) for c in s.calls] == [
        (90000, 120, 20),
        (90200, 80, 0),
    ]
    assert s.skipped == {"repeated token usage": 1}
    assert s.calls[0].tool_calls[0].seconds == pytest.approx(0.3, abs=1e-6)


def test_turn_table_counts_fallbacks_and_keeps_the_last_attempts_sizes():
    from labkit.sim.des import Faults
    from labkit.traces import turn_table

    spans = simulate(
        load_profile("websocket"), load_workload("codex_bugfix"), rollouts=4, seed=2, faults=Faults(drop_rate=0.2)
    )
    t = turn_table(spans)
    retried = t[t["attempts"] > 1]
    assert len(retried) and len(t) == 4 * 25
    for r in retried.itertuples():
        g = spans[(spans["rollout"] == r.rollout) & (spans["turn"] == r.turn)]
        assert r.start_s == g[g["stage"] != "tool"]["start_s"].min()  # the failed attempt's cost is in the turn
        # A fallback re-sends the whole history as a new chain: the retry is not chained.
        assert not r.chained and r.input_tokens == r.sent_tokens
