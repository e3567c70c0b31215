"""``server``: server CPU per streamed event (WebSocket) and per SSE request, labkit vs raw baselines.

Each server runs in its own subprocess pinned to one core (:mod:`labkit.bench.servers`); the load
generator runs here, pinned to another core, and is as lean as possible (no JSON parsing on the hot
path). Server CPU time (all threads) is read from ``/proc/PID/task/*/schedstat`` (psutil elsewhere)
before and after each load; the raw and labkit servers are loaded alternately, so a slow moment of
the machine hits both. The raw servers send exactly as many events per request as the simulator sent in the same run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import psutil

from labkit.bench.pinning import pinned
from labkit.bench.runner import result, summarize
from labkit.util.progress import progress
from labkit.wire.events import TERMINAL_EVENT_TYPES

#: WebSocket: labkit / raw websockets server CPU per event; SSE: labkit / hand-written handler CPU per request.
WS_GOAL = 1.5
SSE_GOAL = 1.2
GOAL = f"websocket <= {WS_GOAL}, sse <= {SSE_GOAL}"
# The load generator parses no JSON (lean on purpose): a terminal event is found by its quoted type near the
# head of the frame.
_TERMINAL = tuple(f'"{t}"' for t in sorted(TERMINAL_EVENT_TYPES))


class ServerProcess:
    """A benchmark server in a subprocess; ``cpu()`` is its CPU seconds so far."""

    def __init__(self, kind: str, config: dict[str, Any] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self._module_args(kind, config or {})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("URLS "):
            self.close()
            raise RuntimeError(f"{kind}: server did not start (got {line!r})")
        self.urls = line.split()[1:]
        self.ps = psutil.Process(self.proc.pid)

    def _module_args(self, kind: str, config: dict[str, Any]) -> list[str]:
        return ["labkit.bench.servers", kind, json.dumps(config)]

    def cpu(self) -> float:
        """CPU seconds of all the server's threads: from schedstat (nanoseconds) where Linux has it,
        else psutil's clock-tick resolution (10 ms, too coarse for short loads)."""
        try:
            total = 0
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            t = self.ps.cpu_times()
            return t.user + t.system

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RawPacingProcess(ServerProcess):
    """The raw pacing server of :mod:`labkit.bench.rawpacing` in a subprocess (the baseline of ``capacity``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("raw pacing", config)

    def _module_args(self, kind: str, config: dict[str, Any]) -> list[str]:
        return ["labkit.bench.rawpacing", json.dumps(config)]


async def ws_load(url: str, message: str, conns: int, requests: int) -> int:
    """``conns`` connections each send ``requests`` messages one after another; returns events received."""
    from websockets.asyncio.client import connect

    async def one() -> int:
        n = 0
        async with connect(url, compression=None, max_size=None, open_timeout=10) as ws:
            for _ in range(requests):
                await ws.send(message)
                async for msg in ws:
                    n += 1
                    head = msg[:40]
                    if any(t in head for t in _TERMINAL):
                        break
        return n

    counts = await asyncio.gather(*(one() for _ in range(conns)))
    return sum(counts)


async def sse_load(url: str, body: bytes, conns: int, requests: int) -> int:
    """``conns`` workers each make ``requests`` POSTs (one connection each); returns events received."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def one() -> int:
        n = 0
        for _ in range(requests):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head + body)
            data = await reader.read()
            writer.close()
            if b" 200 " not in data[:20]:
                raise RuntimeError(f"sse: unexpected answer {data[:200]!r}")
            n += data.count(b"\n\n") - 1  # minus the blank line ending the headers
        return n

    counts = await asyncio.gather(*(one() for _ in range(conns)))
    return sum(counts)


def _measure(server: ServerProcess, load: Any) -> tuple[float, int, float]:
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    events = asyncio.run(load)
    wall = time.perf_counter() - t0
    return server.cpu() - cpu0, events, wall


def _create(websocket: bool) -> str:
    from labkit.wire.protocol import build_create

    if websocket:
        return json.dumps(build_create("bench", "Say something."))
    return json.dumps(build_create("bench", "Say something.", stream=True, websocket=False))


def run(quick: bool = False) -> dict[str, Any]:
    repeats = 3 if quick else 7
    conns = 2 if quick else 4
    ws_requests = 2 if quick else 20
    sse_requests = 5 if quick else 50
    ws_msg = _create(websocket=True)
    sse_body = _create(websocket=False).encode()
    ws: dict[str, list[float]] = {"labkit_us": [], "raw_us": [], "ratio": []}
    sse: dict[str, list[float]] = {"labkit_us": [], "raw_us": [], "ratio": []}
    events_per_ws_request = events_per_sse_request = 0.0
    with (
        ServerProcess("labkit") as lab,
        ServerProcess("raw-ws") as raw_ws,
        ServerProcess("raw-sse") as raw_sse,
        pinned(1),
    ):
        lab_http, lab_ws = lab.urls
        # Warm-up: imports, caches, first connections; and the event count the raw servers must match.
        _, ev, _ = _measure(lab, ws_load(lab_ws, ws_msg, 1, 2))
        n_ws = round(ev / 2)
        _, ev, _ = _measure(lab, sse_load(lab_http, sse_body, 1, 2))
        n_sse = round(ev / 2)
        raw_ws_msg = json.dumps({"n": n_ws})
        raw_sse_body = json.dumps({"n": n_sse}).encode()
        _measure(raw_ws, ws_load(raw_ws.urls[0], raw_ws_msg, 1, 2))
        _measure(raw_sse, sse_load(raw_sse.urls[0], raw_sse_body, 1, 2))
        for _ in progress(range(repeats), desc="server repeats", unit="repeat"):
            cpu_l, ev_l, _ = _measure(lab, ws_load(lab_ws, ws_msg, conns, ws_requests))
            cpu_r, ev_r, _ = _measure(raw_ws, ws_load(raw_ws.urls[0], raw_ws_msg, conns, ws_requests))
            ws["labkit_us"].append(cpu_l / ev_l * 1e6)
            ws["raw_us"].append(cpu_r / ev_r * 1e6)
            ws["ratio"].append(ws["labkit_us"][-1] / ws["raw_us"][-1])
            events_per_ws_request = ev_l / (conns * ws_requests)
            cpu_l, ev_l, _ = _measure(lab, sse_load(lab_http, sse_body, conns, sse_requests))
            cpu_r, _, _ = _measure(raw_sse, sse_load(raw_sse.urls[0], raw_sse_body, conns, sse_requests))
            n_req = conns * sse_requests
            sse["labkit_us"].append(cpu_l / n_req * 1e6)
            sse["raw_us"].append(cpu_r / n_req * 1e6)
            sse["ratio"].append(sse["labkit_us"][-1] / sse["raw_us"][-1])
            events_per_sse_request = ev_l / n_req
    ws_part = result(
        "websocket",
        summarize(ws["ratio"])["median"],
        "<=",
        WS_GOAL,
        ratio_means="server CPU per streamed event: labkit (instant) / raw websockets server",
        ratio_stats=summarize(ws["ratio"]),
        summary=(
            f"{summarize(ws['labkit_us'])['median']:.1f} vs {summarize(ws['raw_us'])['median']:.1f} us CPU per event"
        ),
        labkit_cpu_us_per_event=summarize(ws["labkit_us"]),
        raw_cpu_us_per_event=summarize(ws["raw_us"]),
        events_per_request=events_per_ws_request,
        connections=conns,
        requests_per_connection=ws_requests,
    )
    sse_part = result(
        "sse",
        summarize(sse["ratio"])["median"],
        "<=",
        SSE_GOAL,
        ratio_means="server CPU per HTTP/SSE request: labkit (instant) / hand-written asyncio SSE handler",
        ratio_stats=summarize(sse["ratio"]),
        summary=(
            f"{summarize(sse['labkit_us'])['median']:,.0f} vs {summarize(sse['raw_us'])['median']:,.0f} us CPU "
            f"per request of {events_per_sse_request:.0f} events"
        ),
        labkit_cpu_us_per_request=summarize(sse["labkit_us"]),
        raw_cpu_us_per_request=summarize(sse["raw_us"]),
        events_per_request=events_per_sse_request,
        concurrent_clients=conns,
        requests_per_client=sse_requests,
    )
    # The parts have different goals: the record's ratio is the worse part's ratio over its goal.
    worst = max(ws_part["ratio"] / WS_GOAL, sse_part["ratio"] / SSE_GOAL)
    return result(
        "server",
        worst,
        "<=",
        1.0,
        ratio_means=f"worst part's ratio over its goal (websocket <= {WS_GOAL}, sse <= {SSE_GOAL}; labkit / raw CPU)",
        parts=[ws_part, sse_part],
        repeats=repeats,
    )
