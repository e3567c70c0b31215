"""``labkit headline``: the numbers of OpenAI's engineering post reproduced from the default presets, each with its
5-95% interval over the ensemble of parameter sets that reproduce the fitted numbers."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.headline import headline
from labkit.cli import _ensemble

NAME = "headline"
HELP = (
    "Reproduce the headline numbers of OpenAI's engineering post "
    "(TTFT -45%%, end to end -40%% at 1,000 TPS) from the model, with 5-95%% intervals."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workload", default="codex_bugfix", help="workload preset (default: codex_bugfix)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _ensemble.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    h = headline(args.workload, ensemble=_ensemble.ensemble(args))
    print(json.dumps(h.to_dict(), indent=2) if args.json else h.text())
    return 0
