"""``labkit attribute CANDIDATE``: each mechanism's exact Shapley share of a strategy's gain over a baseline."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.attribution import attribute
from labkit.model import preset_names, workload_names

NAME = "attribute"
HELP = "Split a strategy's end-to-end and TTFT gain over a baseline among its mechanisms (exact Shapley values)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("candidate", help=f"preset ({', '.join(preset_names())}) or a profile .toml file")
    parser.add_argument("--baseline", default="http_baseline", help="preset or profile file (default: http_baseline)")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s (default: the profiles')")
    parser.add_argument("--workload", default="codex_bugfix", help=f"workload preset ({', '.join(workload_names())})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    a = attribute(args.candidate, args.baseline, tps=args.tps, workload=args.workload)
    print(json.dumps(a.to_dict(), indent=2) if args.json else "\n".join(a.lines()))
    return 0
