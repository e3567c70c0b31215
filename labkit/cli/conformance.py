"""``labkit conformance``: run the conformance scenarios against a Responses API server and record transcripts.

Without ``--base-url`` the scenarios run against an in-process simulator; with it (e.g. the real API,
``https://api.openai.com/v1``) the key comes from ``OPENAI_API_KEY`` and the token cost is printed before any
request is made. Each scenario's transcript (every message sent and received) is written as JSON to ``--out``,
so that a real and a simulated transcript of one scenario can be diffed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

NAME = "conformance"
HELP = "Run the Responses API conformance scenarios against the simulator or a real server; write transcripts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-url", default=None, help="server to test (default: an in-process simulator)")
    parser.add_argument("--out", default=None, help="directory for one JSON transcript per scenario")
    parser.add_argument("--model", default="gpt-5-mini", help="model for the requests (default gpt-5-mini)")
    parser.add_argument("--only", nargs="+", default=None, metavar="SCENARIO", help="run only these scenarios")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per scenario (default 120)")
    parser.add_argument("--yes", action="store_true", help="do not ask before spending tokens on a real server")


def run(args: argparse.Namespace) -> int:
    from labkit.live.server import conformance as C

    scenarios = C.select(args.only)
    if args.list:
        for s in scenarios:
            print(f"{s.name:36} {s.doc}")
        return 0
    if args.timeout <= 0:
        raise ValueError(f"--timeout: must be > 0, got {args.timeout!r}")
    out = Path(args.out) if args.out else None
    if args.base_url:
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError("OPENAI_API_KEY: not set (the key for --base-url comes from the environment)")
        cost = C.cost(scenarios)
        print(
            f"labkit conformance: {len(scenarios)} scenarios against {args.base_url} with {args.model}: "
            f"at most {cost.requests} requests and about {cost.tokens:,} tokens (input + output)."
        )
        if not args.yes and sys.stdin.isatty() and input("Proceed? [y/N] ").strip().lower() not in ("y", "yes"):
            return 1
        results = asyncio.run(C.run_all(C.Target(args.base_url, key, args.model), scenarios, args.timeout))
        where = args.base_url
    else:

        async def local() -> list[C.ScenarioResult]:
            async with C.simulator() as server:
                return await C.run_all(C.Target(server.base_url, model=args.model), scenarios, args.timeout)

        results = asyncio.run(local())
        where = "the in-process simulator"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            record = {"server": where, "model": args.model, **r.to_dict()}
            (out / f"{r.name}.json").write_text(json.dumps(record, indent=1) + "\n")
    failed = [r for r in results if not r.ok]
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.name} ({r.seconds:.2f} s)")
        for f in r.failures:
            print(f"     - {f}")
    print(
        f"{len(results) - len(failed)}/{len(results)} scenarios passed against {where}"
        + (f"; transcripts in {out}" if out else "")
    )
    return 1 if failed else 0
