"""A real browser on a real JupyterLab: a cell running a fleet of shards shows a progress bar (tqdm's ipywidgets
bar, through ``labkit.util.progress``) with its count and time left while it runs, and the bar is gone when the
cell ends.

JupyterLab runs on loopback with a token and its own temporary config, runtime, settings, workspace and IPython
folders, on a notebook written into a temporary folder; headless Debian Chromium is driven through Playwright
for Python with ``executable_path`` (no browser download), as in ``tests/test_browser.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from labkit.util import progress

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "labkit-progress-browser-test"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync"]
REPLICAS = 8
#: The cell a user waits on: a fleet sharded by replica (a few seconds on a loaded 2-core machine).
FLEET_CELL = f"""from labkit.sim.fleet import fleet_spec, run_fleet
result = run_fleet(fleet_spec("websocket", agents=12_000, replicas={REPLICAS}))
print("fleet done:", result.metrics.rollouts, "rollouts")
"""
#: The widget bar's right-hand text once it knows a rate: ``3/8 [00:01<00:02, 2.50replica/s]`` (or
#: ``1.25s/replica``: tqdm shows the inverse below one per second).
ETA = re.compile(rf"\d+/{REPLICAS} \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(replica/s|s/replica)\]")
# Every progress bar widget in the page, with the text of the box around it (tqdm: label, bar, counts).
BARS_JS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output .widget-hprogress'))
    .map(p => (p.closest('.widget-hbox') || p.parentElement).textContent.replace(/\\s+/g, ' ').trim())"""


def _chromium() -> str | None:
    env = os.environ.get("BROWSER_PATH")
    return shutil.which(env) if env else shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab on 127.0.0.1 serving a one-cell notebook; yields (base URL, the notebook's URL path)."""
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(FLEET_CELL)]
    # A kernelspec, or JupyterLab asks which kernel to start.
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "fleet.ipynb")
    dirs = {name: tmp_path / name for name in ("config", "runtime", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir()
    note = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    note.parent.mkdir(parents=True)
    note.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # The kernel runs as a user's would: not under pytest, bars not switched off, this checkout's labkit.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", progress.ENV_VAR)}
    env.update(
        PYTHONPATH=str(ROOT),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port=0",
        f"--IdentityProvider.token={TOKEN}",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path / "jupyter.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield _wait_for_server(proc, dirs["runtime"], log_path), "fleet.ipynb"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def _wait_for_server(proc: subprocess.Popen[bytes], runtime: Path, log: Path, timeout: float = 60.0) -> str:
    """The server's URL once ``/api/status`` answers (the port is read from its runtime file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
        for info in runtime.glob("jpserver-*.json"):
            try:
                base = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
                req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return base
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def test_long_cell_shows_a_bar_with_time_left_that_disappears(lab: tuple[str, str], tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium, or set BROWSER_PATH)")
    from playwright.sync_api import sync_playwright

    base, nb_path = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            try:
                seen, after, output = _run_cell(page, base, nb_path)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
        finally:
            browser.close()

    assert any("fleet shards (12,000 agents)" in s for s in seen), seen
    assert any(ETA.search(s) for s in seen), f"no bar with a time left among {seen}"
    assert after == [], f"bars left in the page after the cell ended: {after}"
    assert "fleet done:" in output and "%" not in output, output


def _run_cell(page, base: str, nb_path: str) -> tuple[list[str], list[str], str]:
    """Run the notebook; return every bar text seen while the cell ran, the bars left after, the cell's text."""
    page.goto(f"{base}/lab/tree/{nb_path}?token={TOKEN}", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(
        """() => {
            const k = document.querySelector('.jp-Toolbar-kernelName');
            const s = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return k && /python/i.test(k.textContent) && s && s.getAttribute('data-status') === 'idle';
        }""",
        timeout=60_000,
    )
    # Not awaited (the command's promise settles when the cell ends): the bars are read while it runs.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        seen.extend(t for t in page.evaluate(BARS_JS) if t not in seen)
        busy = page.evaluate("() => Array.from(document.querySelectorAll('.jp-InputArea-prompt'))"
                             ".some(p => p.textContent.includes('*'))")  # fmt: skip
        if not busy and "fleet done:" in page.inner_text(".jp-Notebook"):
            break
        page.wait_for_timeout(100)
    else:
        raise TimeoutError(f"the cell did not end within 180 s; bars seen: {seen}")
    page.wait_for_timeout(500)  # any late comm message (the bar's last update) has arrived
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.first.inner_text()
    return seen, page.evaluate(BARS_JS), page.inner_text(".jp-Cell .jp-OutputArea")
