"""Recordings without sockets: matching keys, mismatch messages, replay timing by profile, spans with tool time."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.live.recording import Event, Exchange, Recording, RecordingError, match_key, write_spans
from labkit.live.server.replay import ReplayServer, _first_difference
from labkit.wire.protocol import ProtocolError


def _exchange(seq: int, t: float, request: dict, rid: str, call: bool) -> Exchange:
    item = (
        {
            "type": "function_call",
            "call_id": f"c{seq}",
            "name": "f",
            "arguments": "{}",
            "id": "fc",
            "status": "completed",
        }
        if call
        else {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}
    )
    delta = "response.function_call_arguments.delta" if call else "response.output_text.delta"
    events = (
        Event(t + 0.01, {"type": "response.created", "response": {"id": rid}}),
        Event(t + 0.20, {"type": delta, "delta": "abcd", "output_index": 0}),
        Event(t + 0.30, {"type": delta, "delta": "efgh", "output_index": 0}),
        Event(t + 0.35, {"type": "response.completed", "response": {"id": rid, "status": "completed", "output": [item],
                                                                     "usage": {"output_tokens": 2}}}),
    )  # fmt: skip
    return Exchange(seq, "websocket", "POST", "/responses", t, t + 0.35, request, 200, events, connection=1)


def _recording() -> Recording:
    first = {"type": "response.create", "model": "m", "input": "go", "stream": True}
    second = {"model": "m", "input": [{"type": "function_call_output", "call_id": "c1", "output": "ok"}],
              "previous_response_id": "resp_1"}  # fmt: skip
    return Recording([_exchange(1, 0.0, first, "resp_1", True), _exchange(2, 1.0, second, "resp_2", False)])


def test_match_keys_ignore_transport_fields_only() -> None:
    ws = {"type": "response.create", "model": "m", "input": "go", "stream_id": "a"}
    assert match_key("POST", "/responses", ws) == match_key("POST", "/responses", {"model": "m", "input": "go"})
    assert match_key("POST", "/responses", ws) != match_key("POST", "/responses", {"model": "m", "input": "stop"})


def test_a_mismatch_names_where_the_request_differs() -> None:
    server = ReplayServer(_recording(), timing="instant")
    assert server.match("POST", "/responses", {"model": "m", "input": "go"}).seq == 1
    with pytest.raises(ProtocolError) as exc:
        server.match("POST", "/responses", {"model": "m", "input": "go"})
    assert exc.value.code == "replay_mismatch" and "recorded #2 differs at input" in exc.value.message
    assert _first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == "a[1].b: 2 != 3 (recorded)"


def test_profile_timing_paces_deltas_at_the_profiles_rate() -> None:
    server = ReplayServer(_recording(), timing="profile", profile="websocket")
    offsets = server._offsets(_recording().exchanges[0])
    assert offsets == sorted(offsets) and offsets[0] == 0.0 and offsets[1] > 0
    assert offsets[2] - offsets[1] == pytest.approx(1 / server.profile.decode_tps)
    assert ReplayServer(_recording(), timing="recorded")._offsets(_recording().exchanges[1]) == pytest.approx(
        [0.01, 0.2, 0.3, 0.35]
    )


def test_spans_make_one_rollout_with_the_tool_time_between_turns(tmp_path) -> None:
    path = tmp_path / "spans.csv"
    assert write_spans(_recording(), path) > 0
    spans = pd.read_csv(path)
    assert set(spans["rollout"]) == {0} and set(spans["turn"]) == {0, 1}
    tool = spans[spans["stage"] == "tool"].iloc[0]
    assert (tool["turn"], tool["start_s"], tool["end_s"]) == (0, pytest.approx(0.35), pytest.approx(1.0))


def test_a_bad_recording_names_the_file_and_line(tmp_path) -> None:
    with pytest.raises(RecordingError, match="no recording.ndjson"):
        Recording.read(tmp_path)
    (tmp_path / "recording.ndjson").write_text('{"labkit_recording": 1}\nnot json\n')
    with pytest.raises(RecordingError, match=r"recording.ndjson:2: not JSON"):
        Recording.read(tmp_path)
