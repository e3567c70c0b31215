"""The ensemble options shared by ``labkit headline``, ``compare`` and ``claims`` (not a command itself)."""

from __future__ import annotations

import argparse

from labkit.analysis.ensemble import Ensemble, build_ensemble, load_fit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--members", type=int, default=200, help="parameter sets in the uncertainty ensemble (default 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the ensemble's draws (default 0)")
    parser.add_argument(
        "--fit",
        default=None,
        metavar="FIT.json",
        help="a `labkit fit --json` file of real sessions: its call_fixed_s bounds the members' fixed time per call",
    )
    parser.add_argument(
        "--fit-profile",
        default="websocket",
        help="the profile the fitted sessions ran on, for --fit (default websocket: the least fixed time per call)",
    )


def ensemble(args: argparse.Namespace) -> Ensemble:
    fit = load_fit(args.fit, args.fit_profile) if args.fit else None
    return build_ensemble(args.members, args.seed, fit)
