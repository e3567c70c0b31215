"""Benchmarks against raw baselines, one module per benchmark, run by :mod:`labkit.bench.runner`.

``labkit bench NAME`` (NAME in ``des, server, pacing, capacity, widgets, export, all``; ``soak`` on request)
runs the raw baseline and labkit side by side in one run, repeats, and writes ``data/bench/NAME.json``.
"""

from labkit.bench.runner import NAMES, render_table, run_benchmark

__all__ = ["NAMES", "render_table", "run_benchmark"]
