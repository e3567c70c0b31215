"""Every wrong input a newcomer tried ends in one line saying what to do, exit status 2, and no traceback.

Each case runs the real ``labkit`` in a subprocess (so nothing but stderr is judged) from an empty folder:
files that do not exist, output into folders that do not exist, a closed port, an unreachable Dask scheduler
(with a short timeout), the wrong working directory, and arguments that contradict each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (argv, a word the line must contain). "s.csv" exists (empty table), nothing else does.
CASES: list[tuple[list[str], str]] = [
    (["fit", "s.csv", "--out", "nope/x.toml"], "mkdir -p nope"),
    (["export", "s.csv", "--format", "otlp", "--out", "nope/x.json"], "mkdir -p nope"),
    (["measure", "--spans", "nope/x.csv"], "mkdir -p nope"),
    (["measure", "--events", "nope/x.jsonl"], "mkdir -p nope"),
    (["validate", "--csv", "nope/x.csv"], "mkdir -p nope"),
    (["fit", "--measure", "--spans-out", "nope/x.csv"], "mkdir -p nope"),
    (["figures", "--out", "nope/figures"], "labkit checkout"),
    (["figures"], "labkit checkout"),
    (["fit", "s.csv", "--measure"], "not both"),
    (["fit", "missing.csv"], "missing.csv"),
    (["export", "missing.csv", "--format", "otlp", "--out", "x.json"], "missing.csv"),
    (["replay", "missing.jsonl"], "missing.jsonl"),
    (["compare", "http_baseline"], "--help"),
    (["headline", "--bogus"], "--help"),
    (["compare", "http_baseline", "websocket", "--tps", "-5"], "decode_tps"),
]
LIVE_CASES: list[tuple[list[str], str]] = [
    (["measure", "--base-url", "http://127.0.0.1:1/v1", "--workload", "fast_test"], "--base-url"),
    (
        ["fleet", "--agents", "10", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "2"],
        "tcp://127.0.0.1:1",
    ),
]


def _labkit(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LABKIT_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "labkit", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _check(argv: list[str], word: str, tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("a,b\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _labkit(argv, tmp_path)
    err = proc.stderr.strip()
    assert proc.returncode == 2, (argv, proc.returncode, err)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("labkit") and "error:" in err and word in err, err
    assert proc.stdout == "", proc.stdout
    # A refused command leaves nothing behind (no empty output folders).
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(("argv", "word"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_wrong_input_is_one_line_exit_2(argv: list[str], word: str, tmp_path: Path) -> None:
    _check(argv, word, tmp_path)


@pytest.mark.live
@pytest.mark.parametrize(("argv", "word"), LIVE_CASES, ids=[a[0] for a, _ in LIVE_CASES])
def test_unreachable_server_is_one_line_exit_2(argv: list[str], word: str, tmp_path: Path) -> None:
    _check(argv, word, tmp_path)


def test_missing_extra_names_the_extra() -> None:
    from labkit.cli import describe

    err = ModuleNotFoundError("No module named 'plotly'", name="plotly")
    assert describe(err) == "this command needs plotly, from the 'lab' extra: pip install 'labkit[lab]'"
    assert describe(ModuleNotFoundError("No module named 'labkit_bug'", name="labkit_bug")) is None


def test_a_bug_keeps_its_traceback() -> None:
    from labkit.cli import describe

    assert describe(KeyError("x")) is None
