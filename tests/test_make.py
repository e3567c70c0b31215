"""The set-up commands of the README work as written (install is already done by `make test`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_notebooks_and_prints_its_url(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    # Keep the user's Jupyter state out: runtime, config and data dirs of the test's own.
    for var in ("JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        env[var] = str(tmp_path / var.lower())
    args = f"--port={port} --ServerApp.port_retries=0 --IdentityProvider.token=labkit-test"
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    out: list[str] = []
    try:
        deadline = time.monotonic() + 90
        url = None
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            m = re.search(rf"(http://127\.0\.0\.1:{port}/lab\S*)", line)
            url = m.group(1) if m else None
        assert url, "no URL printed:\n" + "".join(out[-30:])
        # The README's `labkit ...` commands: make lab says how to run them from the user's shell.
        assert any("make lab:" in line and ".venv/bin/labkit" in line for line in out), "".join(out[-30:])
        # The URL is logged a moment before the server accepts: poll until it answers.
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token=labkit-test", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/api/contents?token=labkit-test", timeout=10) as r:
            names = {item["name"] for item in json.load(r)["content"]}
        assert "01_bottleneck.ipynb" in names and "04_caching_strategies.ipynb" in names
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_make_lab_puts_labkit_on_the_labs_path_and_install_strips_notebooks():
    """Dry run (`make -n`): nothing is installed or started."""
    lab = subprocess.run(["make", "-n", "--no-print-directory", "lab"], cwd=ROOT, capture_output=True, text=True)
    assert lab.returncode == 0, lab.stderr
    assert f'export PATH="{ROOT / ".venv" / "bin"}:' in lab.stdout
    install = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", "install"], cwd=ROOT, capture_output=True, text=True
    )
    assert "filter.nbstripout.clean" in install.stdout
    # One line per step, pip quiet: the echo lines say what is installed.
    assert install.stdout.count('echo "make install:') >= 3
