"""One home per layer: each folder imports only what the package map allows (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# module -> modules that must NOT be loaded after importing it (its whole import closure).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "labkit.model": ("labkit.wire", "labkit.sim", "labkit.live", "labkit.analysis", "labkit.viz", "simpy", "plotly"),
    "labkit.wire": ("labkit.model", "labkit.sim", "labkit.live", "labkit.analysis", "numpy", "pandas"),
    "labkit.wire.protocol": ("labkit.model", "numpy", "pandas"),
    "labkit.sim.analytic": ("labkit.live", "labkit.viz", "labkit.wire", "simpy", "plotly"),
    "labkit.sim.des": ("labkit.live", "labkit.viz", "labkit.wire", "plotly", "websockets", "aiohttp"),
    "labkit.sim.sweep": ("labkit.live", "labkit.viz", "plotly", "websockets", "aiohttp"),
    "labkit.live.server": ("simpy", "plotly", "labkit.viz", "labkit.sim.des"),
    "labkit.live.client": ("simpy", "plotly", "labkit.viz", "labkit.sim.des"),
    "labkit.live.runner": ("simpy", "plotly", "labkit.viz", "labkit.sim.des"),
    "labkit.analysis.headline": ("labkit.live", "labkit.viz", "plotly", "websockets", "aiohttp"),
    "labkit.viz": ("labkit.live", "websockets", "aiohttp"),
    "labkit.traces": ("labkit.live", "labkit.sim", "labkit.viz", "websockets", "aiohttp", "plotly", "simpy"),
}


def _loaded_after_import(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(module):
    loaded = _loaded_after_import(module)
    bad = sorted(m for m in loaded for f in FORBIDDEN[module] if m == f or m.startswith(f + "."))
    assert not bad, f"{module} pulls in {', '.join(bad)}"
