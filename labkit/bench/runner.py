"""Benchmark runner: statistics, result records, machine information, JSON files and the README table.

Every benchmark module in :mod:`labkit.bench` exposes ``run(quick: bool = False) -> dict`` and returns a
record built with :func:`result`. The runner adds the command and the machine's description and writes
``data/bench/NAME.json``. Results are ratios against a raw baseline measured in the same run (or achieved
against configured), because absolute times on a shared machine say little.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import math
import operator
import os
import platform
import statistics
import traceback
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

#: Default output folder, relative to the working directory (never inside the installed package).
BENCH_DIR = Path("data/bench")
#: Benchmarks in the order ``labkit bench all`` runs them.
NAMES: tuple[str, ...] = ("des", "server", "pacing", "capacity", "widgets", "export")
#: Optional benchmarks, run only by name (not by ``all``).
EXTRA_NAMES: tuple[str, ...] = ("soak",)
PACKAGES: tuple[str, ...] = (
    "labkit",
    "simpy",
    "numpy",
    "pandas",
    "websockets",
    "aiohttp",
    "httpx",
    "psutil",
    "plotly",
    "kaleido",
    "ipywidgets",
    "dask",
    "distributed",
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    # "within value of 1": achieved / configured ratios that may miss in either direction.
    "±": lambda ratio, value: abs(ratio - 1.0) <= value,
}
TABLE_BEGIN = "<!-- BEGIN bench-table -->"
TABLE_END = "<!-- END bench-table -->"


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Median and spread of repeated measurements: ``spread`` is (max - min) / median."""
    vals = sorted(float(v) for v in values)
    if not vals:
        raise ValueError("values: no measurements to summarize")
    med = statistics.median(vals)
    return {
        "median": med,
        "min": vals[0],
        "max": vals[-1],
        "spread": (vals[-1] - vals[0]) / med if med else math.inf,
        "n": len(vals),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) without numpy, for small samples."""
    vals = sorted(values)
    if not vals:
        raise ValueError("values: empty")
    pos = (len(vals) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def goal_met(ratio: float, op: str, value: float) -> bool:
    if op not in _OPS:
        raise ValueError(f"goal_op: unknown comparison {op!r}")
    return bool(math.isfinite(ratio) and _OPS[op](ratio, value))


def result(
    name: str,
    ratio: float,
    goal_op: str,
    goal_value: float,
    *,
    ratio_means: str,
    parts: Sequence[dict[str, Any]] = (),
    **raw: Any,
) -> dict[str, Any]:
    """One benchmark record. ``met`` compares ``ratio`` with the goal and, if there are parts, requires
    every part's goal too; ``raw`` holds the figures the ratio is computed from."""
    met = goal_met(ratio, goal_op, goal_value) and all(p["met"] for p in parts)
    rec: dict[str, Any] = {
        "name": name,
        "ratio": float(ratio),
        "goal": f"1 ± {goal_value:g}" if goal_op == "±" else f"{goal_op} {goal_value:g}",
        "goal_op": goal_op,
        "goal_value": float(goal_value),
        "met": met,
        "ratio_means": ratio_means,
    }
    if parts:
        rec["parts"] = list(parts)
    rec.update(raw)
    return rec


def _version(pkg: str) -> str | None:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, Python and package versions: enough to compare two result files fairly."""
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        # Other work on the machine skews every ratio measured on it: say how busy it was.
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "packages": {p: _version(p) for p in PACKAGES},
    }


def _module(name: str) -> Any:
    if name not in NAMES and name not in EXTRA_NAMES:
        raise ValueError(f"name: unknown benchmark {name!r}; known: {', '.join((*NAMES, *EXTRA_NAMES))}")
    return importlib.import_module(f"labkit.bench.{name}")


def run_benchmark(name: str, *, quick: bool = False, out_dir: Path | None = BENCH_DIR) -> dict[str, Any]:
    """Run one benchmark, add the command and machine info, write ``out_dir/NAME.json`` (unless None).

    A benchmark that cannot run (e.g. no Chromium for the export benchmark) yields a record with
    ``met: false`` and an ``error`` string, so ``labkit bench all`` still writes every other file.
    """
    mod = _module(name)
    started = _dt.datetime.now(_dt.UTC)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    from labkit.bench.pinning import boost, restore

    nice = boost()
    boosted = nice is not None
    restore(nice)
    try:
        rec = mod.run(quick=quick)
    except Exception as exc:  # a benchmark's failure is a result to record, not a crash of the run
        rec = {
            "name": name,
            "ratio": math.nan,
            "goal": getattr(mod, "GOAL", ""),
            "met": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }
    rec["command"] = f"labkit bench {name}" + (" --quick" if quick else "")
    rec["quick"] = quick
    rec["started_utc"] = started.isoformat(timespec="seconds")
    rec["seconds"] = round((_dt.datetime.now(_dt.UTC) - started).total_seconds(), 2)
    machine = machine_info()
    machine["load_avg_1m_before"] = load_before
    machine["priority_boost"] = boosted
    rec["machine"] = machine
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}.json").write_text(json.dumps(_jsonable(rec), indent=2, sort_keys=False) + "\n")
    return rec


def _jsonable(obj: Any) -> Any:
    """JSON has no NaN or infinity: write them as null so every file parses everywhere."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _jsonable(obj.item())
    return obj


def dumps(rec: dict[str, Any]) -> str:
    return json.dumps(_jsonable(rec), sort_keys=False)


# -- the README table ---------------------------------------------------------------------------------


def load_results(out_dir: Path = BENCH_DIR) -> list[dict[str, Any]]:
    """The stored results, in the benchmarks' canonical order."""
    order = {n: i for i, n in enumerate((*NAMES, *EXTRA_NAMES))}
    recs = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    return sorted(recs, key=lambda r: order.get(r.get("name", ""), len(order)))


def _fmt(x: Any) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def render_table(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: one row per benchmark (and per part), with its ratio, goal, verdict and command."""
    lines = [
        "| benchmark | ratio | spread (n) | goal | met | what the ratio is | figures behind it | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rec in results:
        cmd = f"`{rec.get('command', 'labkit bench ' + rec['name'])}`"
        rows = [rec, *rec.get("parts", [])] if rec.get("parts") else [rec]
        for i, row in enumerate(rows):
            name = rec["name"] if i == 0 else f"{rec['name']}: {row['name']}"
            met = "yes" if row.get("met") else "no"
            means = row.get("ratio_means") or row.get("error", "")
            stats = row.get("ratio_stats") or {}
            spread = f"{stats['spread']:.0%} ({stats['n']})" if stats.get("spread") is not None else ""
            lines.append(
                f"| {name} | {_fmt(row.get('ratio'))} | {spread} | {row.get('goal', '')} | {met} | {means} | "
                f"{row.get('summary', '')} | {cmd if i == 0 else ''} |"
            )
    machine = results[0].get("machine", {}) if results else {}
    if machine:
        lines.append("")
        lines.append(
            f"Machine: {machine.get('cores')} cores ({machine.get('cpu_model', '')}), Python "
            f"{machine.get('python')}; full figures, spreads, package versions and the machine's load "
            "average during each run in `data/bench/*.json`."
        )
    return "\n".join(lines)


def update_readme(readme: Path, out_dir: Path = BENCH_DIR) -> bool:
    """Replace the table between the bench-table markers of ``readme``; False if the markers are absent."""
    text = readme.read_text()
    if TABLE_BEGIN not in text or TABLE_END not in text:
        return False
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    table = render_table(load_results(out_dir))
    readme.write_text(f"{head}{TABLE_BEGIN}\n{table}\n{TABLE_END}{tail}")
    return True
