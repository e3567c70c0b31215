"""Progress bars: the policy (terminal, pipe, ``--json``, ``--quiet``, ``LABKIT_PROGRESS``, a notebook kernel),
the helper's wraps, and the CLI under a pseudo-terminal: stdout byte-identical with and without a terminal,
a bar with a time left on a terminal's stderr, nothing on a pipe."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import tty
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.util import progress

ROOT = Path(__file__).resolve().parents[1]
#: tqdm's bar once it knows a rate: ``3/4 [00:01<00:00, 2.50replica/s]`` (elapsed < time left; below one per
#: second tqdm shows the inverse, ``1.25s/replica``).
ETA = re.compile(r"\d+/(\d+) \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(?:\w+/s|s/\w+)\]")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def policy(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The policy outside pytest (pytest sets PYTEST_CURRENT_TEST again when a test's call starts, so the
    helper is pointed at a variable nobody sets), no LABKIT_PROGRESS, not silenced."""
    monkeypatch.setattr(progress, "TEST_RUNNER_ENV", "LABKIT_TEST_NO_SUCH_VARIABLE")
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    monkeypatch.setenv("TQDM_MININTERVAL", "0")  # redraw at every update (tqdm reads TQDM_* defaults)
    progress.silence(False)
    yield monkeypatch
    progress.silence(False)


@pytest.fixture
def terminal(policy: pytest.MonkeyPatch) -> Callable[[], FakeTerminal]:
    """Makes stderr a terminal (a StringIO that says so); called in the test, as pytest sets its own stderr
    again when the test's call starts."""

    def make() -> FakeTerminal:
        err = FakeTerminal()
        policy.setattr(sys, "stderr", err)
        return err

    return make


def test_off_when_stderr_is_not_a_terminal(policy: pytest.MonkeyPatch) -> None:
    policy.setattr(sys, "stderr", io.StringIO())
    assert not progress.enabled()
    items = [1, 2, 3]
    assert progress.progress(items, desc="x") is items  # no wrapper at all: nothing to pay


def test_on_when_stderr_is_a_terminal(terminal: Callable[[], FakeTerminal]) -> None:
    err = terminal()
    assert progress.enabled()
    assert list(progress.progress(range(4), desc="points", unit="point")) == [0, 1, 2, 3]
    out = err.getvalue()
    assert "points" in out and "4/4" in out
    assert {m for m in ETA.findall(out)} == {"4"}  # count, elapsed < time left, rate
    # leave=False: the last thing written clears the line.
    assert out.endswith("\r") and out.rsplit("\r", 2)[-2].strip() == ""


def test_off_under_pytest_even_on_a_terminal(terminal: Callable[[], FakeTerminal], policy: pytest.MonkeyPatch) -> None:
    terminal()
    policy.setattr(progress, "TEST_RUNNER_ENV", "PYTEST_CURRENT_TEST")
    assert "PYTEST_CURRENT_TEST" in os.environ
    assert not progress.enabled()


@pytest.mark.parametrize("value", ["0", "false", "off", "NO"])
def test_env_var_silences(terminal: Callable[[], FakeTerminal], policy: pytest.MonkeyPatch, value: str) -> None:
    err = terminal()
    policy.setenv(progress.ENV_VAR, value)
    assert not progress.enabled()
    list(progress.progress(range(3), desc="x"))
    assert err.getvalue() == ""


@pytest.mark.parametrize("value", ["1", "true", "on", ""])
def test_env_var_on_keeps_the_policy(
    terminal: Callable[[], FakeTerminal], policy: pytest.MonkeyPatch, value: str
) -> None:
    terminal()
    policy.setenv(progress.ENV_VAR, value)
    assert progress.enabled()
    policy.setattr(sys, "stderr", io.StringIO())
    assert not progress.enabled()  # "1" does not force bars into a pipe


def test_env_var_bad_value_names_it(policy: pytest.MonkeyPatch) -> None:
    policy.setenv(progress.ENV_VAR, "sometimes")
    with pytest.raises(ValueError, match=progress.ENV_VAR):
        progress.enabled()


def test_quiet_flag_silences(terminal: Callable[[], FakeTerminal], capsys: pytest.CaptureFixture[str]) -> None:
    terminal()
    assert main(["--quiet", "headline", "--json"]) == 0
    assert not progress.enabled()
    assert main(["-q", "headline", "--json"]) == 0
    assert not progress.enabled()
    assert main(["headline", "--json"]) == 0
    assert progress.enabled()


def test_on_in_a_notebook_kernel(policy: pytest.MonkeyPatch) -> None:
    """A kernel's stderr is not a terminal, but the cell's output shows a widget bar."""
    policy.setattr(sys, "stderr", io.StringIO())
    assert not progress.in_kernel()
    shell = types.SimpleNamespace(kernel=object())
    policy.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    policy.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress.in_kernel() and progress.enabled()
    policy.setenv(progress.ENV_VAR, "0")
    assert not progress.enabled()


def test_bar_closes_when_the_loop_breaks(terminal: Callable[[], FakeTerminal]) -> None:
    terminal()
    for i in progress.progress(range(100), desc="search"):
        if i == 3:
            break
    from tqdm import tqdm

    assert not [b for b in tqdm._instances if not b.disable]


def test_progress_bar_counts_and_is_inert_when_off(
    terminal: Callable[[], FakeTerminal], policy: pytest.MonkeyPatch
) -> None:
    err = terminal()
    with progress.progress_bar(desc="trials", total=5, unit="trial") as bar:
        assert bar.shown
        bar.update(2)
        bar.note("n=40")
        bar.update(3)
    assert "5/5" in err.getvalue()
    progress.silence()
    with progress.progress_bar(desc="trials", total=5) as bar:
        assert not bar.shown
        bar.update()
        bar.note("ignored")
    assert "ignored" not in err.getvalue()


def test_a_stalled_bar_is_redrawn_and_the_ticker_ends_with_it(
    terminal: Callable[[], FakeTerminal], policy: pytest.MonkeyPatch
) -> None:
    """One shard of a fleet can take many seconds: its bar's elapsed time must move meanwhile."""
    import time

    err = terminal()
    policy.setattr(progress, "TICK_S", 0.02)
    with progress.progress_bar(desc="fleet shards", total=1, unit="replica"):
        deadline = time.monotonic() + 10
        while err.getvalue().count("0/1") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert err.getvalue().count("0/1") >= 3  # drawn at the start, then redrawn with no update
    deadline = time.monotonic() + 10
    while progress._ticker is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert progress._ticker is None and not progress._open_bars


@pytest.mark.parametrize("on", [True, False])
def test_gather_keeps_order_and_errors(policy: pytest.MonkeyPatch, on: bool) -> None:
    err = FakeTerminal() if on else io.StringIO()
    policy.setattr(sys, "stderr", err)

    async def value(i: int) -> int:
        await asyncio.sleep(0.01 * (3 - i))
        return i

    async def boom() -> int:
        raise KeyError("lost")

    assert asyncio.run(progress.gather(*(value(i) for i in range(3)), desc="rollouts")) == [0, 1, 2]
    with pytest.raises(KeyError):
        asyncio.run(progress.gather(value(0), boom(), desc="rollouts"))
    out = asyncio.run(progress.gather(value(1), boom(), desc="rollouts", return_exceptions=True))
    assert out[0] == 1 and isinstance(out[1], KeyError)
    assert ("3/3" in err.getvalue()) is on


def _slower_first(i: int) -> int:
    import time

    if i == 99:
        raise KeyError("shard 99")
    time.sleep(0.02 * (3 - i))
    return i * 10


@pytest.mark.parametrize("pool", [False, True])
def test_map_done_keeps_order_and_counts_each(terminal: Callable[[], FakeTerminal], pool: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    err = terminal()
    with ThreadPoolExecutor(3) as ex:
        executor = ex if pool else None
        assert progress.map_done(_slower_first, range(3), executor, desc="shards", unit="replica") == [0, 10, 20]
        assert "3/3" in err.getvalue()
        with pytest.raises(KeyError, match="shard 99"):
            progress.map_done(_slower_first, [0, 99, 1], executor, desc="shards")


def test_write_keeps_stdout_lines_whole(
    terminal: Callable[[], FakeTerminal], capsys: pytest.CaptureFixture[str]
) -> None:
    terminal()
    for i in progress.progress(range(2), desc="notebooks"):
        progress.write(f"[{i + 1}/2] done")
    assert capsys.readouterr().out == "[1/2] done\n[2/2] done\n"


# The CLI, as a user runs it: on a terminal (a pseudo-terminal) and piped.


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", progress.ENV_VAR)}
    env["PYTHONPATH"] = str(ROOT)
    # Redraw at every update (tqdm reads TQDM_* defaults): a short run still shows its time left.
    env["TQDM_MININTERVAL"] = "0"
    return env


def _pty() -> tuple[int, int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    return master, slave


def run_on_terminal(args: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run the CLI with stdout and stderr on two pseudo-terminals; stdout's is raw (no newline translation)."""
    out_m, out_s = _pty()
    err_m, err_s = _pty()
    tty.setraw(out_s)
    cmd = [sys.executable, "-m", "labkit", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_s, stderr=err_s, env=env or _env(), cwd=ROOT)
    os.close(out_s)
    os.close(err_s)
    chunks: dict[int, list[bytes]] = {out_m: [], err_m: []}
    open_fds = [out_m, err_m]
    try:
        while open_fds:
            ready, _, _ = select.select(open_fds, [], [], 120)
            if not ready:
                raise TimeoutError(f"{cmd}: no output for 120 s")
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child closed its end
                    data = b""
                if data:
                    chunks[fd].append(data)
                else:
                    open_fds.remove(fd)
        code = proc.wait(timeout=60)
    finally:
        os.close(out_m)
        os.close(err_m)
        if proc.poll() is None:
            proc.kill()
    return code, b"".join(chunks[out_m]), b"".join(chunks[err_m])


def run_piped(args: list[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    cmd = [sys.executable, "-m", "labkit", *args]
    p = subprocess.run(cmd, capture_output=True, env=env or _env(), cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize("args", [["replay"], ["replay", "--json"]], ids=["text", "json"])
def test_stdout_is_byte_identical_on_a_terminal_and_piped(args: list[str]) -> None:
    code_t, out_t, err_t = run_on_terminal(args)
    code_p, out_p, err_p = run_piped(args)
    assert code_t == code_p == 0
    assert out_t == out_p and out_p
    assert b"replay sessions" in err_t  # the bar, on the terminal's stderr only
    assert err_p == b""


def test_fleet_bar_shows_time_left_on_a_terminal_and_nothing_piped() -> None:
    args = ["fleet", "--agents", "2000", "--replicas", "4", "--json"]
    code_t, out_t, err_t = run_on_terminal(args)
    code_p, out_p, err_p = run_piped(args)
    assert code_t == code_p == 0
    assert err_p == b""
    bars = ETA.findall(err_t.decode())
    assert bars and set(bars) == {"4"}, err_t.decode()[-500:]
    assert "fleet shards (2,000 agents)" in err_t.decode()
    # Same JSON keys, and the same figures but for the run's own wall time and memory.
    import json

    t, p = json.loads(out_t), json.loads(out_p)
    assert t.keys() == p.keys()
    measured = {"wall_s", "peak_rss_mb", "shard_seconds_max"}
    assert {k: v for k, v in t.items() if k not in measured} == {k: v for k, v in p.items() if k not in measured}


@pytest.mark.parametrize("how", ["flag", "env"])
def test_quiet_and_env_var_keep_a_terminal_clean(how: str) -> None:
    env = _env()
    args = ["replay", "--json"]
    if how == "flag":
        args = ["--quiet", *args]
    else:
        env[progress.ENV_VAR] = "0"
    code, out, err = run_on_terminal(args, env)
    assert code == 0 and out.startswith(b"{")
    assert err == b""


# A notebook kernel: the bar is a widget in the cell's output, blanked when the loop ends; the figures runner
# (and so the docs site's executed notebooks) runs kernels with bars off.

LOOP_CELL = """import time
from labkit.util import progress
print("bars", progress.enabled())
for _ in progress.progress(range(3), desc="cell loop", unit="step"):
    time.sleep(0.1)
"""
WIDGET = "application/vnd.jupyter.widget-view+json"


def _loop_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(LOOP_CELL)]
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_kernel_shows_a_widget_bar_and_blanks_it(tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(_loop_notebook(tmp_path / "loop.ipynb"), as_version=4)
    env = {**_env(), "PYTHONPATH": str(ROOT)}
    NotebookClient(nb, kernel_name="python3", timeout=120).execute(env=env, cwd=str(tmp_path))
    outputs = nb.cells[0].outputs
    assert [o.get("text") for o in outputs if o.output_type == "stream"] == ["bars True\n"]
    shown = [o for o in outputs if o.output_type == "display_data"]
    # The bar's output slot is there (the widget was displayed) and empty: nothing left to render.
    assert len(shown) == 1 and shown[0].data == {}
    # The widget went out: its models' state came back to the client.
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["model_name"] == "FloatProgressModel" for s in state.values())


@pytest.mark.notebook
def test_figures_runner_runs_kernels_without_bars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.report.notebooks import execute_notebook

    # As `labkit figures` runs outside pytest (the kernel would inherit pytest's variable and draw no bar).
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    monkeypatch.delenv(progress.ENV_VAR, raising=False)

    nb = execute_notebook(_loop_notebook(tmp_path / "loop.ipynb"), timeout=120)
    outputs = nb.cells[0].outputs
    assert [o.get("text") for o in outputs if o.output_type == "stream"] == ["bars False\n"]
    assert not [o for o in outputs if o.output_type == "display_data" or WIDGET in o.get("data", {})]
    assert "widgets" not in nb.metadata
