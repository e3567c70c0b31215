"""``labkit compare A B``: any two profiles (presets or profile files) on one workload, each value with its 5-95%
interval over the ensemble of parameter sets that reproduce the fitted numbers."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.headline import compare
from labkit.cli import _ensemble
from labkit.model import load_profile, preset_names

NAME = "compare"
HELP = "Compare two profiles on one workload (TTFT and end-to-end reductions, overhead shares, 5-95%% intervals)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help=f"preset ({', '.join(preset_names())}) or a profile .toml file")
    parser.add_argument("candidate", help="preset or profile file to compare against the baseline")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s (default: the profiles')")
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset")
    parser.add_argument("--turns", type=int, default=None, help="override the workload's number of model calls")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _ensemble.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    # A wrong profile name or --tps is reported before the ensemble (seconds to draw) is built.
    for name in (args.baseline, args.candidate):
        load_profile(name, **({} if args.tps is None else {"decode_tps": args.tps}))
    r = compare(
        args.baseline,
        args.candidate,
        tps=args.tps,
        workload=args.workload,
        turns=args.turns,
        ensemble=_ensemble.ensemble(args),
    )
    print(json.dumps(r.to_dict(), indent=2) if args.json else "\n".join(r.lines()))
    return 0
