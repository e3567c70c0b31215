"""The benchmark harness on tiny sizes: record shape, files, CLI and README table (no speed checks)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from labkit.bench import runner
from labkit.bench.pinning import apart, client_pinned, cores, pinned
from labkit.bench.server import RawJsonProcess
from labkit.cli import main

pytestmark = pytest.mark.live

REQUIRED = ("name", "ratio", "goal", "met", "command", "machine")


def _check_record(rec: dict, name: str) -> None:
    for key in REQUIRED:
        assert key in rec, key
    assert rec["name"] == name
    assert isinstance(rec["met"], bool)
    assert rec["machine"]["cores"] >= 1
    assert rec["machine"]["python"].count(".") == 2
    assert rec["machine"]["packages"]["simpy"]
    if "error" not in rec:
        assert math.isfinite(rec["ratio"]) and rec["ratio"] >= 0  # capacity may hold no level
        expected = runner.goal_met(rec["ratio"], rec["goal_op"], rec["goal_value"])
        assert rec["met"] == (expected and all(p["met"] for p in rec.get("parts", [])))


def test_summarize_and_percentile() -> None:
    s = runner.summarize([3.0, 1.0, 2.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "spread": 1.0, "n": 3}
    assert runner.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    with pytest.raises(ValueError):
        runner.summarize([])


def test_goal_and_result_record() -> None:
    assert runner.goal_met(1.9, "<=", 2)
    assert not runner.goal_met(2.1, "<=", 2)
    assert not runner.goal_met(math.nan, "<=", 2)
    assert runner.goal_met(0.97, "±", 0.05) and runner.goal_met(1.04, "±", 0.05)
    assert not runner.goal_met(0.94, "±", 0.05) and not runner.goal_met(1.06, "±", 0.05)
    assert runner.result("p", 1.0, "±", 0.05, ratio_means="x")["goal"] == "1 ± 0.05"
    part_bad = runner.result("a", 3.0, "<=", 2.0, ratio_means="x")
    rec = runner.result("b", 1.0, "<=", 2.0, ratio_means="y", parts=[part_bad], raw_figure=5)
    assert rec["goal"] == "<= 2" and rec["raw_figure"] == 5
    assert not rec["met"], "a failed part fails the benchmark"
    with pytest.raises(ValueError):
        runner.goal_met(1.0, "~", 1.0)


def test_des_bench_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "des", "--json", "--quick", "--out", str(tmp_path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1
    rec = json.loads(lines[0])
    _check_record(rec, "des")
    assert rec["quick"] is True
    assert rec["events_per_repeat"] > rec["rollouts_per_repeat"] * rec["turns_per_rollout"]
    assert [p["name"] for p in rec["parts"]] == ["spans", "stream", "pools"]
    assert rec["ratio"] == max(rec["parts"][0]["ratio"], rec["parts"][1]["ratio"])
    # A timing share: recorded, positive; its size is the benchmark's to report, not a unit test's to assert.
    assert rec["model_share_of_stream"] > 0
    # The load before and after the run is recorded, with the verdict of the load rule.
    assert rec["load"]["cores"] >= 1 and rec["load"]["after"] is not None
    assert rec["under_load"] == (rec["load"]["per_core"] > runner.LOAD_PER_CORE_LIMIT)
    assert rec["load"]["others_cpu_per_core"] is not None
    stored = json.loads((tmp_path / "des.json").read_text())
    assert stored["ratio"] == rec["ratio"] and stored["machine"] == rec["machine"]
    typed = runner.load_results(tmp_path)[0]
    assert isinstance(typed, runner.BenchRecord) and typed.to_dict() == stored


def test_unknown_benchmark_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        runner.run_benchmark("nope", out_dir=None)


def test_failing_benchmark_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import labkit.bench.des as des_bench

    def boom(quick: bool = False) -> dict:
        raise RuntimeError("no engine")

    monkeypatch.setattr(des_bench, "run", boom)
    rec = runner.run_benchmark("des", out_dir=tmp_path)
    assert rec.met is False and rec.error is not None and "no engine" in rec.error
    assert json.loads((tmp_path / "des.json").read_text())["ratio"] is None  # NaN is written as null


def _stored(tmp_path: Path, rec: dict, per_core: float) -> None:
    rec.update(
        command=f"labkit bench {rec['name']}",
        machine=runner.machine_info(),
        load=runner.load_mark(per_core * 2, per_core * 2, 2),
    )
    (tmp_path / f"{rec['name']}.json").write_text(runner.dumps(runner.BenchRecord.from_dict(rec)))


def test_table_and_readme_roundtrip(tmp_path: Path) -> None:
    rec = runner.result(
        "des", 1.5, "<=", 2.0, ratio_means="m", parts=[runner.result("p", 1.1, "<=", 1.5, ratio_means="q")]
    )
    _stored(tmp_path, rec, 0.2)
    _stored(tmp_path, runner.result("server", 1.2, "<=", 1.5, ratio_means="s", raw_figure=3), 0.9)
    loaded = runner.load_results(tmp_path)
    assert [r.name for r in loaded] == ["des", "server"]
    assert not loaded[0].under_load and loaded[1].under_load
    assert loaded[1].figures["raw_figure"] == 3 and loaded[0].parts[0].name == "p"
    table = runner.render_table(loaded)
    assert "| des | 1.5 |  | <= 2 | yes | 0.20/core | m |  | `labkit bench des` |" in table
    assert "| des: p | 1.1 |  | <= 1.5 | yes |  | q |" in table
    assert "| server | 1.2 |  | <= 1.5 | yes | **under load** (0.90/core) | s |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runner.TABLE_BEGIN}\nold\n{runner.TABLE_END}\noutro\n")
    assert runner.update_readme(readme, tmp_path)
    text = readme.read_text()
    assert "\nold\n" not in text and "| des | 1.5 |" in text and text.endswith("outro\n")
    assert not runner.update_readme(tmp_path / "des.json", tmp_path)


def test_bench_record_is_typed_and_round_trips() -> None:
    rec = runner.BenchRecord.from_dict(
        {"name": "x", "ratio": None, "goal": "<= 1", "met": False, "error": "E", "extra_figure": [1, 2]}
    )
    assert math.isnan(rec.ratio) and rec.error == "E" and rec.figures == {"extra_figure": [1, 2]}
    assert rec.load_per_core is None and not rec.under_load
    again = runner.BenchRecord.from_dict(json.loads(runner.dumps(rec)))
    assert again.error == "E" and again.figures == rec.figures and math.isnan(again.ratio)
    with pytest.raises(ValueError, match="^name"):
        runner.BenchRecord.from_dict({"ratio": 1.0})
    with pytest.raises(AttributeError):
        rec.ratio = 2.0  # type: ignore[misc]
    mark = runner.load_mark(0.4, 1.4, 2)
    assert mark["per_core"] == pytest.approx(0.7)
    # With the CPU others used during the run, the load averages (which lag, or count the benchmark) are ignored.
    assert runner.load_mark(1.4, 1.9, 2, others_cpu=0.1)["per_core"] == pytest.approx(0.1)
    assert runner.load_mark(0.4, 0.5, 2, others_cpu=0.8)["per_core"] == pytest.approx(0.8)
    meter = runner.OthersCpu(2)
    sum(i * i for i in range(200_000))  # our own work is not counted as others'
    share = meter.share()
    assert share is None or 0.0 <= share <= 1.0
    # Records from before the load rule carry the load in their machine info (taken after the run).
    legacy = runner.BenchRecord.from_dict(
        {"name": "old", "ratio": 1.0, "machine": {"load_avg_1m_before": 0.2, "load_avg_1m": 1.3, "usable_cores": 2}}
    )
    assert legacy.load_per_core == pytest.approx(0.65) and legacy.under_load


@pytest.mark.parametrize("name", ["widgets", "server", "capacity", "pacing", "export"])
def test_every_benchmark_runs_at_tiny_size(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if name == "export":
        from labkit.viz import find_browser

        if find_browser() is None:
            pytest.skip("no Chromium: the export benchmark records an error instead")
    status = main(["bench", name, "--json", "--quick", "--out", str(tmp_path)])
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0, rec.get("traceback")
    _check_record(rec, name)
    assert "error" not in rec
    assert (tmp_path / f"{name}.json").is_file()
    if name == "server" and len(cores()) > 1:
        # Every server on one core, the load generator on another (the raw JSON handler once served on the
        # client's core, a cheaper arrangement than the simulator's).
        assert len(rec["cores"]["servers"]) == 1 and not set(rec["cores"]["servers"]) & set(rec["cores"]["client"])
    if name in ("server", "pacing", "export"):
        # Benchmarks with several measures report each as a part with its own goal and raw figures.
        assert rec["parts"] and all({"name", "ratio", "goal", "met"} <= set(p) for p in rec["parts"])
    if name == "capacity":
        assert rec["levels"] and rec["levels"][0]["agents"] >= 1
        assert {lv["server"] for lv in rec["levels"]} == {"labkit", "raw"}
        assert rec["raw_held"] > 0 and rec["ratio"] == rec["labkit_held"] / rec["raw_held"]
    if name == "widgets":
        assert rec["slider_to_redraw_ms"]["n"] > 0


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="the load rule reads Linux's /proc")
def test_others_cpu_keeps_an_orphaned_grandchilds_cpu_in_the_tree() -> None:
    """A helper whose parent exits before it (a browser's renderer) is adopted and counted as ours, not as
    another process's. Run in a fresh interpreter: adopting orphans is for the rest of a process's life."""
    import subprocess
    import sys

    code = r"""
import subprocess, sys, time
from labkit.bench.runner import OthersCpu, adopt_orphans
if not adopt_orphans():
    print("skip"); raise SystemExit
burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
# The child starts the grandchild and exits at once: the grandchild is orphaned while it burns 0.5 s of CPU.
spawn = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {burn!r}])"
s0 = OthersCpu._sample()
subprocess.run([sys.executable, "-c", spawn], check=True)
time.sleep(1.5)
s1 = OthersCpu._sample()
print(s1[2] - s0[2])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    if out.stdout.strip() == "skip":
        pytest.skip("this system does not let a process adopt orphans")
    assert float(out.stdout) >= 0.45  # the grandchild's 0.5 s, give or take a clock tick


def test_servers_and_client_are_placed_apart() -> None:
    """A benchmark's servers share one core set and keep off the client's: a server started while the client is
    pinned would inherit the client's core, and its CPU per request would be measured in another arrangement."""
    assert apart({"labkit": [0], "raw": [0]}, [1]) == {"servers": [0], "client": [1]}
    assert apart({"labkit": [0], "raw": [0]}, [0]) == {"servers": [0], "client": [0]}  # one core: nothing to keep apart
    with pytest.raises(RuntimeError, match="different cores"):
        apart({"labkit": [0], "raw": [1]}, [1])
    with pytest.raises(RuntimeError, match="client's cores"):
        apart({"labkit": [1], "raw": [1]}, [1, 0])
    with pytest.raises(RuntimeError, match="client's cores"):
        apart({"labkit": [0, 1], "raw": [0, 1]}, [1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pinning is Linux's")
def test_a_server_started_inside_the_clients_pin_is_refused() -> None:
    with pinned(0), pytest.raises(RuntimeError, match="before pinning the client"):
        RawJsonProcess({"id": "resp_x"})
    assert not client_pinned()
