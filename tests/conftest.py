"""Shared fixtures. Tests use loopback only and are bounded in count and time."""

from __future__ import annotations

from pathlib import Path

import pytest
from collection_marks import deselects_whole_file

from labkit.model import load_profile, load_workload


@pytest.fixture
def codex():
    return load_workload("codex_bugfix")


@pytest.fixture
def presets():
    return {n: load_profile(n) for n in ("http_baseline", "http_optimized", "http_chained", "websocket")}


# Files that `-m` deselects as a whole are not imported (tests/collection_marks.py says why).
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    markexpr = config.getoption("markexpr", "")
    if not markexpr or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if deselects_whole_file(collection_path, markexpr) else None
