"""Every conformance scenario through raw ``websockets`` / ``httpx`` against the simulator (no SDK in between).

The same scenarios run against the real API with ``labkit conformance --base-url URL --out DIR``.
"""

from __future__ import annotations

import json

import pytest

from labkit.cli import main as cli
from labkit.live.server.conformance import SCENARIOS, Scenario, Target, run_scenario

pytestmark = pytest.mark.live


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(sim, scenario: Scenario) -> None:
    result = await run_scenario(Target(sim.base_url), scenario, timeout_s=30)
    assert result.ok, result.failures
    assert result.transcript and result.transcript[0]["dir"] == "send"
    json.dumps(result.to_dict())  # a transcript is plain JSON


def test_scenarios_catch_a_broken_server(monkeypatch) -> None:
    # The checks can fail: a server that (as labkit's before issue 10) rejects "stream" fails that scenario.
    import asyncio

    from labkit.live.server import conformance as C
    from labkit.wire import protocol

    monkeypatch.setattr(protocol, "_STREAM_FIELDS", frozenset())

    async def go():
        async with C.simulator() as server:
            return await run_scenario(Target(server.base_url), C.select(["ws_stream_and_background_accepted"])[0])

    result = asyncio.run(go())
    assert not result.ok and "expected completed" in result.failures[0]


def test_cli_writes_one_transcript_per_scenario(tmp_path, capsys) -> None:
    names = ["ws_stream_and_background_accepted", "auth_invalid_key"]
    assert cli(["conformance", "--out", str(tmp_path), "--only", *names]) == 0
    for name in names:
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert record["scenario"] == name and record["ok"] and record["server"] == "the in-process simulator"
    assert "2/2 scenarios passed" in capsys.readouterr().out


def test_cli_against_a_base_url_needs_a_key_and_prints_the_cost(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli(["conformance", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    # With a key, the cost is printed before any request (this port refuses: every scenario fails fast).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code = cli(["conformance", "--base-url", "http://127.0.0.1:9/v1", "--only", "auth_invalid_key", "--timeout", "5"])
    out = capsys.readouterr().out
    assert code == 1 and out.index("at most 1 requests") < out.index("FAIL auth_invalid_key")
