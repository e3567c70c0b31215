"""Before/after for the non-streaming create: labkit's server CPU per request from source trees, in one run.

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_ab.py TREE [TREE ...] [--with-config JSON] [--requests N]
        [--slices S] [--repeats R]

Each ``TREE`` is a checkout (``git worktree add /tmp/base COMMIT``); ``--with-config`` adds the first tree's
simulator once more with a config of its own (``'{"max_stored_bodies": 0}'``: the cost of the store of bodies).
Each simulator runs as ``labkit bench server`` runs it (``labkit.bench.servers labkit``: instant, one core), beside
the hand-written aiohttp handler of ``labkit.bench.rawjson``, each on 4 kept-alive connections opened once. A
repeat is N creates per connection in S slices; in each slice every server takes its turn, the order turning by
one each slice, so a slow moment of the machine falls on all of them (the ``json`` part of ``labkit bench
server`` alternates its two servers the same way). Prints each server's median CPU per request, the ratio of its
median to the handler's, and the median and quartiles of its per-repeat ratios (the handler's sample of the same
repeat), and its minor page faults per request. ``labkit bench server`` measures one tree against the handler;
this measures a change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics

from labkit.bench.pinning import pinned
from labkit.bench.server import KeptAlive, RawJsonProcess, ServerProcess, _create, json_answer


def _simulator(tree: str, config: dict[str, object] | None = None) -> ServerProcess:
    """``labkit.bench.servers labkit`` imported from ``tree`` (``config``: the simulator's, e.g. its store caps)."""
    return ServerProcess("labkit", config or {}, env=dict(os.environ, PYTHONPATH=tree), cwd=tree)


def _minor_faults(server: ServerProcess) -> int:
    """The server's minor page faults so far (``/proc/PID/stat``, field 10): memory the kernel had to map."""
    with open(f"/proc/{server.proc.pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="TREE")
    parser.add_argument("--requests", type=int, default=1000, help="creates per connection per repeat")
    parser.add_argument("--slices", type=int, default=10, help="slices per repeat, the servers' turns rotating")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--with-config",
        action="append",
        default=[],
        metavar="JSON",
        help="one more simulator of the first tree with this config, e.g. '{\"max_stored_bodies\": 0}'",
    )
    args = parser.parse_args()
    body = _create(websocket=False, stream=False).encode()
    conns = 4
    per_slice = args.requests // args.slices
    # Every server starts before this process pins itself to the client's core (a child inherits it).
    servers = {tree: _simulator(tree) for tree in args.trees}
    for config in args.with_config:
        servers[f"{args.trees[0]} {config}"] = _simulator(args.trees[0], json.loads(config))
    try:
        template = asyncio.run(json_answer(servers[args.trees[0]].urls[0], body))
        with RawJsonProcess(template) as raw, pinned(1), asyncio.Runner() as runner:
            order = [("hand-written", raw), *servers.items()]
            loads = {name: KeptAlive(server.urls[0], body, conns) for name, server in order}
            for load in loads.values():
                runner.run(load.open())
                runner.run(load.load(50))
            samples: dict[str, list[float]] = {name: [] for name, _ in order}
            faults0 = {name: _minor_faults(server) for name, server in order}
            for _ in range(args.repeats):
                cpu = dict.fromkeys(samples, 0.0)
                for turn in range(args.slices):
                    at = turn % len(order)
                    for name, server in order[at:] + order[:at]:
                        cpu0 = server.cpu()
                        runner.run(loads[name].load(per_slice))
                        cpu[name] += server.cpu() - cpu0
                for name, spent in cpu.items():
                    samples[name].append(spent / (conns * per_slice * args.slices) * 1e6)
            faults = {
                name: (_minor_faults(server) - faults0[name]) / (conns * args.requests * args.repeats)
                for name, server in order
            }
            for load in loads.values():
                runner.run(load.close())
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
            f"ratio {median / base:.2f}; per repeat {quartiles[1]:.2f} [{quartiles[0]:.2f}-{quartiles[2]:.2f}]; "
            f"{faults[name]:.2f} page faults per request"
        )


if __name__ == "__main__":
    main()
