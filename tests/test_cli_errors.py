"""Every wrong input a newcomer tried ends in one line saying what to do, exit status 2, and no traceback.

Each case runs ``labkit.cli.main`` (what ``python -m labkit`` calls, nothing else) from an empty folder: files
that do not exist, output into folders that do not exist, a closed port, an unreachable Dask scheduler (with a
short timeout), the wrong working directory, and arguments that contradict each other. The table runs in-process
(a subprocess per case cost ~0.7 s of start-up each, most of this file's time in ``make test-fast``); an
exception that escapes ``main`` fails the test as a traceback would. One case per kind of error (a missing
folder, a bad value, a bad flag) also runs as the real ``labkit`` in a subprocess, judged on stderr alone.
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


def _labkit_in_process(
    argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    from labkit.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.delenv("LABKIT_TRACEBACK", raising=False)
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit, as `python -m labkit` would end
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _judge(argv: list[str], word: str, code: int, out: str, err: str) -> None:
    err = err.strip()
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("labkit") and "error:" in err and word in err, err
    assert out == "", out


def _folder(tmp_path: Path) -> list[str]:
    (tmp_path / "s.csv").write_text("a,b\n")
    return sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(("argv", "word"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_wrong_input_is_one_line_exit_2(
    argv: list[str], word: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _folder(tmp_path)
    _judge(argv, word, *_labkit_in_process(argv, tmp_path, monkeypatch, capsys))
    # A refused command leaves nothing behind (no empty output folders).
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# One case per kind of error, as the real program: a missing folder, a bad value, an unknown flag.
SUBPROCESS_CASES = [CASES[0], CASES[-1], CASES[-2]]


@pytest.mark.parametrize(("argv", "word"), SUBPROCESS_CASES, ids=[" ".join(a) for a, _ in SUBPROCESS_CASES])
def test_wrong_input_is_one_line_exit_2_as_a_program(argv: list[str], word: str, tmp_path: Path) -> None:
    before = _folder(tmp_path)
    proc = _labkit(argv, tmp_path)
    _judge(argv, word, proc.returncode, proc.stdout, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.live
@pytest.mark.parametrize(("argv", "word"), LIVE_CASES, ids=[a[0] for a, _ in LIVE_CASES])
def test_unreachable_server_is_one_line_exit_2(argv: list[str], word: str, tmp_path: Path) -> None:
    before = _folder(tmp_path)
    proc = _labkit(argv, tmp_path)
    _judge(argv, word, proc.returncode, proc.stdout, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_missing_extra_names_the_extra() -> None:
    from labkit.cli import describe

    err = ModuleNotFoundError("No module named 'plotly'", name="plotly")
    assert describe(err) == "this command needs plotly, from the 'lab' extra: pip install 'labkit[lab]'"
    assert describe(ModuleNotFoundError("No module named 'labkit_bug'", name="labkit_bug")) is None


def test_a_bug_keeps_its_traceback() -> None:
    from labkit.cli import describe

    assert describe(KeyError("x")) is None
