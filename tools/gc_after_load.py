"""What a serving process's full garbage collections walk, after the benchmark's kinds of load.

    PYTHONPATH=$PWD .venv/bin/python tools/gc_after_load.py [--creates N]

Starts the simulator in this process (instant, as ``labkit bench server`` runs it), freezes start-up as
``labkit serve`` does (:func:`labkit.live.server.heap.freeze_start_up`; prints how many objects and what a full
collection cost before), serves N non-streaming creates, 200 SSE streams and 80 WebSocket turns over loopback,
and prints the objects a full collection now walks (the most common types) and the time of one (the fastest of 5).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time

from labkit.bench.server import _create, json_load, sse_load, ws_load
from labkit.live.server import SimServer
from labkit.live.server.heap import freeze_start_up
from labkit.model import load_profile, load_workload


def _full_collection_ms() -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


async def _main(creates: int) -> None:
    server = await SimServer.start(
        profile=load_profile("websocket"), workload=load_workload("codex_bugfix"), port=0, instant=True
    )
    try:
        print(f"start-up: {len(gc.get_objects()):,} objects, a full collection {_full_collection_ms():.1f} ms")
        print(f"frozen: {freeze_start_up():,} objects")
        url = f"{server.base_url}/responses"
        await json_load(url, _create(websocket=False, stream=False).encode(), 4, creates // 4)
        await sse_load(url, _create(websocket=False).encode(), 4, 50)
        await ws_load(server.ws_url, _create(websocket=True), 4, 20)
        walked = gc.get_objects()
        kinds = collections.Counter(type(o).__name__ for o in walked).most_common(5)
        print(
            f"after the load: {len(walked):,} objects walked ({', '.join(f'{k} {n:,}' for k, n in kinds)}), "
            f"a full collection {_full_collection_ms():.1f} ms"
        )
    finally:
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=12_000)
    asyncio.run(_main(parser.parse_args().creates))


if __name__ == "__main__":
    main()
