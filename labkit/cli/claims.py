"""``labkit claims``: the calibration report, every public number against the model on its stated conditions."""

from __future__ import annotations

import argparse
import json

from labkit.analysis.claims import calibration_report
from labkit.cli import _ensemble

NAME = "claims"
HELP = (
    "Every public number (OpenAI's post, guide, cookbook, partners, TraceLab, real sessions, other systems) against "
    "the model on its conditions: value, 5-95%% interval, error, MAPE by source."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown tables the docs page holds")
    _ensemble.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    report = calibration_report(_ensemble.ensemble(args))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.markdown() if args.markdown else report.text())
    return 0
