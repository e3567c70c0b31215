"""``labkit compare A B``: any two profiles (presets or profile files) on one workload."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.headline import compare
from labkit.model import preset_names

NAME = "compare"
HELP = "Compare two profiles on one workload (TTFT and end-to-end reductions, overhead shares)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help=f"preset ({', '.join(preset_names())}) or a profile .toml file")
    parser.add_argument("candidate", help="preset or profile file to compare against the baseline")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s (default: the profiles')")
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset")
    parser.add_argument("--turns", type=int, default=None, help="override the workload's number of model calls")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    r = compare(args.baseline, args.candidate, tps=args.tps, workload=args.workload, turns=args.turns)
    print(json.dumps(r.to_dict(), indent=2) if args.json else "\n".join(r.lines()))
    return 0
