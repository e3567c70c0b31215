"""The snippets of docs/guides/test-double.md, run exactly as the page shows them (each in a fresh interpreter:
the Agents SDK keeps process-wide defaults)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("agents")

pytestmark = pytest.mark.live

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "test-double.md"


def snippets() -> dict[str, str]:
    """``<!-- snippet: NAME -->`` followed by a fenced python block."""
    text = PAGE.read_text()
    found = re.findall(r"<!-- snippet: (\w+) -->\s*```python\n(.*?)```", text, flags=re.S)
    return dict(found)


def run(code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=PAGE.parent
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_page_has_the_snippets() -> None:
    assert set(snippets()) == {"openai_sdk_websocket", "agents_sdk"}


def test_official_sdk_snippet() -> None:
    out = run(snippets()["openai_sdk_websocket"])
    turns, hits = re.search(r"(\d+) responses, (\d+) connection-cache hits", out).groups()  # type: ignore[union-attr]
    # fast_test: 5 model calls, each continuation a hit in the connection cache.
    assert (int(turns), int(hits)) == (5, 4)
    assert "final answer: '" in out


@pytest.mark.parametrize("transport", ["websocket", "http"])
def test_agents_sdk_snippet_completes_a_tool_calling_run(transport: str) -> None:
    out = run(snippets()["agents_sdk"], transport)
    ran = re.search(rf"{transport}: the tool ran (\d+) times; final output '", out)
    assert ran is not None, out
    # The agent's tool ran on every tool-calling turn (fast_test: 4) and the run ended with a message.
    assert int(ran.group(1)) == 4
