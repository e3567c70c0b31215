"""The headless twin of ``make lab``: run every notebook with its parameters, collect every figure.

Each notebook has a cell tagged ``parameters``; the runner inserts a cell tagged ``injected-parameters``
right after it (papermill's convention, done here with nbformat + nbclient), so a notebook read in
JupyterLab and a notebook run here execute the same cells. Notebooks write their figures through
:func:`labkit.analysis.research.publish` into ``<out>/<notebook>/``; the runner lists what appeared, writes
``<out>/index.html`` showing every figure, and renders one small PNG per notebook into ``docs/`` for the
README tour (all six in one browser start).
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

# nbformat, nbclient and jupyter_client (the `lab` extra) are imported where a notebook is read or run, so
# `labkit --help` and the names below work from the core install.

from labkit.util import progress

#: Where the notebooks are, relative to the working directory (a checkout's root): they are documents of the
#: repository, not data of the installed package.
NOTEBOOK_DIR = Path("notebooks")
NOTEBOOKS: tuple[str, ...] = (
    "01_bottleneck",
    "02_critical_path",
    "03_websocket_live",
    "04_caching_strategies",
    "05_failures",
    "06_fleet",
    "07_your_agent",
)
#: The figure of each notebook shown in the README tour (``docs/<notebook>.png``).
TOUR: dict[str, str] = {
    "01_bottleneck": "overhead_share",
    "02_critical_path": "ttft_waterfall",
    "03_websocket_live": "prediction_vs_measurement",
    "04_caching_strategies": "speedup_heatmap",
    "05_failures": "drop_breakeven",
    "06_fleet": "queueing_vs_erlang_c",
    "07_your_agent": "whatif",
}
TOUR_SIZE = (900, 500)
FIGURE_FORMATS: tuple[str, ...] = ("html", "png", "svg", "pdf")
#: Notebooks that time live servers on this machine: nothing may take the CPU from them (see :func:`run_all`).
LIVE_NOTEBOOKS: frozenset[str] = frozenset({"03_websocket_live"})
INJECTED_TAG = "injected-parameters"
logger = logging.getLogger(__name__)


def notebook_path(name: str, folder: Path | None = None) -> Path:
    """The ``.ipynb`` of a notebook named like ``01_bottleneck`` (or its number, ``01``)."""
    matches = [n for n in NOTEBOOKS if n == name or n.split("_", 1)[0] == name]
    if not matches:
        raise ValueError(f"notebook: unknown {name!r}; known: {', '.join(NOTEBOOKS)}")
    return (NOTEBOOK_DIR if folder is None else Path(folder)) / f"{matches[0]}.ipynb"


def inject_parameters(nb: nbformat.NotebookNode, params: Mapping[str, Any]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with a cell assigning ``params`` right after the cell tagged ``parameters``.

    Values are written with ``repr`` so they must be Python literals (numbers, strings, lists, None...).
    """
    import nbformat
    from nbformat.corpus.words import generate_corpus_id

    out = nbformat.from_dict(nb)  # deep copy: the caller's notebook stays as read
    cells = out.cells
    out.cells = [c for c in cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    idx = [i for i, c in enumerate(out.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not idx:
        raise ValueError("parameters: the notebook has no cell tagged 'parameters'")
    lines = ["# Parameters injected by labkit.report.notebooks"]
    for key, value in params.items():
        if not key.isidentifier():
            raise ValueError(f"parameters: {key!r} is not a Python name")
        text = repr(value)
        try:
            compile(text, "<parameter>", "eval")
        except SyntaxError as exc:
            raise ValueError(f"parameters: {key} = {text} is not a Python literal") from exc
        lines.append(f"{key} = {text}")
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    out.cells.insert(idx[0] + 1, cell)
    # Cell ids exist from nbformat 4.5 on: upgrade older notebooks so every cell can carry one.
    if out.nbformat == 4 and out.nbformat_minor < 5:
        out.nbformat_minor = 5
        for c in out.cells:
            c.setdefault("id", generate_corpus_id())
    return out


def idle_priority(pid: int) -> bool:
    """Put a process, every thread of it, in Linux's idle scheduling class (``SCHED_IDLE``): it then runs only
    on CPU time no other process wants, and whatever it starts later inherits the class.

    Returns False where the class does not exist (not Linux) or the system refuses it (a sandbox that filters
    the call): the process then keeps its priority.
    """
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE")):
        return False
    task_dir = Path(f"/proc/{pid}/task")
    tids = [int(t) for t in os.listdir(task_dir)] if task_dir.is_dir() else [pid]
    for tid in tids:
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError:
            return False
    return True


def execute_notebook(
    path: Path,
    params: Mapping[str, Any] | None = None,
    *,
    timeout: float = 600.0,
    kernel_name: str = "python3",
    background: bool = False,
) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel (cwd = the notebook's folder) and return it.

    With ``background``, the kernel (and the browser it starts to export figures) runs at idle priority
    (:func:`idle_priority`), so a live notebook timing servers beside it keeps the CPU whenever it asks.
    A failing cell raises ``nbclient.exceptions.CellExecutionError`` naming the cell and the error.
    """
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    if params:
        nb = inject_parameters(nb, params)
    # The kernel is started here rather than by nbclient, so its priority can be set before any cell runs
    # (a preexec_fn would do it in the child, but is unsafe in a process with threads, as the runner is).
    # On POSIX it talks over Unix sockets in a private folder: no TCP port on the machine, and no
    # "running over TCP without encryption" warning per kernel. The path is absolute because the kernel's
    # working directory is the notebook's folder.
    with contextlib.ExitStack() as stack:
        transport: dict[str, str] = {}
        if os.name == "posix":
            sockets = stack.enter_context(tempfile.TemporaryDirectory(prefix="labkit-kernel-"))
            transport = {"transport": "ipc", "ip": os.path.join(sockets, "k")}
        km = KernelManager(kernel_name=kernel_name, **transport)
        km.start_kernel(cwd=str(path.parent), env={**os.environ, progress.ENV_VAR: "0"})  # no bar in outputs
        stack.callback(km.shutdown_kernel, now=True)
        pid = getattr(km.provisioner, "pid", None) if background else None
        if pid is not None and not idle_priority(pid):
            logger.warning(
                "labkit figures: could not lower the priority of %s's kernel; it runs at normal priority", path.stem
            )
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=kernel_name,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    return nb


@dataclass
class NotebookRun:
    name: str
    seconds: float
    figures: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


def list_figures(folder: Path) -> dict[str, list[str]]:
    """``{figure name: [formats]}`` of the exported files in a folder, formats in ``FIGURE_FORMATS`` order."""
    found: dict[str, list[str]] = {}
    if not folder.is_dir():
        return found
    for f in sorted(folder.iterdir()):
        fmt = f.suffix.lstrip(".")
        if f.is_file() and fmt in FIGURE_FORMATS:
            found.setdefault(f.stem, []).append(fmt)
    return {k: sorted(v, key=FIGURE_FORMATS.index) for k, v in found.items()}


def _short_error(exc: BaseException) -> str:
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    return f"{ename}: {evalue}".strip().splitlines()[0][:300]


def run_one(
    name: str,
    out_root: Path,
    *,
    formats: Sequence[str] = FIGURE_FORMATS,
    fast: bool = False,
    timeout: float = 600.0,
    extra: Mapping[str, Any] | None = None,
    keep_dir: Path | None = None,
    background: bool = False,
) -> NotebookRun:
    """Execute one notebook with ``out_dir``, ``formats`` and ``fast`` injected; list its figures.

    With ``keep_dir``, the executed notebook (outputs included, made fit for a static page by
    :func:`labkit.report.site.prepare_for_site`) is written there too: the documentation site renders those
    copies, so the committed notebooks stay stripped. ``background`` runs its kernel at idle
    priority (see :func:`execute_notebook`).
    """
    path = notebook_path(name)
    # Absolute: the kernel runs in the notebook's folder, the output folder is relative to ours.
    folder = (Path(out_root) / path.stem).resolve()
    # Start from an empty folder so the index never shows a figure a notebook no longer makes.
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    params = {"out_dir": str(folder), "formats": list(formats), "fast": bool(fast), **(extra or {})}
    t0 = time.perf_counter()
    error = None
    try:
        executed = execute_notebook(path, params, timeout=timeout, background=background)
        if keep_dir is not None:
            import nbformat

            from labkit.report.site import prepare_for_site

            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            nbformat.write(prepare_for_site(executed), Path(keep_dir) / path.name)
    except Exception as exc:  # a failing notebook is reported, the others still run
        error = _short_error(exc)
    return NotebookRun(path.stem, time.perf_counter() - t0, list_figures(folder), error)


def write_index(out_root: Path, runs: Sequence[NotebookRun]) -> Path:
    """``<out>/index.html``: every figure of every notebook (PNG if present, else the HTML in a frame)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>labkit figures</title>",
        "<style>body{font-family:Arial,'Liberation Sans',sans-serif;margin:24px;color:#222}"
        "section{margin-bottom:32px}.grid{display:flex;flex-wrap:wrap;gap:16px}"
        ".card{border:1px solid #ddd;padding:8px;width:460px}.card img{width:100%}"
        ".card iframe{width:100%;height:300px;border:0}.err{color:#b00}</style></head><body>",
        "<h1>labkit figures</h1><p>Written by <code>make figures</code>: every notebook run headless.</p>",
    ]
    for run in runs:
        parts.append(f"<section><h2>{html.escape(run.name)}</h2>")
        if run.error:
            parts.append(f"<p class='err'>failed: {html.escape(run.error)}</p>")
        parts.append("<div class='grid'>")
        for fig, fmts in run.figures.items():
            base = f"{run.name}/{fig}"
            q = html.escape(base, quote=True)
            if "png" in fmts:
                view = f"<a href='{q}.html'><img src='{q}.png' alt='{html.escape(fig)}'></a>"
            else:
                view = f"<iframe src='{q}.html' title='{html.escape(fig)}'></iframe>"
            links = " · ".join(f"<a href='{q}.{f}'>{f}</a>" for f in fmts)
            parts.append(f"<div class='card'>{view}<div><b>{html.escape(fig)}</b> {links}</div></div>")
        parts.append("</div></section>")
    parts.append("</body></html>")
    path = out_root / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


#: The captions of the tour images, written beside them from the same figures (``docs/captions.json``).
CAPTIONS = "captions.json"


def figure_caption(fig: Any) -> str:
    """A figure's caption from the figure itself: its title, then every annotation that states a number
    (so an image's caption always says what the image shows)."""
    import re

    def text(t: Any) -> str:
        return re.sub(r"\s+", " ", re.sub(r"<br\s*/?>", " ", str(t or ""))).strip()

    title = text(fig.layout.title.text) if fig.layout.title else ""
    notes = [text(a.text) for a in fig.layout.annotations or () if re.search(r"\d", text(a.text))]
    # Axis labels of the scenarios ("~65 TPS") are not results: keep statements (an '=' or a ':' or a sign).
    notes = [n for n in notes if re.search(r"[=:%]|(^|\s)[-+]\d", n)]
    return "; ".join([t for t in [title, *notes] if t])


def write_captions(docs_dir: Path, captions: Mapping[str, str]) -> Path:
    """Merge ``captions`` into ``docs/captions.json`` (other notebooks' captions are kept)."""
    import json

    path = Path(docs_dir) / CAPTIONS
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    current.update(captions)
    path.write_text(json.dumps(dict(sorted(current.items())), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def update_captions(page: Path, docs_dir: Path) -> bool:
    """Rewrite the alt text of each tour image shown in ``page`` (``![...](PATH/NB.png)``, the README or a
    guide) from the captions file; returns whether the page changed."""
    import json
    import re

    captions = json.loads((Path(docs_dir) / CAPTIONS).read_text(encoding="utf-8"))
    text = Path(page).read_text(encoding="utf-8")
    new = text
    for name, caption in captions.items():
        pattern = rf"!\[[^\]]*\]\(((?:[^)\s]*/)?{re.escape(name)}\.png)\)"
        new = re.sub(pattern, lambda m, c=caption: f"![{c}]({m.group(1)})", new)  # type: ignore[misc]
    if new != text:
        Path(page).write_text(new, encoding="utf-8")
    return new != text


def write_tour(out_root: Path, docs_dir: Path, runs: Sequence[NotebookRun]) -> dict[str, Path]:
    """Render each notebook's tour figure (from its plotly JSON) as ``docs/<notebook>.png``, one browser, and
    its caption (:func:`figure_caption`) into ``docs/captions.json``: image and caption come from one figure."""
    import plotly.io as pio

    from labkit.viz.export import export_many

    figs = []
    for run in runs:
        src = out_root / run.name / f"{TOUR[run.name]}.json"
        if run.error is None and src.is_file():
            figs.append((pio.read_json(src), run.name))
    if not figs:
        return {}
    docs_dir.mkdir(parents=True, exist_ok=True)
    write_captions(docs_dir, {name: figure_caption(fig) for fig, name in figs})
    w, h = TOUR_SIZE
    out: dict[str, Path] = {}
    # The export helper always writes HTML too: render in a scratch folder, keep only the PNGs.
    with tempfile.TemporaryDirectory() as tmp:
        written = export_many(figs, ("png",), tmp, width=w, height=h, scale=1)
        for name, paths in written.items():
            if "png" in paths:
                out[name] = Path(shutil.copyfile(paths["png"], docs_dir / f"{name}.png"))
    return out


def default_jobs() -> int:
    """Notebooks to run at once by default: one per usable core, at most four (each is a kernel process)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def can_run_beside_live() -> bool:
    """Whether the other notebooks can run while the live ones time their servers: only at idle priority,
    which Linux has (``SCHED_IDLE``); elsewhere the live notebooks run alone, after the others."""
    return hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE")


def run_all(
    names: Sequence[str] | None = None,
    *,
    out_root: Path = Path("figures"),
    docs_dir: Path | None = None,
    formats: Sequence[str] = FIGURE_FORMATS,
    fast: bool = False,
    jobs: int | None = None,
    timeout: float = 600.0,
    log: Callable[[str], None] = progress.write,
    keep_dir: Path | None = None,
) -> list[NotebookRun]:
    """Run notebooks (default: all), print one line per notebook and per figure, write the index.

    The live notebooks (``LIVE_NOTEBOOKS``) time servers on the wall clock, so nothing may take the CPU from
    them: they run one at a time at normal priority while the others run ``jobs`` at a time (default
    :func:`default_jobs`) at idle priority, on the CPU time the live ones leave (most of it: they mostly
    wait on simulated latency). Where idle priority does not exist, the live notebooks run alone, after the
    others. Runs are reported as they end and indexed in notebook order.
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs: must be >= 1, got {jobs!r}")
    paths = [notebook_path(n) for n in (names or NOTEBOOKS)]
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    total = len(paths)
    position = {p.stem: i for i, p in enumerate(paths, 1)}
    done: dict[str, NotebookRun] = {}

    def report(run: NotebookRun) -> None:
        status = "FAILED " + run.error if run.error else f"{len(run.figures)} figures"
        log(f"[{position[run.name]}/{total}] {run.name}: {status} ({run.seconds:.1f} s)")
        for fig, fmts in run.figures.items():
            log(f"      {run.name}/{fig}.{{{','.join(fmts)}}}")

    shared = [p for p in paths if p.stem not in LIVE_NOTEBOOKS]
    live = [p for p in paths if p.stem in LIVE_NOTEBOOKS]
    beside = bool(live and shared) and can_run_beside_live()

    def one(p: Path) -> NotebookRun:
        background = beside and p.stem not in LIVE_NOTEBOOKS
        return run_one(
            p.stem, out_root, formats=formats, fast=fast, timeout=timeout, keep_dir=keep_dir, background=background
        )

    how = f", {jobs} at a time" if jobs > 1 else ""
    if beside:
        how += f"; {', '.join(p.stem for p in live)} at normal priority, the others at idle priority beside"
    log(f"labkit figures: running {total} notebook(s) into {out_root}{how}")
    t0 = time.perf_counter()
    # One thread for the live notebooks (one at a time), ``jobs`` for the others.
    with ThreadPoolExecutor(max_workers=1) as live_pool, ThreadPoolExecutor(max_workers=jobs) as shared_pool:
        futures = [shared_pool.submit(one, p) for p in shared]
        if beside:
            futures += [live_pool.submit(one, p) for p in live]
        for fut in progress.progress(as_completed(futures), desc="notebooks", total=len(futures), unit="notebook"):
            run = fut.result()
            done[run.name] = run
            report(run)
    for p in live if not beside else []:
        log(f"[{position[p.stem]}/{total}] {p.stem}: running alone (live timings)")
        done[p.stem] = one(p)
        report(done[p.stem])
    runs = [done[p.stem] for p in paths]
    if keep_dir is not None:
        from labkit.report.site import write_plotly_js

        log(f"site: plotly.js -> {write_plotly_js(Path(keep_dir))}")
    index = write_index(out_root, runs)
    log(f"index: {index}")
    if docs_dir is not None:
        for name, png in write_tour(out_root, Path(docs_dir), runs).items():
            log(f"tour: {name} -> {png}")
    log(f"labkit figures: {time.perf_counter() - t0:.1f} s wall")
    return runs


__all__ = [
    "CAPTIONS",
    "FIGURE_FORMATS",
    "LIVE_NOTEBOOKS",
    "NOTEBOOKS",
    "TOUR",
    "NotebookRun",
    "can_run_beside_live",
    "default_jobs",
    "execute_notebook",
    "figure_caption",
    "idle_priority",
    "inject_parameters",
    "list_figures",
    "notebook_path",
    "run_all",
    "run_one",
    "update_captions",
    "write_captions",
    "write_index",
    "write_tour",
]
