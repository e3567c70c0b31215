"""Shared fixtures. Tests use loopback only and are bounded in count and time."""

from __future__ import annotations

import pytest

from labkit.model import load_profile, load_workload


@pytest.fixture
def codex():
    return load_workload("codex_bugfix")


@pytest.fixture
def presets():
    return {n: load_profile(n) for n in ("http_baseline", "http_optimized", "http_chained", "websocket")}
