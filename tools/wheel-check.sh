#!/usr/bin/env bash
# Build a wheel, install it into a fresh virtual environment outside the checkout, and use it as a user would:
# the CLI from another folder, and a small DES sweep on a Dask LocalCluster whose workers import only the wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=${PYTHON:-python3}

"$root/.venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$root"
wheel=$(ls "$work"/dist/labkit-*.whl)
echo "wheel-check: built $(basename "$wheel")"
$python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "$wheel[cluster]"

cd "$work"   # not the checkout: nothing of it is importable from here
"$work/venv/bin/labkit" headline --json > headline.json
"$work/venv/bin/python" - <<'PY'
import json
h = json.load(open("headline.json"))
assert 0.4 < h["ttft_reduction"] < 0.5 and 0.35 < h["e2e_reduction_at_1000_tps"] < 0.45, h
print(f"wheel-check: labkit headline --json: TTFT -{h['ttft_reduction']:.1%}, e2e -{h['e2e_reduction_at_1000_tps']:.1%}")
PY
"$work/venv/bin/labkit" compare http_baseline websocket --tps 1000
"$work/venv/bin/python" - <<'PY'
import pathlib
import sys

import labkit
from dask.distributed import Client, LocalCluster

from labkit.sim.sweep import sweep

site = pathlib.Path(labkit.__file__).resolve()
assert ".venv" not in site.parts or "site-packages" in site.parts, site
grid = {"profile": ["http_baseline", "websocket"], "method": "des", "rollouts": 3, "decode_tps": [65, 1000], "seed": 7}
local = sweep(grid)
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
    with Client(cluster) as client:
        where = set(client.run(lambda: __import__("labkit").__file__).values())
        remote = sweep(grid, executor=client.get_executor())
assert all("site-packages" in w for w in where), where
assert remote.equals(local), (local, remote)
print(f"wheel-check: DES sweep of {len(local)} points on a LocalCluster equals in-process; workers import {where.pop()}")
PY
echo "wheel-check: ok"
