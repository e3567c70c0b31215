"""The notebooks: committed clean and paired, each runs headless top to bottom, and the figures runner works.

Every notebook runs with its small parameter set (``fast=True``) and HTML-only export into a temporary
folder; one runner test also writes every format and the index, as ``make figures`` does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jupytext
import nbformat
import pytest

from labkit.report import notebooks as runner
from labkit.report.notebooks import NOTEBOOK_DIR, NOTEBOOKS, TOUR, inject_parameters, list_figures, notebook_path

# Figures each notebook must write (the README tour's one included): a renamed or lost figure fails here.
EXPECTED = {
    "01_bottleneck": {"overhead_share", "stage_breakdown", "claims_region", "overhead_share_band"},
    "02_critical_path": {
        "ttft_waterfall",
        "ttft_steps",
        "e2e_by_profile",
        "gain_by_mechanism",
        "gap_closed",
        "gain_band",
    },
    "03_websocket_live": {"gantt", "ttft_ecdf", "latency_ecdf", "prediction_vs_measurement"},
    "04_caching_strategies": {"speedup_heatmap", "routing_effect", "routing_effect_p95", "speedup_band"},
    "05_failures": {"drops_all_transports", "drop_breakeven", "evictions", "fallback_turn_cost", "connection_limit"},
    "06_fleet": {"queueing_vs_erlang_c", "replica_load", "gain_under_load", "cache_budget"},
    "07_your_agent": {"session_calls", "tool_times", "replay_65", "replay_1000", "whatif", "fit_parameters"},
}


ROOT = Path(__file__).resolve().parent.parent


def _committed_text(path: Path) -> str:
    """The file as git holds it (the index: what the next commit records, HEAD's copy unless staged), so a
    notebook JupyterLab autosaved with outputs in the working tree does not fail the check; outside a git
    checkout (an unpacked sdist), the file on disk."""
    rel = (ROOT / path).resolve().relative_to(ROOT).as_posix()
    proc = subprocess.run(["git", "show", f":{rel}"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    if proc.returncode == 0:
        return proc.stdout
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT, capture_output=True, text=True)
    assert inside.returncode != 0, f"{rel} is not in git's index: git add it"
    return (ROOT / path).read_text(encoding="utf-8")


def _code_sources(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_committed_clean_and_paired(name: str) -> None:
    path = notebook_path(name)
    nb = nbformat.reads(_committed_text(path), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: outputs committed"
            assert cell.execution_count is None, f"{name}: execution count committed"
    assert "widgets" not in nb.metadata, f"{name}: widget state committed"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{name}: no python3 kernelspec"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    for knob in ("fast", "out_dir", "formats"):
        assert f"\n{knob} = " in "\n" + tagged[0].source, f"{name}: the parameters cell lacks {knob!r}"
    # A research document: it opens with narrative and names its question, method and caveats.
    assert nb.cells[0].cell_type == "markdown"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for word in ("**Question.**", "**Method.**", "Caveat"):
        assert word in text, f"{name}: no {word} in the narrative"
    # The paired py:percent script holds the same code, cell for cell.
    script = jupytext.reads(_committed_text(path.with_suffix(".py")), fmt="py:percent")
    assert _code_sources(script) == _code_sources(nb), f"{name}: .py and .ipynb differ; run jupytext --sync"


def test_notebooks_folder_pairs_every_notebook() -> None:
    assert (NOTEBOOK_DIR / "jupytext.toml").is_file()
    ipynbs = sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert ipynbs == sorted(NOTEBOOKS)
    assert set(TOUR) == set(NOTEBOOKS)
    for name, fig in TOUR.items():
        assert fig in EXPECTED[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless(name: str, tmp_path: Path) -> None:
    """Top to bottom in a fresh kernel with the small parameter set; every expected figure written."""
    out = tmp_path / name
    nb = runner.execute_notebook(
        notebook_path(name), {"fast": True, "out_dir": str(out), "formats": ["html"]}, timeout=240
    )
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    found = list_figures(out)
    assert set(found) == EXPECTED[name]
    assert all(fmts == ["html"] for fmts in found.values())
    # publish() keeps each figure as plotly JSON too (the tour re-renders from it).
    assert {p.stem for p in out.glob("*.json")} == EXPECTED[name]


def test_inject_parameters_after_the_tagged_cell() -> None:
    nb = nbformat.read(notebook_path("02"), as_version=4)
    out = inject_parameters(nb, {"fast": True, "formats": ["html"], "out_dir": "x/y"})
    idx = next(i for i, c in enumerate(out.cells) if "parameters" in c.metadata.get("tags", []))
    injected = out.cells[idx + 1]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert "fast = True" in injected.source and "formats = ['html']" in injected.source
    assert "out_dir = 'x/y'" in injected.source
    assert len(out.cells) == len(nb.cells) + 1  # the caller's notebook is left as read
    nbformat.validate(out)
    # Injecting again replaces the earlier injection instead of stacking a second one.
    again = inject_parameters(out, {"fast": False})
    assert len(again.cells) == len(nb.cells) + 1
    assert "fast = False" in again.cells[idx + 1].source


def test_inject_parameters_rejects_bad_input() -> None:
    nb = nbformat.read(notebook_path("01"), as_version=4)
    with pytest.raises(ValueError, match="^parameters:"):
        inject_parameters(nb, {"not a name": 1})
    with pytest.raises(ValueError, match="^parameters:"):
        inject_parameters(nb, {"x": object()})
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(ValueError, match="^parameters: the notebook has no cell tagged"):
        inject_parameters(bare, {"x": 2})
    with pytest.raises(ValueError, match="^notebook: unknown"):
        notebook_path("07_nope")


@pytest.mark.slow
def test_figures_runner_writes_every_format_index_and_tour(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """What `make figures` does, on one notebook: all formats (Chromium present), index, tour PNG."""
    from labkit.viz.export import find_browser

    out, docs = tmp_path / "figures", tmp_path / "docs"
    runs = runner.run_all(["02_critical_path"], out_root=out, docs_dir=docs, fast=True)
    assert [r.error for r in runs] == [None]
    printed = capsys.readouterr().out
    assert f"[1/1] 02_critical_path: {len(EXPECTED['02_critical_path'])} figures" in printed
    assert "02_critical_path/ttft_waterfall.{" in printed
    index = (out / "index.html").read_text()
    for fig in EXPECTED["02_critical_path"]:
        assert f"02_critical_path/{fig}.html" in index
    static = find_browser() is not None
    expected_formats = ["html", "png", "svg", "pdf"] if static else ["html"]
    assert all(f == expected_formats for f in list_figures(out / "02_critical_path").values())
    if static:
        png = docs / "02_critical_path.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(png.read_bytes()[16:20], "big"), int.from_bytes(png.read_bytes()[20:24], "big")
        assert (width, height) == runner.TOUR_SIZE
        # The tour image and its caption, from the same figure (labkit.report.notebooks.write_tour).
        assert sorted(p.name for p in docs.iterdir()) == ["02_critical_path.png", "captions.json"]
        assert json.loads((docs / "captions.json").read_text())["02_critical_path"]


def test_failing_notebook_is_reported_and_others_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook that raises is reported with its error (one line) and in the index; nothing is hidden."""
    bad = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("fast = False\nout_dir = '.'\nformats = []", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("raise RuntimeError('boom')"),
        ]
    )
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_bottleneck.ipynb"
    nbformat.write(bad, path)
    monkeypatch.setattr(runner, "notebook_path", lambda name: path)
    lines: list[str] = []
    runs = runner.run_all(["01"], out_root=tmp_path / "out", docs_dir=None, log=lines.append)
    assert runs[0].error is not None and "RuntimeError: boom" in runs[0].error
    assert any("FAILED RuntimeError: boom" in line for line in lines)
    assert "failed: RuntimeError: boom" in (tmp_path / "out" / "index.html").read_text()


def test_figures_command_rejects_bad_input(capsys: pytest.CaptureFixture) -> None:
    from labkit.cli import main

    assert main(["figures", "--formats", "html,gif", "--no-docs"]) == 2
    assert "formats: unknown gif" in capsys.readouterr().err
    assert main(["figures", "--jobs", "0", "--no-docs"]) == 2
    assert "jobs: must be >= 1" in capsys.readouterr().err
    assert main(["figures", "99_missing", "--no-docs"]) == 2
    assert "notebook: unknown '99_missing'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not runner.can_run_beside_live(), reason="idle priority is Linux's SCHED_IDLE")
def test_background_kernel_runs_at_idle_priority_over_unix_sockets(tmp_path: Path) -> None:
    """A kernel the runner starts in the background runs, with what it starts, at idle priority; kernels talk
    over Unix sockets in a folder that is removed afterwards."""
    import os
    import tempfile

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("parameters = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, subprocess, sys\n"
            "child = subprocess.run([sys.executable, '-c', 'import os; print(os.sched_getscheduler(0))'],"
            " capture_output=True, text=True).stdout.strip()\n"
            "print(os.sched_getscheduler(0), child)"
        ),
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    before = set(Path(tempfile.gettempdir()).glob("labkit-kernel-*"))
    idle = runner.execute_notebook(path, background=True, timeout=60)
    normal = runner.execute_notebook(path, timeout=60)
    assert idle.cells[1].outputs[0]["text"].split() == [str(os.SCHED_IDLE)] * 2
    assert normal.cells[1].outputs[0]["text"].split() == [str(os.sched_getscheduler(0))] * 2  # as ours
    assert set(Path(tempfile.gettempdir()).glob("labkit-kernel-*")) == before
