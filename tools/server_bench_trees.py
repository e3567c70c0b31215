"""``labkit bench server`` with the simulator from source trees, under this checkout's harness, in turn.

    PYTHONPATH=$PWD .venv/bin/python tools/server_bench_trees.py TREE [TREE ...] [--runs N]

Each ``TREE`` is a checkout (``git worktree add /tmp/base COMMIT``). A run is the whole benchmark (7 repeats of the
WebSocket, SSE and JSON parts, each server on one core and this process on another) with the simulator imported
from one tree; the trees take turns, run after run, so a slow spell of the machine falls on all of them. Prints
each part's ratio and figures per run, and the CPU other processes used during it. To compare versions under one
harness: an earlier tree's own benchmark may measure differently (before the servers were kept off the client's
core, its JSON baseline served on the client's core).
"""

from __future__ import annotations

import argparse

from labkit.bench.pinning import cores
from labkit.bench.runner import OthersCpu
from labkit.bench.server import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="TREE")
    parser.add_argument("--runs", type=int, default=1, help="runs per tree")
    args = parser.parse_args()
    for _ in range(args.runs):
        for tree in args.trees:
            others = OthersCpu(len(cores()))
            record = run(tree=tree)
            share = others.share()
            parts = "; ".join(f"{p['name']} {p['ratio']:.2f} ({p['summary']})" for p in record["parts"])
            load = "?" if share is None else f"{share:.2f}"
            print(f"{tree}: {parts}; others' CPU {load} per core", flush=True)


if __name__ == "__main__":
    main()
