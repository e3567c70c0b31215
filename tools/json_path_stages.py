"""Where a non-streaming create's time goes inside the server, measured there (not in a tight loop).

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_stages.py [--requests N] [--repeats R]
    PYTHONPATH=$PWD .venv/bin/python tools/json_path_stages.py --tight

Starts the simulator as ``labkit bench server`` does (instant, pinned to one core) with a wall-clock timer
around each stage of the create path, loads it with the benchmark's kept-alive creates from the other core,
and prints each stage's time per request. Stages nest (``resolve`` holds ``resolve.*``) and a nested
function's time is also its caller's; each timer adds ~0.3 us, so the total CPU it prints is a little above
an untimed run's. The stages cost 2.5-3x more there than the same calls in a tight loop (``--tight``: the
create path, no aiohttp, 15 batches of 2,000 creates, the fastest batch's time per create): between two
requests, aiohttp and the kernel's network stack take the caches (the benchmarks guide, issue 22).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import inspect
import json
import sys
import time
from typing import Any

#: (module, owner, attribute, label): what the timers wrap, in the server process.
STAGES = (
    ("labkit.live.server.app", "SimServer", "_post", "handler (all of it)"),
    ("labkit.live.server.app", "SimServer", "_read_body", "read body"),
    ("labkit.live.server.app", None, "load_body", "decode JSON"),
    ("labkit.live.server.app", None, "parse_create_json", "validate"),
    ("labkit.live.server.engine", "Engine", "resolve", "resolve"),
    ("labkit.live.server.engine", "Engine", "_position", "resolve.position"),
    ("labkit.live.server.engine", None, "conversation_split", "resolve.position.split"),
    ("labkit.live.server.engine", None, "_conversation_key", "resolve.position.key"),
    ("labkit.live.server.engine", "Engine", "_shape", "resolve.shape"),
    ("labkit.live.server.engine", "Engine", "_route", "resolve.route"),
    ("labkit.live.server.engine", "Engine", "_draw_faults", "resolve.faults"),
    ("labkit.live.server.engine", "Engine", "_plan_times", "resolve.plan_times"),
    ("labkit.live.server.engine", "Engine", "answer_at_once", "answer"),
    ("labkit.live.server.engine", None, "assemble_response", "answer.assemble"),
    ("labkit.live.server.assembly", None, "response_object", "answer.assemble.response_object"),
    ("labkit.live.server.engine", "Engine", "_keep", "answer.keep_record"),
    ("labkit.live.server.state", "Store", "put", "answer.keep_record.store"),
    ("labkit.live.server.engine", None, "dumps", "answer.encode"),
    ("labkit.live.server.state", "Bodies", "put", "answer.store_body"),
    ("labkit.live.server.engine", "Engine", "_log_end", "answer.turn_log"),
    ("labkit.live.server.app", None, "_json_answer", "respond"),
)


def _install_timers(totals: collections.Counter[str], counts: collections.Counter[str]) -> None:
    import importlib

    clock = time.perf_counter_ns
    for module_name, owner_name, attribute, label in STAGES:
        module = importlib.import_module(module_name)
        owner: Any = module if owner_name is None else getattr(module, owner_name)
        inner = getattr(owner, attribute)
        setattr(owner, attribute, _timed(inner, label, totals, counts, clock))


def _timed(inner: Any, label: str, totals: Any, counts: Any, clock: Any) -> Any:
    if inspect.iscoroutinefunction(inner):

        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            t = clock()
            try:
                return await inner(*args, **kwargs)
            finally:
                totals[label] += clock() - t
                counts[label] += 1

        return timed_async

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = clock()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[label] += clock() - t
            counts[label] += 1

    return timed


async def _serve() -> None:
    """The server side: the benchmark's simulator with timers; the table goes to stdout when stdin closes."""
    from labkit.bench import servers

    totals: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    _install_timers(totals, counts)
    urls, stop = await servers._serve_labkit({})
    print(f"URLS {urls}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    requests = counts["handler (all of it)"] or 1
    print(json.dumps({label: totals[label] / requests / 1e3 for _, _, _, label in STAGES}), flush=True)
    await stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="creates per connection per repeat")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--tight", action="store_true", help="time the create path in a tight loop instead")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tight:
        asyncio.run(_tight_loop())
        return
    if args.serve:
        from labkit.bench.pinning import pin_self

        pin_self(0)
        asyncio.run(_serve())
        return
    _drive(args.requests, args.repeats)


async def _tight_loop() -> None:
    """The create path as the server runs it for one request (parse, resolve, answer, respond), back to back."""
    from labkit.bench.server import _create
    from labkit.live.server import SimServer
    from labkit.live.server.app import _json_answer
    from labkit.live.server.jsonin import load_body
    from labkit.model import load_profile, load_workload
    from labkit.wire.protocol import parse_create_json

    body = _create(websocket=False, stream=False).encode()
    server = SimServer(profile=load_profile("websocket"), workload=load_workload("codex_bugfix"), instant=True)
    engine, loop = server.engine, asyncio.get_running_loop()

    async def create() -> None:
        request = parse_create_json(load_body(body, "body"))
        resolved = engine.resolve(request, transport="http", t0=loop.time())
        assert engine.due_at_once(resolved)
        _json_answer(engine.answer_at_once(resolved, loop.time()))

    for _ in range(2000):  # warm-up
        await create()
    batches = []
    for _ in range(15):
        t = time.perf_counter()
        for _ in range(2000):
            await create()
        batches.append((time.perf_counter() - t) / 2000 * 1e6)
    print(f"create path in a tight loop: {min(batches):.1f} us per create (median of batches {sorted(batches)[7]:.1f})")


def _drive(requests: int, repeats: int) -> None:
    from labkit.bench.pinning import pinned
    from labkit.bench.server import ServerProcess, _create, _measure, json_load

    class TimedSimulator(ServerProcess):
        """This script's ``--serve``: the benchmark's simulator with the timers in."""

        def _command(self, kind: str, config: dict[str, Any]) -> list[str]:
            return [sys.executable, __file__, "--serve"]

    body = _create(websocket=False, stream=False).encode()
    server = TimedSimulator("labkit with timers")
    assert server.proc.stdout is not None and server.proc.stdin is not None
    cpu_s = 0.0
    with pinned(1):
        for _ in range(repeats):
            cpu_s += _measure(server, json_load(server.urls[0], body, 4, requests))[0]
    server.proc.stdin.close()
    stages = json.loads(server.proc.stdout.readline())
    server.proc.wait(timeout=10)
    print(f"server CPU per request, timers included: {cpu_s / (4 * requests * repeats) * 1e6:.1f} us")
    for label, us in stages.items():
        print(f"  {label:28s} {us:6.1f} us")


if __name__ == "__main__":
    main()
