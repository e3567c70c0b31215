"""``labkit bench NAME``: run benchmarks against raw baselines and write ``data/bench/runs/NAME.json``.

A run writes under ``data/bench/runs/`` (ignored by git); ``--record`` writes the committed records in
``data/bench/`` that the benchmarks guide quotes, so running a benchmark never dirties the checkout by accident.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.bench import runner

NAME = "bench"
HELP = "Benchmark labkit against raw baselines (des, server, pacing, capacity, widgets, export, all)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name",
        choices=[*runner.NAMES, *runner.EXTRA_NAMES, "all", "table"],
        help="benchmark to run; 'all' runs every one; 'table' prints the table of stored results",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per benchmark")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a measurement)")
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"write the committed records in {runner.BENCH_DIR}/ (default: {runner.RUNS_DIR}/, ignored by git)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"directory for the result files (default: {runner.RUNS_DIR}/; 'table' reads {runner.BENCH_DIR}/)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        nargs="?",
        const=Path("README.md"),
        default=None,
        metavar="FILE",
        help="also rewrite the results table in FILE (default README.md) from the result files",
    )


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        args.out = runner.BENCH_DIR if args.record or args.name == "table" else runner.RUNS_DIR
    elif args.record:
        raise ValueError("record: writes the committed records in data/bench/; give --record or --out, not both")
    if args.name == "table":
        print(runner.render_table(runner.load_results(args.out)))
    else:
        names = runner.NAMES if args.name == "all" else (args.name,)
        failed = False
        for name in names:
            if not args.json:
                print(f"labkit bench {name}: running ...", flush=True)
            rec = runner.run_benchmark(name, quick=args.quick, out_dir=args.out)
            failed |= rec.error is not None
            if args.json:
                print(runner.dumps(rec), flush=True)
            else:
                verdict = "met" if rec.met else "NOT met"
                extra = f" ({rec.error})" if rec.error else ""
                load = rec.load_per_core
                mark = "" if load is None else f"; load {load:.2f}/core" + (" (UNDER LOAD)" if rec.under_load else "")
                print(f"  ratio {rec.ratio:.3g}, goal {rec.goal}: {verdict}{extra}{mark}", flush=True)
        if not args.json:
            print(runner.render_table(runner.load_results(args.out)))
        if failed:
            return 1
    if args.readme and not runner.update_readme(args.readme, args.out):
        raise ValueError(f"readme: no {runner.TABLE_BEGIN} marker in {args.readme}")
    return 0
