#!/usr/bin/env bash
# Build a wheel, install it into fresh virtual environments outside the checkout, and use it as a user would:
# 1. the core alone (`pip install labkit`: no JupyterLab, no plotly) runs the README's commands: `labkit headline`,
#    `labkit replay` on the shipped trace, `labkit serve` answering a request; a command that needs an extra says
#    which in one line;
# 2. with the `dask` extra, a small DES sweep on a Dask LocalCluster whose workers import only the wheel.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
python=${PYTHON:-python3}

echo "wheel-check: building the wheel"
"$root/.venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$root"
wheel=$(ls "$work"/dist/labkit-*.whl)
echo "wheel-check: installing $(basename "$wheel") (core only) into a fresh venv (a minute or two)"
$python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "$wheel"
count=$("$work/venv/bin/python" -m pip list --format=freeze 2>/dev/null | wc -l)
for heavy in jupyterlab plotly ipywidgets kaleido distributed openai; do
  if "$work/venv/bin/python" -m pip show --quiet "$heavy" >/dev/null 2>&1; then
    echo "wheel-check: FAILED: the core install pulled $heavy"; exit 1
  fi
done
echo "wheel-check: the core install is $count packages, without JupyterLab, plotly, Dask or the SDKs"

cd "$work"   # not the checkout: nothing of it is importable from here
"$work/venv/bin/labkit" headline --json > headline.json
"$work/venv/bin/python" - <<'PY'
import json
h = json.load(open("headline.json"))
assert 0.4 < h["ttft_reduction"] < 0.5 and 0.35 < h["e2e_reduction_at_1000_tps"] < 0.45, h
print(f"wheel-check: labkit headline --json: TTFT -{h['ttft_reduction']:.1%}, e2e -{h['e2e_reduction_at_1000_tps']:.1%}")
PY
"$work/venv/bin/labkit" compare http_baseline websocket --tps 1000 > /dev/null
echo "wheel-check: labkit compare: ok"
"$work/venv/bin/labkit" replay --json > replay.json
echo "wheel-check: labkit replay (the shipped trace): ok"
port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/venv/bin/labkit" serve --port "$port" > serve.log 2>&1 &
server=$!
"$work/venv/bin/python" - "$port" <<'PY'
import sys, time
import httpx
url = f"http://127.0.0.1:{sys.argv[1]}/v1/responses"
deadline = time.monotonic() + 30
while True:
    try:
        r = httpx.post(url, json={"model": "labkit-sim", "input": "hello"}, timeout=30)
        break
    except httpx.TransportError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
assert r.status_code == 200 and r.json()["status"] == "completed", r.text[:300]
print("wheel-check: labkit serve answered POST /v1/responses: completed")
PY
kill "$server"; wait "$server" 2>/dev/null || true; server=""
if "$work/venv/bin/labkit" validate --figure figs 2> extra.txt; then
  echo "wheel-check: FAILED: validate --figure ran without the lab extra"; exit 1
fi
grep -q "labkit\[lab\]" extra.txt || { echo "wheel-check: FAILED: no line naming the extra: $(cat extra.txt)"; exit 1; }
echo "wheel-check: a command needing plotly says: $(cat extra.txt)"

echo "wheel-check: adding the dask extra (a minute)"
"$work/venv/bin/python" -m pip install --quiet "$wheel[dask]"
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
