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
cat > check_cluster.py <<'PY'
import pathlib
import sys

from dask.distributed import Client, LocalCluster

import labkit
from labkit.sim.sweep import sweep


def where_labkit_is() -> str:
    return str(pathlib.Path(__import__("labkit").__file__).resolve())


def main() -> None:
    here = where_labkit_is()
    assert here.startswith(sys.prefix), f"labkit imported from {here}, not from the fresh environment"
    grid = {"profile": ["http_baseline", "websocket"], "method": "des", "rollouts": 3, "decode_tps": [65, 1000], "seed": 7}
    local = sweep(grid)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            workers = set(client.run(where_labkit_is).values())
            remote = sweep(grid, executor=client.get_executor())
    assert workers == {here}, workers
    assert remote.equals(local), (local, remote)
    print(f"wheel-check: a DES sweep of {len(local)} points on a 2-worker LocalCluster equals the in-process one")
    print(f"wheel-check: labkit {labkit.__version__} imported from the wheel's environment, here and on the workers")


# Dask starts its workers with multiprocessing's spawn: they re-import this file, so the work sits behind a guard.
if __name__ == "__main__":
    main()
PY
"$work/venv/bin/python" check_cluster.py
echo "wheel-check: ok"
