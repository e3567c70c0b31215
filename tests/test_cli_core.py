import json
import subprocess
import sys

import pytest

from labkit.cli import main


def test_headline_json(capsys):
    assert main(["headline", "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    for key in (
        "ttft_reduction",
        "e2e_reduction_at_65_tps",
        "e2e_reduction_at_1000_tps",
        "overhead_share_at_65_tps",
        "overhead_share_at_1000_tps",
        "workload",
    ):
        assert key in h
    assert 0 < h["ttft_reduction"] < 1


def test_headline_table(capsys):
    assert main(["headline"]) == 0
    out = capsys.readouterr().out
    assert "TTFT reduction" in out and "%" in out


def test_compare_json(capsys):
    assert main(["compare", "http_baseline", "websocket", "--tps", "1000", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["baseline"] == "http_baseline" and r["candidate"] == "websocket"


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["compare", "http_baseline", "nope"], "profile"),
        (["compare", "http_baseline", "websocket", "--tps", "-5"], "decode_tps"),
        (["compare", "http_baseline", "websocket", "--turns", "0"], "turns"),
        (["compare", "http_baseline", "websocket", "--workload", "nope"], "workload"),
        (["headline", "--workload", "nope"], "workload"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and field in err and "Traceback" not in err


def test_module_entry_point_exits_2_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "labkit", "compare", "http_baseline", "websocket", "--tps", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "decode_tps" in proc.stderr
