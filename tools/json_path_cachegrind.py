"""Per-request instructions and cache misses of the non-streaming create, from cachegrind (deterministic).

    PYTHONPATH=$PWD .venv/bin/python tools/json_path_cachegrind.py TREE [TREE ...] [--raw] [--branches]
        [--n1 N] [--n2 N]

Each server (the simulator of each source tree as ``labkit bench server`` runs it, and with ``--raw`` the
hand-written handler of ``labkit.bench.rawjson``) runs under ``valgrind --tool=cachegrind --cache-sim=yes``
twice, once for ``n1`` and once for ``n2`` of the benchmark's creates (4 kept-alive connections); the
difference over ``n2 - n1`` is one request's cost, start-up and shutdown cancelled. The simulated caches are
32 KB L1s and a 1 MB last level (this machine's L2). Prints instructions, L1 misses and last-level misses per
request; with ``--branches``, also conditional and indirect branches and their mispredictions under cachegrind's
simple predictor (``--branch-sim=yes``: a table of 2-bit counters and one of last targets, not a CPU's
predictor). Needs Debian's ``valgrind``; a pair of runs takes a few minutes (valgrind is ~50x slower), both at
once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from labkit.bench.server import _create, json_answer, json_load

_VALGRIND = ("valgrind", "--tool=cachegrind", "--cache-sim=yes", "--cachegrind-out-file=/dev/null")
_CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64")
_COUNTS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "L1i misses": r"I1\s+misses:\s+([\d,]+)",
    "L1d misses": r"D1\s+misses:\s+([\d,]+)",
    "last-level misses": r"LL misses:\s+([\d,]+)",
}
#: With ``--branch-sim=yes``: "Branches: 1,000 (900 cond + 100 ind)" and "Mispredicts: ..." in the same form.
_BRANCH_COUNTS = {
    "conditional branches": r"Branches:\s+[\d,]+\s+\(\s*([\d,]+) cond",
    "indirect branches": r"Branches:\s+[\d,]+\s+\(\s*[\d,]+ cond \+\s+([\d,]+) ind",
    "conditional mispredicts": r"Mispredicts:\s+[\d,]+\s+\(\s*([\d,]+) cond",
    "indirect mispredicts": r"Mispredicts:\s+[\d,]+\s+\(\s*[\d,]+ cond \+\s+([\d,]+) ind",
}


def _server(tree: str, module_args: list[str], creates: int, counts: dict[str, str]) -> dict[str, int]:
    """One server under cachegrind serving ``creates`` of the benchmark's creates; its totals of ``counts``."""
    env = dict(os.environ, PYTHONPATH=tree)
    branches = ("--branch-sim=yes",) if counts.keys() & _BRANCH_COUNTS.keys() else ()
    command = [*_VALGRIND, *branches, *_CACHES, sys.executable, "-m", *module_args]
    proc = subprocess.Popen(
        command, env=env, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    url = ""
    while not url:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(proc.stderr.read()[-2000:])
        if line.startswith("URLS "):
            url = line.split()[1]
    body = _create(websocket=False, stream=False).encode()
    asyncio.run(json_load(url, body, 4, creates // 4))
    proc.stdin.close()
    proc.wait(timeout=3600)
    report = proc.stderr.read()
    totals = {}
    for name, pattern in counts.items():
        found = re.search(pattern, report)
        if found is None:
            raise RuntimeError(f"cachegrind printed no {name!r}: {report[-2000:]}")
        totals[name] = int(found.group(1).replace(",", ""))
    return totals


def _per_request(tree: str, module_args: list[str], n1: int, n2: int, counts: dict[str, str]) -> dict[str, float]:
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda n: _server(tree, module_args, n, counts), (n1, n2))
    return {name: (second[name] - first[name]) / (n2 - n1) for name in counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", metavar="TREE")
    parser.add_argument("--raw", action="store_true", help="also the hand-written handler (the first tree's answer)")
    parser.add_argument("--branches", action="store_true", help="also simulate branch prediction (--branch-sim=yes)")
    parser.add_argument("--n1", type=int, default=6000)
    parser.add_argument("--n2", type=int, default=12000)
    args = parser.parse_args()
    counts = {**_COUNTS, **(_BRANCH_COUNTS if args.branches else {})}
    rows = {}
    if args.raw:
        template = _template(args.trees[0])
        rows["hand-written"] = _per_request(
            os.getcwd(), ["labkit.bench.rawjson", json.dumps({"body": template})], args.n1, args.n2, counts
        )
    for tree in args.trees:
        rows[tree] = _per_request(tree, ["labkit.bench.servers", "labkit", "{}"], args.n1, args.n2, counts)
    print("per request: " + ", ".join(counts))
    for name, row in rows.items():
        print(f"{name}: " + ", ".join(f"{row[k]:,.0f}" for k in counts))


def _template(tree: str) -> dict[str, object]:
    """The simulator's answer to the benchmark's create (what the hand-written handler answers with)."""
    env = dict(os.environ, PYTHONPATH=tree)
    proc = subprocess.Popen(
        [sys.executable, "-m", "labkit.bench.servers", "labkit", "{}"],
        env=env,
        cwd=tree,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = ""
    while not url:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        if line.startswith("URLS "):
            url = line.split()[1]
    try:
        return asyncio.run(json_answer(url, _create(websocket=False, stream=False).encode()))
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
