"""``labkit compare A B``: any two presets on one workload."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.headline import compare
from labkit.model import preset_names

NAME = "compare"
HELP = "Compare two presets on one workload (TTFT and end-to-end reductions, overhead shares)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help=f"preset: {', '.join(preset_names())}")
    parser.add_argument("candidate", help="preset to compare against the baseline")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s (default: the presets')")
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset")
    parser.add_argument("--turns", type=int, default=None, help="override the workload's number of model calls")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    r = compare(args.baseline, args.candidate, tps=args.tps, workload=args.workload, turns=args.turns)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['candidate']} vs {r['baseline']} on {r['workload']} ({r['turns']} turns) at {r['tps']:g} TPS")
    e2e = f"{r['baseline_e2e_s']:8.2f} s  -> {r['candidate_e2e_s']:8.2f} s"
    print(f"  end to end   {e2e}   ({_change(r['e2e_reduction'])})")
    print(
        f"  mean TTFT    {r['baseline_ttft_mean_s'] * 1e3:8.0f} ms -> {r['candidate_ttft_mean_s'] * 1e3:8.0f} ms  "
        f"({_change(r['ttft_reduction'])})"
    )
    print(f"  API-overhead share {r['overhead_share_baseline']:.1%} -> {r['overhead_share_candidate']:.1%}")
    return 0


def _change(red: float) -> str:
    return f"{red:.1%} less" if red >= 0 else f"{-red:.1%} more"
