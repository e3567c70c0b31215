"""Before/after for the non-streaming create: labkit's server CPU per request from two source trees, in one run.

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_ab.py BASE_TREE NEW_TREE [--requests N] [--repeats R]

``BASE_TREE`` and ``NEW_TREE`` are checkouts (``git worktree add /tmp/base COMMIT``). Each tree's simulator runs
as ``labkit bench server`` runs it (``labkit.bench.servers labkit``: instant, one core), beside the hand-written
aiohttp handler of ``labkit.bench.rawjson``; the three are loaded one after another in every repeat (4 kept-alive
connections x N creates), so a slow moment of the machine hits all three, and the order turns by one each repeat
(a server loaded first after a pause measured slower here). Prints each server's median CPU per request, the ratio
of its median to the handler's, and the median and quartiles of its per-repeat ratios (the handler's sample of
the same repeat). ``labkit bench server`` measures one tree against the handler; this
measures a change.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics

from labkit.bench.pinning import pinned
from labkit.bench.server import RawJsonProcess, ServerProcess, _create, _measure, json_answer, json_load


def _simulator(tree: str) -> ServerProcess:
    """``labkit.bench.servers labkit`` imported from ``tree``."""
    return ServerProcess("labkit", {}, env=dict(os.environ, PYTHONPATH=tree), cwd=tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs=2, metavar="TREE")
    parser.add_argument("--requests", type=int, default=1000, help="creates per connection per repeat")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    body = _create(websocket=False, stream=False).encode()
    conns = 4
    with pinned(1):
        servers = {tree: _simulator(tree) for tree in args.trees}
        try:
            for server in servers.values():
                _measure(server, json_load(server.urls[0], body, 1, 50))
            template = asyncio.run(json_answer(servers[args.trees[0]].urls[0], body))
            with RawJsonProcess(template) as raw:
                _measure(raw, json_load(raw.urls[0], body, 1, 50))
                samples: dict[str, list[float]] = {"hand-written": [], **{tree: [] for tree in args.trees}}
                order = [("hand-written", raw), *servers.items()]
                for repeat in range(args.repeats):
                    turn = repeat % len(order)
                    for name, server in order[turn:] + order[:turn]:
                        cpu, _, _ = _measure(server, json_load(server.urls[0], body, conns, args.requests))
                        samples[name].append(cpu / (conns * args.requests) * 1e6)
        finally:
            for server in servers.values():
                server.close()
    base = statistics.median(samples["hand-written"])
    for name, values in samples.items():
        median = statistics.median(values)
        ratios = sorted(v / h for v, h in zip(values, samples["hand-written"], strict=True))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(
            f"{name}: {median:.1f} us CPU per request (min {min(values):.0f}, max {max(values):.0f}), "
            f"ratio {median / base:.2f}; per repeat {quartiles[1]:.2f} [{quartiles[0]:.2f}-{quartiles[2]:.2f}]"
        )


if __name__ == "__main__":
    main()
