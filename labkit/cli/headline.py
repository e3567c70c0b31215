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
    print(json.dumps(h.to_dict(), indent=2) if args.json else h.text())
    return 0
