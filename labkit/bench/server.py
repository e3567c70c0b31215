"""``server``: server CPU per streamed event (WebSocket), per SSE request and per JSON request, labkit vs raw baselines.

Each server runs in its own subprocess pinned to one core (:mod:`labkit.bench.servers`), all on the same one, each
started before this process pins itself (a child inherits its parent's cores); the load generator runs here, pinned
to another core, and is as lean as possible (no JSON parsing on the hot path). Server CPU time (all threads) is read
from ``/proc/PID/task/*/schedstat`` (psutil elsewhere) before and after each load; the raw and labkit servers are
loaded alternately, so a slow moment of the machine hits both. The raw servers send exactly as many events per
request as the simulator sent in the same run; the raw JSON handler (:mod:`labkit.bench.rawjson`) answers with the
simulator's own non-streaming answer to the same request, captured before the warm-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import psutil

from labkit.bench.pinning import apart, client_pinned, cores, cores_of, pinned
from labkit.bench.runner import result, summarize
from labkit.util.progress import progress
from labkit.wire.events import TERMINAL_EVENT_TYPES

#: WebSocket: labkit / raw websockets server CPU per event; SSE and JSON: labkit / hand-written handler CPU per
#: request.
WS_GOAL = 1.5
SSE_GOAL = 1.2
JSON_GOAL = 1.2
GOAL = f"websocket <= {WS_GOAL}, sse <= {SSE_GOAL}, json <= {JSON_GOAL}"
# The load generator parses no JSON (lean on purpose): a terminal event is found by its quoted type near the
# head of the frame.
_TERMINAL = tuple(f'"{t}"' for t in sorted(TERMINAL_EVENT_TYPES))


class ServerProcess:
    """A benchmark server in a subprocess; ``cpu()`` is its CPU seconds so far."""

    def __init__(
        self,
        kind: str,
        config: dict[str, Any] | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        """``env`` and ``cwd``: the subprocess's (e.g. another source tree's, to compare two versions). Start it
        before the client pins itself (:func:`labkit.bench.pinning.pinned`): it would inherit the client's core."""
        if client_pinned():
            raise RuntimeError(f"{kind}: start benchmark servers before pinning the client (they inherit its core)")
        self.proc = subprocess.Popen(
            self._command(kind, config or {}),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("URLS "):
            self.close()
            raise RuntimeError(f"{kind}: server did not start (got {line!r})")
        self.urls = line.split()[1:]
        self.ps = psutil.Process(self.proc.pid)

    def _command(self, kind: str, config: dict[str, Any]) -> list[str]:
        return [sys.executable, "-m", *self._module_args(kind, config)]

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

    def cores(self) -> list[int]:
        """The cores the server runs on (it pins itself to one as it starts)."""
        return cores_of(self.proc.pid)

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


class RawJsonProcess(ServerProcess):
    """The hand-written aiohttp JSON handler of :mod:`labkit.bench.rawjson` in a subprocess."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("raw json", {"body": body})

    def _module_args(self, kind: str, config: dict[str, Any]) -> list[str]:
        return ["labkit.bench.rawjson", json.dumps(config)]


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


class KeptAlive:
    """``conns`` kept-alive HTTP/1.1 connections to one JSON endpoint, each making its requests one after another.

    Kept alive as the official SDK's connection pool keeps them, so a request costs the handler, not a TCP
    handshake; and opened once, so that :meth:`load` can be called for slice after slice on one event loop
    (``tools/json_path_ab.py`` alternates servers' slices: a slow moment of the machine falls on all of them).
    """

    def __init__(self, url: str, body: bytes | None, conns: int) -> None:
        """``body``: POST it, or GET without one."""
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        method = "GET" if body is None else "POST"
        self._request = (
            f"{method} {parts.path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body or b'')}\r\n\r\n"
        ).encode() + (body or b"")
        self._conns = conns
        self._streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def open(self) -> None:
        for _ in range(self._conns):
            self._streams.append(await asyncio.open_connection(self._host, self._port))

    async def load(self, requests: int) -> int:
        """``requests`` on each connection, the connections at once; returns the answers' bytes."""
        counts = await asyncio.gather(*(self._one(reader, writer, requests) for reader, writer in self._streams))
        return sum(counts)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: int) -> int:
        n = 0
        request = self._request
        for _ in range(requests):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head[:20]:
                raise RuntimeError(f"json: unexpected answer {head[:200]!r}")
            at = head.lower().index(b"content-length:") + len(b"content-length:")
            length = int(head[at : head.index(b"\r\n", at)])
            n += len(await reader.readexactly(length))
        return n

    async def close(self) -> None:
        streams, self._streams = self._streams, []
        for _, writer in streams:
            writer.close()
        for _, writer in streams:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def json_load(url: str, body: bytes | None, conns: int, requests: int) -> int:
    """``conns`` kept-alive connections (:class:`KeptAlive`) each make ``requests`` JSON requests (POST ``body``,
    or GET without one); returns answer bytes."""
    load = KeptAlive(url, body, conns)
    await load.open()
    try:
        return await load.load(requests)
    finally:
        await load.close()


async def json_answer(url: str, body: bytes) -> dict[str, Any]:
    """One non-streaming answer, parsed (the raw JSON handler's template)."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(url, data=body) as resp:
        resp.raise_for_status()
        answer: dict[str, Any] = await resp.json()
        return answer


def _measure(server: ServerProcess, load: Any) -> tuple[float, int, float]:
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    events = asyncio.run(load)
    wall = time.perf_counter() - t0
    return server.cpu() - cpu0, events, wall


def _create(websocket: bool, stream: bool = True) -> str:
    from labkit.wire.protocol import build_create

    if websocket:
        return json.dumps(build_create("bench", "Say something."))
    return json.dumps(build_create("bench", "Say something.", stream=True if stream else None, websocket=False))


class _Sizes:
    """How much load each part puts on the servers per repetition."""

    def __init__(self, quick: bool) -> None:
        self.repeats = 3 if quick else 7
        self.conns = 2 if quick else 4
        self.ws_requests = 2 if quick else 20
        self.sse_requests = 5 if quick else 50
        self.json_requests = 10 if quick else 1000
        #: Unmeasured requests per connection before each measured JSON load.
        self.json_warmup = 2 if quick else 50
        #: Per path of the rest of the surface (labkit only): kept-alive connections x requests, per repeat.
        self.path_requests = 5 if quick else 100


def _pair(samples: dict[str, list[float]], labkit: float, raw: float) -> None:
    samples["labkit_us"].append(labkit)
    samples["raw_us"].append(raw)
    samples["ratio"].append(labkit / raw)


def _samples() -> dict[str, list[float]]:
    return {"labkit_us": [], "raw_us": [], "ratio": []}


def run(quick: bool = False, tree: str | None = None) -> dict[str, Any]:
    """``tree``: a source checkout to run the simulator from (its ``labkit.bench.servers``), to measure an earlier
    version under this harness (``tools/server_bench_trees.py``); default: this one."""
    size = _Sizes(quick)
    conns = size.conns
    ws_msg = _create(websocket=True)
    sse_body = _create(websocket=False).encode()
    json_body = _create(websocket=False, stream=False).encode()
    ws, sse, js = _samples(), _samples(), _samples()
    paths: dict[str, list[float]] = {}
    events_per_ws_request = events_per_sse_request = bytes_per_json_request = 0.0
    env = None if tree is None else dict(os.environ, PYTHONPATH=tree)
    with (
        ServerProcess("labkit", env=env, cwd=tree) as lab,
        ServerProcess("raw-ws") as raw_ws,
        ServerProcess("raw-sse") as raw_sse,
    ):
        lab_http, lab_ws = lab.urls
        # The raw JSON handler answers with the simulator's own answer, so it starts after one; and before this
        # process pins itself, as every server does (a child inherits its parent's cores: started inside pinned(),
        # it would serve on the client's core, a cheaper arrangement than the simulator's).
        template = asyncio.run(json_answer(lab_http, json_body))
        with RawJsonProcess(template) as raw_json, pinned(1):
            servers = {"labkit": lab, "raw-ws": raw_ws, "raw-sse": raw_sse, "raw-json": raw_json}
            placement = apart({name: server.cores() for name, server in servers.items()}, cores())
            # Warm-up: imports, caches, first connections; and the event count the raw servers must match.
            _, ev, _ = _measure(lab, ws_load(lab_ws, ws_msg, 1, 2))
            n_ws = round(ev / 2)
            _, ev, _ = _measure(lab, sse_load(lab_http, sse_body, 1, 2))
            n_sse = round(ev / 2)
            _measure(lab, json_load(lab_http, json_body, 1, 2))
            raw_ws_msg = json.dumps({"n": n_ws})
            raw_sse_body = json.dumps({"n": n_sse}).encode()
            _measure(raw_ws, ws_load(raw_ws.urls[0], raw_ws_msg, 1, 2))
            _measure(raw_sse, sse_load(raw_sse.urls[0], raw_sse_body, 1, 2))
            _measure(raw_json, json_load(raw_json.urls[0], json_body, 1, 2))
            for _ in progress(range(size.repeats), desc="server repeats", unit="repeat"):
                cpu_l, ev_l, _ = _measure(lab, ws_load(lab_ws, ws_msg, conns, size.ws_requests))
                cpu_r, ev_r, _ = _measure(raw_ws, ws_load(raw_ws.urls[0], raw_ws_msg, conns, size.ws_requests))
                _pair(ws, cpu_l / ev_l * 1e6, cpu_r / ev_r * 1e6)
                events_per_ws_request = ev_l / (conns * size.ws_requests)
                cpu_l, ev_l, _ = _measure(lab, sse_load(lab_http, sse_body, conns, size.sse_requests))
                cpu_r, _, _ = _measure(raw_sse, sse_load(raw_sse.urls[0], raw_sse_body, conns, size.sse_requests))
                n_req = conns * size.sse_requests
                _pair(sse, cpu_l / n_req * 1e6, cpu_r / n_req * 1e6)
                events_per_sse_request = ev_l / n_req
                # Each server's JSON path warmed first: the simulator has just served the other parts (their code
                # and data fill its caches), the handler has been idle.
                _measure(lab, json_load(lab_http, json_body, conns, size.json_warmup))
                cpu_l, bytes_l, _ = _measure(lab, json_load(lab_http, json_body, conns, size.json_requests))
                _measure(raw_json, json_load(raw_json.urls[0], json_body, conns, size.json_warmup))
                cpu_r, _, _ = _measure(raw_json, json_load(raw_json.urls[0], json_body, conns, size.json_requests))
                n_req = conns * size.json_requests
                _pair(js, cpu_l / n_req * 1e6, cpu_r / n_req * 1e6)
                bytes_per_json_request = bytes_l / n_req
                # A response stored just now to read back (the part's creates push older ones out of the store).
                fresh = asyncio.run(json_answer(lab_http, json_body))
                _measure_paths(lab, lab_http, fresh["id"], paths, size)
    parts = [
        _ws_part(ws, events_per_ws_request, size),
        _sse_part(sse, events_per_sse_request, size),
        _json_part(js, bytes_per_json_request, size, paths),
    ]
    # The parts have different goals: the record's ratio is the worse part's ratio over its goal.
    worst = max(part["ratio"] / goal for part, goal in zip(parts, (WS_GOAL, SSE_GOAL, JSON_GOAL), strict=True))
    return result(
        "server",
        worst,
        "<=",
        1.0,
        ratio_means=f"worst part's ratio over its goal ({GOAL}; labkit / raw CPU)",
        parts=parts,
        repeats=size.repeats,
        cores=placement,
    )


def _ws_part(ws: dict[str, list[float]], events_per_request: float, size: _Sizes) -> dict[str, Any]:
    return result(
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
        events_per_request=events_per_request,
        connections=size.conns,
        requests_per_connection=size.ws_requests,
    )


def _sse_part(sse: dict[str, list[float]], events_per_request: float, size: _Sizes) -> dict[str, Any]:
    return result(
        "sse",
        summarize(sse["ratio"])["median"],
        "<=",
        SSE_GOAL,
        ratio_means="server CPU per HTTP/SSE request: labkit (instant) / hand-written asyncio SSE handler",
        ratio_stats=summarize(sse["ratio"]),
        summary=(
            f"{summarize(sse['labkit_us'])['median']:,.0f} vs {summarize(sse['raw_us'])['median']:,.0f} us CPU "
            f"per request of {events_per_request:.0f} events"
        ),
        labkit_cpu_us_per_request=summarize(sse["labkit_us"]),
        raw_cpu_us_per_request=summarize(sse["raw_us"]),
        events_per_request=events_per_request,
        concurrent_clients=size.conns,
        requests_per_client=size.sse_requests,
    )


def _path_requests(create_url: str, response_id: str) -> dict[str, tuple[str, bytes | None]]:
    """The JSON paths whose cost the ``json`` part reports besides the stored create: (url, POST body or GET)."""
    from labkit.wire.protocol import build_create

    not_stored = json.dumps(build_create("bench", "Say something.", websocket=False, store=False)).encode()
    compact = json.dumps({"model": "bench", "input": "Say something."}).encode()
    return {
        "create, store: false": (create_url, not_stored),
        "retrieve": (f"{create_url}/{response_id}", None),
        "input_items": (f"{create_url}/{response_id}/input_items", None),
        "compact": (f"{create_url}/compact", compact),
    }


def _measure_paths(
    lab: ServerProcess, create_url: str, response_id: str, out: dict[str, list[float]], size: _Sizes
) -> None:
    for name, (url, body) in _path_requests(create_url, response_id).items():
        cpu, _, _ = _measure(lab, json_load(url, body, size.conns, size.path_requests))
        out.setdefault(name, []).append(cpu / (size.conns * size.path_requests) * 1e6)


def _json_part(
    js: dict[str, list[float]], bytes_per_request: float, size: _Sizes, paths: dict[str, list[float]]
) -> dict[str, Any]:
    return result(
        "json",
        summarize(js["ratio"])["median"],
        "<=",
        JSON_GOAL,
        ratio_means="server CPU per non-streaming request: labkit (instant) / hand-written aiohttp JSON handler",
        ratio_stats=summarize(js["ratio"]),
        summary=(
            f"{summarize(js['labkit_us'])['median']:,.0f} vs {summarize(js['raw_us'])['median']:,.0f} us CPU "
            f"per request of {bytes_per_request:,.0f} bytes"
        ),
        labkit_cpu_us_per_request=summarize(js["labkit_us"]),
        raw_cpu_us_per_request=summarize(js["raw_us"]),
        bytes_per_request=bytes_per_request,
        kept_alive_connections=size.conns,
        requests_per_connection=size.json_requests,
        # The stored create is the part's request (the API's default store: true); the other paths, labkit only.
        labkit_cpu_us_per_path={name: summarize(v) for name, v in paths.items()},
        requests_per_path_connection=size.path_requests,
    )
