"""Does what a simulator served before slow its creates? A JSON sample after a chosen history.

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_history.py {none,streams,paths,both} [TREE] [--repeats R]

``labkit bench server`` loads its simulator with WebSocket and SSE streams and with the other JSON paths
(retrieve, ``input_items``, ``compact``, ``store: false``) between its JSON samples, while the hand-written handler
serves only creates. This repeats one piece of that history before each sample (``streams``: the WebSocket and SSE
loads of one repeat; ``paths``: the other paths, after the sample as the benchmark runs them; ``both``; ``none``)
and prints the median of the samples' ratios, labkit's CPU per create over the handler's, each sample 4 kept-alive
connections x 1,000 creates per server in ten slices, the two servers' alternating (labkit, raw, raw, labkit, ...),
each warmed first, the connections opened outside what is measured. ``TREE``: the source tree of the simulator
(default: this one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics

from labkit.bench.pinning import pinned
from labkit.bench.server import (
    KeptAlive,
    RawJsonProcess,
    ServerProcess,
    _create,
    _measure,
    _measure_paths,
    _Sizes,
    json_answer,
    sse_load,
    ws_load,
)


def _sample(lab: ServerProcess, raw: ServerProcess, body: bytes, slices: int = 10, requests: int = 1000) -> float:
    """labkit's CPU over the handler's for ``requests`` creates per connection each, in alternating slices."""
    cpu = [0.0, 0.0]
    with asyncio.Runner() as runner:
        loads = [(lab, KeptAlive(lab.urls[0], body, 4)), (raw, KeptAlive(raw.urls[0], body, 4))]
        try:
            for _, load in loads:
                runner.run(load.open())
                runner.run(load.load(50))
            for i in range(slices):
                for which in (0, 1) if i % 2 == 0 else (1, 0):
                    server, load = loads[which]
                    cpu0 = server.cpu()
                    runner.run(load.load(requests // slices))
                    cpu[which] += server.cpu() - cpu0
        finally:
            for _, load in loads:
                runner.run(load.close())
    return cpu[0] / cpu[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("history", choices=("none", "streams", "paths", "both"))
    parser.add_argument("tree", nargs="?", default=os.getcwd())
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    body = _create(websocket=False, stream=False).encode()
    sse_body, ws_message = _create(websocket=False).encode(), _create(websocket=True)
    size = _Sizes(quick=False)
    streams, paths = args.history in ("streams", "both"), args.history in ("paths", "both")
    ratios = []
    # The servers start before this process pins itself to the client's core (a child inherits it).
    with (
        ServerProcess("labkit", {}, env=dict(os.environ, PYTHONPATH=args.tree), cwd=args.tree) as lab,
        RawJsonProcess(asyncio.run(json_answer(lab.urls[0], body))) as raw,
        pinned(1),
    ):
        http_url, ws_url = lab.urls
        for _ in range(args.repeats):
            if streams:
                _measure(lab, ws_load(ws_url, ws_message, size.conns, size.ws_requests))
                _measure(lab, sse_load(http_url, sse_body, size.conns, size.sse_requests))
            ratios.append(_sample(lab, raw, body))
            if paths:
                fresh = asyncio.run(json_answer(http_url, body))
                _measure_paths(lab, http_url, fresh["id"], {}, size)
    print(f"{args.history}: ratio {statistics.median(ratios):.3f}, samples " + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
