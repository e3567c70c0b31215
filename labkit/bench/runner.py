"""Benchmark runner: statistics, result records, machine information, JSON files and the README table.

Every benchmark module in :mod:`labkit.bench` exposes ``run(quick: bool = False) -> dict`` and returns a
record built with :func:`result`. The runner turns it into a typed :class:`BenchRecord`, adds the command, the
machine's description and its load average before and after the run, and writes ``data/bench/NAME.json``
(:meth:`BenchRecord.to_dict`); the table renderer reads the files back with :meth:`BenchRecord.from_dict`.
Results are ratios against a raw baseline measured in the same run (or achieved against configured),
because absolute times on a shared machine say little.

**The load rule.** A result is marked *under load* when the CPU other processes used during the run
(:class:`OthersCpu`) exceeds ``LOAD_PER_CORE_LIMIT`` (0.5) per usable core: other work then took turns with
the benchmark and its ratio says as much about the neighbours as about labkit. The 1-minute load averages
before and after are recorded too (records without the others' CPU are judged by the larger of them), but
they lag: the one before still carries what ran just before, the one after counts the benchmark's own
servers and load generators. The table shows the mark; the docs quote only
unmarked results.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The committed records (``labkit bench --record``), relative to the working directory (never inside the
#: installed package).
BENCH_DIR = Path("data/bench")
#: Where a run writes unless asked to record (``labkit bench --record``): ignored by git, so running a benchmark
#: never changes the committed records in ``BENCH_DIR`` that the guide quotes.
RUNS_DIR = BENCH_DIR / "runs"
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
#: Load average per usable core above which a result is marked as taken under load.
LOAD_PER_CORE_LIMIT = 0.5
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
    counted: bool = True,
    **raw: Any,
) -> dict[str, Any]:
    """One benchmark record. ``met`` compares ``ratio`` with the goal and, if there are parts, requires
    every counted part's goal too; ``raw`` holds the figures the ratio is computed from. A part made with
    ``counted=False`` keeps its own verdict but not its parent's (a goal labkit set itself beyond the one
    asked for)."""
    met = goal_met(ratio, goal_op, goal_value) and all(p["met"] for p in parts if p.get("counted", True))
    goal = f"1 ± {goal_value:g}" if goal_op == "±" else f"{goal_op} {goal_value:g}"
    rec: dict[str, Any] = {
        "name": name,
        "ratio": float(ratio),
        "goal": goal if counted else f"{goal} (not counted)",
        "goal_op": goal_op,
        "goal_value": float(goal_value),
        "met": met,
        "ratio_means": ratio_means,
    }
    if parts:
        rec["parts"] = list(parts)
    if not counted:
        rec["counted"] = False
    rec.update(raw)
    return rec


_FIELDS = (
    "name",
    "ratio",
    "goal",
    "goal_op",
    "goal_value",
    "met",
    "counted",
    "ratio_means",
    "summary",
    "ratio_stats",
    "parts",
    "command",
    "quick",
    "started_utc",
    "seconds",
    "load",
    "machine",
    "error",
    "traceback",
)


@dataclass(frozen=True)
class BenchRecord:
    """One benchmark result (or one part of it): the ratio, its goal, how it was measured and under what load.

    ``figures`` holds the raw figures behind the ratio (written at the top level of the JSON, next to the
    typed fields, so the files stay flat to read).
    """

    name: str
    ratio: float
    goal: str = ""
    goal_op: str = ""
    goal_value: float = math.nan
    met: bool = False
    #: False for a part whose goal does not enter its parent's ``met`` (see :func:`result`).
    counted: bool = True
    ratio_means: str = ""
    summary: str = ""
    ratio_stats: Mapping[str, float] | None = None
    parts: tuple[BenchRecord, ...] = ()
    command: str = ""
    quick: bool = False
    started_utc: str = ""
    seconds: float | None = None
    #: ``{"before": 1-min load average, "after": ..., "cores": usable cores, "per_core": max / cores}``.
    load: Mapping[str, Any] = field(default_factory=dict)
    machine: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    figures: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: a benchmark record needs a name")

    @property
    def load_per_core(self) -> float | None:
        """The number the load rule reads (see :func:`load_mark`; re-derived, so stored files follow the rule)."""
        if not self.load:
            return None
        mark = load_mark(
            self.load.get("before"),
            self.load.get("after"),
            self.load.get("cores") or 1,
            self.load.get("others_cpu_per_core"),
        )
        v = mark["per_core"]
        return float(v) if v is not None else None

    @property
    def under_load(self) -> bool:
        """Taken while the machine was busy (see the module docstring's load rule)."""
        v = self.load_per_core
        return v is not None and v > LOAD_PER_CORE_LIMIT

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ratio": self.ratio, "goal": self.goal}
        for key in _FIELDS[3:]:
            value = getattr(self, key)
            if key == "parts":
                if value:
                    out["parts"] = [p.to_dict() for p in value]
            elif key == "counted":
                if not value:
                    out[key] = False
            elif value is not None and value != {} and not (key == "goal_value" and math.isnan(value)):
                out[key] = dict(value) if isinstance(value, Mapping) else value
        if self.load:
            out["under_load"] = self.under_load
        out.update({k: v for k, v in self.figures.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchRecord:
        known = {k: data[k] for k in _FIELDS if k in data}
        if "name" not in known:
            raise ValueError("name: a benchmark record needs a name")
        known["ratio"] = math.nan if known.get("ratio") is None else float(known["ratio"])
        known["parts"] = tuple(cls.from_dict(p) for p in data.get("parts") or ())
        if known.get("goal_value") is None:
            known.pop("goal_value", None)
        machine = known.get("machine") or {}
        if not known.get("load") and machine.get("load_avg_1m") is not None:
            # Records written before the load rule: the machine info was taken after the run.
            known["load"] = load_mark(
                machine.get("load_avg_1m_before"), machine["load_avg_1m"], machine.get("usable_cores") or 1
            )
        figures = {k: v for k, v in data.items() if k not in _FIELDS and k != "under_load"}
        return cls(**known, figures=figures)


def load_mark(before: float | None, after: float | None, cores: int, others_cpu: float | None = None) -> dict[str, Any]:
    """The load figures of a run and the number the load rule reads (``per_core``).

    ``others_cpu`` is the CPU other processes used during the run, in cores per usable core: the direct
    measure, used when known. The 1-minute load averages are recorded too, but the one before a run still
    carries whatever ran just before it, and the one after counts the benchmark's own servers and load
    generators; records without ``others_cpu`` fall back to the larger of the two.
    """
    if others_cpu is not None:
        per_core: float | None = others_cpu
    else:
        worst = max((v for v in (before, after) if v is not None), default=None)
        per_core = worst / cores if worst is not None and cores else None
    return {
        "before": before,
        "after": after,
        "cores": cores,
        "others_cpu_per_core": others_cpu,
        "per_core": per_core,
        "limit_per_core": LOAD_PER_CORE_LIMIT,
    }


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _loadavg() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


class OthersCpu:
    """CPU other processes use while a benchmark runs: the machine's busy time (``/proc/stat``) minus this
    process tree's, in cores per usable core. Linux only (else None).

    This tree's CPU is this process's, its reaped children's, and every unreaped descendant's (alive or a
    zombie: its own time plus its reaped children's), read from ``/proc/<pid>/stat``: a process's CPU moves
    from one term to another when it is reaped, so the difference between two samples is the tree's CPU in
    between. Helpers orphaned inside the tree (a browser's renderer after its main process is killed) stay
    in it only if this process adopts them: :func:`adopt_orphans`.
    """

    def __init__(self, cores: int) -> None:
        self.cores = cores
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        import resource
        import time

        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        ours = _descendants_cpu(os.getpid())
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            r = resource.getrusage(who)
            ours += r.ru_utime + r.ru_stime
        return time.monotonic(), busy, ours

    def share(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return None
        wall = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, others / wall / self.cores)


def _descendants_cpu(root: int) -> float:
    """Seconds of CPU of ``root``'s unreaped descendants (alive or zombies), with their reaped children's."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return 0.0
    for name in entries:
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as fh:
                text = fh.read()
        except OSError:  # the process ended meanwhile
            continue
        # proc(5): "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last
        # ')'. From there, state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
        rest = text[text.rfind(")") + 2 :].split()
        if len(rest) < 15:
            continue
        pid = int(name)
        children.setdefault(int(rest[1]), []).append(pid)
        cpu[pid] = sum(int(x) for x in rest[11:15]) / ticks
    total = 0.0
    stack = list(children.get(root, ()))
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total


def adopt_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``), so their
    CPU stays in :class:`OthersCpu`'s tree instead of moving to init's. Returns False where unavailable.

    The adopted orphans are not reaped (nothing here waits for unknown children): they stay zombies until
    this process exits, a process-table entry each.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # 36: PR_SET_CHILD_SUBREAPER (linux/prctl.h)
    except (OSError, AttributeError):
        return False


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


def run_benchmark(name: str, *, quick: bool = False, out_dir: Path | None = RUNS_DIR) -> BenchRecord:
    """Run one benchmark, add the command, machine info and load, write ``out_dir/NAME.json`` (unless None).

    A benchmark that cannot run (e.g. no Chromium for the export benchmark) yields a record with
    ``met: false`` and an ``error`` string, so ``labkit bench all`` still writes every other file.
    """
    mod = _module(name)
    started = _dt.datetime.now(_dt.UTC)
    load_before = _loadavg()
    adopt_orphans()
    others = OthersCpu(_usable_cores())
    from labkit.bench.pinning import boost, restore

    nice = boost()
    boosted = nice is not None
    restore(nice)
    try:
        raw = mod.run(quick=quick)
    except Exception as exc:  # a benchmark's failure is a result to record, not a crash of the run
        raw = {
            "name": name,
            "ratio": math.nan,
            "goal": getattr(mod, "GOAL", ""),
            "met": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }
    load_after = _loadavg()
    machine = machine_info()
    machine["load_avg_1m_before"] = load_before
    machine["priority_boost"] = boosted
    data = dict(_jsonable(raw))
    data.update(
        command=f"labkit bench {name}" + (" --quick" if quick else ""),
        quick=quick,
        started_utc=started.isoformat(timespec="seconds"),
        seconds=round((_dt.datetime.now(_dt.UTC) - started).total_seconds(), 2),
        load=load_mark(load_before, load_after, machine["usable_cores"] or 1, others.share()),
        machine=machine,
    )
    rec = BenchRecord.from_dict(data)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}.json").write_text(dumps(rec, indent=2) + "\n")
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


def dumps(rec: BenchRecord | Mapping[str, Any], indent: int | None = None) -> str:
    data = rec.to_dict() if isinstance(rec, BenchRecord) else dict(rec)
    return json.dumps(_jsonable(data), sort_keys=False, indent=indent)


# -- the README table ---------------------------------------------------------------------------------


def load_results(out_dir: Path = BENCH_DIR) -> list[BenchRecord]:
    """The stored results, in the benchmarks' canonical order."""
    order = {n: i for i, n in enumerate((*NAMES, *EXTRA_NAMES))}
    recs = [BenchRecord.from_dict(json.loads(p.read_text())) for p in sorted(out_dir.glob("*.json"))]
    return sorted(recs, key=lambda r: order.get(r.name, len(order)))


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _load_cell(rec: BenchRecord) -> str:
    v = rec.load_per_core
    if v is None:
        before = rec.machine.get("load_avg_1m_before") if rec.machine else None
        return "not recorded" if before is None else f"{before:.2f} before (after not recorded)"
    cell = f"{v:.2f}/core"
    return f"**under load** ({cell})" if rec.under_load else cell


def render_table(results: Sequence[BenchRecord]) -> str:
    """A Markdown table: one row per benchmark (and per part), with its ratio, goal, verdict, load and command.

    Results taken under load (see the load rule) are marked in the ``load`` column: quote only unmarked ones.
    """
    lines = [
        "| benchmark | ratio | spread (n) | goal | met | load | what the ratio is | figures behind it | command |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in results:
        cmd = f"`{rec.command or 'labkit bench ' + rec.name}`"
        rows = [rec, *rec.parts]
        for i, row in enumerate(rows):
            name = rec.name if i == 0 else f"{rec.name}: {row.name}"
            met = "yes" if row.met else "no"
            means = row.ratio_means or row.error or ""
            stats = row.ratio_stats or {}
            spread = f"{stats['spread']:.0%} ({stats['n']})" if stats.get("spread") is not None else ""
            load = _load_cell(rec) if i == 0 else ""
            lines.append(
                f"| {name} | {_fmt(row.ratio)} | {spread} | {row.goal} | {met} | {load} | {means} | "
                f"{row.summary} | {cmd if i == 0 else ''} |"
            )
    machine = results[0].machine if results else {}
    if machine:
        lines.append("")
        lines.append(
            f"Machine: {machine.get('cores')} cores ({machine.get('cpu_model', '')}), Python "
            f"{machine.get('python')}; full figures, spreads and package versions in `data/bench/*.json`. "
            "Load: the CPU other processes used during the run, per usable core (older records: the larger "
            "1-minute load average before and after, per core); above "
            f"{LOAD_PER_CORE_LIMIT:g} the result is marked **under load** (other work shared the cores) and "
            "is not quoted."
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
