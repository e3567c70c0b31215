"""``labkit headline``: the numbers of OpenAI's engineering post reproduced from the default presets."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.headline import headline

NAME = "headline"
HELP = (
    "Reproduce the headline numbers of OpenAI's engineering post "
    "(TTFT -45%%, end to end -40%% at 1,000 TPS) from the model."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset (default: codex_bugfix)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    h = headline(args.workload)
    if args.json:
        print(json.dumps(h, indent=2))
        return 0
    rows = [
        ("TTFT reduction, http_optimized vs http_baseline", h["ttft_reduction"], h["published_ttft_reduction"]),
        (
            "End to end reduction at 1,000 TPS, websocket vs http_baseline",
            h["e2e_reduction_at_1000_tps"],
            h["published_e2e_reduction"],
        ),
        ("End to end reduction at 65 TPS, websocket vs http_baseline", h["e2e_reduction_at_65_tps"], None),
        ("API-overhead share of http_baseline at 65 TPS", h["overhead_share_at_65_tps"], None),
        ("API-overhead share of http_baseline at 1,000 TPS", h["overhead_share_at_1000_tps"], None),
    ]
    print(f"workload {h['workload']} ({h['tool_calls']} tool calls); model vs published")
    for label, value, pub in rows:
        print(f"  {label:<64} {value:7.1%}" + (f"   (published {pub:.0%})" if pub is not None else ""))
    print(f"  {'TPS at which http_baseline API overhead equals inference':<64} {h['crossover_tps']:7.0f}")
    return 0
