"""Seeded fault injection: drops, stalls, 5xx failures; the `labkit serve` subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
import websockets
from test_server_support import create, sim_server, sse_events, ws_events

from labkit.live.memory import memory_connect
from labkit.live.server import Faults, SimServer
from labkit.live.server.faults import FaultInjector
from labkit.model import load_workload

# Tests that need a socket (HTTP, the upgrade, framing) are marked live; WebSocket mode's rules run in
# memory (labkit.live.memory), in make test-fast.

WL = load_workload("fast_test")


@pytest.mark.live
def test_fault_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="^drop_rate"):
        Faults(drop_rate=1.5)
    with pytest.raises(ValueError, match="^stall_s"):
        Faults(stall_s=-1)
    with pytest.raises(ValueError, match="^drop_after_events"):
        Faults(drop_after_events=0)


@pytest.mark.live
def test_fault_draws_are_seeded() -> None:
    f = Faults(seed=7, drop_rate=0.3, stall_rate=0.3, evict_rate=0.3, fail_rate=0.3, stall_s=0.1)
    a = [FaultInjector(f).draw(50) for _ in range(1)] + [FaultInjector(f).draw(50)]
    assert a[0] == a[1]
    one, other = FaultInjector(f), FaultInjector(Faults(seed=8, drop_rate=0.3, fail_rate=0.3))
    assert [one.draw(50) for _ in range(20)] != [other.draw(50) for _ in range(20)]
    assert FaultInjector(Faults()).draw(50) == FaultInjector(Faults(seed=3)).draw(50)


async def test_ws_drop_after_n_events() -> None:
    async with sim_server(workload=WL, instant=True, faults=Faults(drop_after_events=5)) as server:
        async with memory_connect(server) as ws:
            await ws.send(json.dumps(create("x")))
            got = []
            with pytest.raises(websockets.ConnectionClosedError):
                while True:
                    got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert len(got) == 5
            assert all(e["type"] != "response.completed" for e in got)
        assert server.metrics["faults_dropped"] == 1
        assert server.metrics["connections_open"] == 0


async def test_random_drop_point_is_within_the_response() -> None:
    faults = Faults(seed=5, drop_rate=1.0)
    async with sim_server(workload=WL, instant=True, faults=faults) as server:
        counts = []
        for _ in range(3):
            async with memory_connect(server) as ws:
                await ws.send(json.dumps(create("x")))
                n = 0
                with pytest.raises(websockets.ConnectionClosedError):
                    while True:
                        ev = json.loads(await asyncio.wait_for(ws.recv(), 5))
                        assert ev["type"] != "response.completed"
                        n += 1
                counts.append(n)
        assert all(n >= 1 for n in counts)


@pytest.mark.live
async def test_sse_drop_cuts_the_stream() -> None:
    async with (
        SimServer(workload=WL, instant=True, faults=Faults(drop_after_events=3)) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        with pytest.raises(httpx.HTTPError):
            await sse_events(c, {"model": "m", "input": "x"})
        # A JSON answer is one message: the event count never reaches the limit, the answer arrives.
        assert (await c.post("/responses", json={"model": "m", "input": "x"})).status_code == 200
    # A random drop point cuts a JSON answer too (the connection closes without a response).
    async with (
        SimServer(workload=WL, instant=True, faults=Faults(drop_rate=1.0)) as server,
        httpx.AsyncClient(base_url=server.base_url) as c,
    ):
        with pytest.raises(httpx.HTTPError):
            await c.post("/responses", json={"model": "m", "input": "x"})


@pytest.mark.live
async def test_failures_per_transport() -> None:
    async with SimServer(workload=WL, instant=True, faults=Faults(fail_rate=1.0)) as server:
        async with websockets.connect(server.ws_url) as ws:
            events = await ws_events(ws, create("x", stream_id="a"), stream_id="a")
            # Over WebSocket as over SSE: the started response ends in response.failed, in sequence.
            failed = events[-1]
            assert failed["type"] == "response.failed" and failed["stream_id"] == "a"
            assert failed["response"]["status"] == "failed"
            assert failed["response"]["error"]["code"] == "server_error"
            assert [e["sequence_number"] for e in events] == list(range(len(events)))
        async with httpx.AsyncClient(base_url=server.base_url) as c:
            events = await sse_events(c, {"model": "m", "input": "x"})
            assert events[-1]["type"] == "response.failed"
            assert events[-1]["response"]["status"] == "failed"
            assert events[-1]["response"]["error"]["code"] == "server_error"
            r = await c.post("/responses", json={"model": "m", "input": "x"})
            assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
        assert server.metrics["faults_failed"] == 3


async def test_stall_delays_the_first_delta() -> None:
    stall = 0.2
    async with sim_server(workload=WL, instant=True, faults=Faults(stall_rate=1.0, stall_s=stall)) as server:
        async with memory_connect(server) as ws:
            await ws_events(ws, create("x"))
        (turn,) = server.turn_log
        assert turn.t_first - turn.t0 >= stall  # instant mode: the stall is the only wait
        assert server.metrics["faults_stalled"] == 1


@pytest.mark.live
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_cli_starts_answers_and_stops_on_a_signal(sig: signal.Signals) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LABKIT_SERVER_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit", "serve", "--port", "0", "--profile", "websocket", "--tps", "4000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)\b", line)
        assert match, line
        r = httpx.post(match.group(1) + "/responses", json={"model": "m", "input": "hi"}, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "completed"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "warning" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.live
def test_serve_cli_bad_input_and_non_loopback_warning(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from labkit.cli import main, serve

    assert main(["serve", "--profile", "nope"]) == 2
    assert "profile" in capsys.readouterr().err
    assert main(["serve", "--fail-rate", "2"]) == 2
    assert "fail_rate" in capsys.readouterr().err

    started = []

    async def fake_serve(server: SimServer) -> None:  # decides, never binds
        started.append(server)

    monkeypatch.setattr(serve, "_serve", fake_serve)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 0
    assert "warning" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--api-key", "k", "--port", "0"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert started[0].host == "0.0.0.0"
