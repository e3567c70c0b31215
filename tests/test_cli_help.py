"""`labkit`, `labkit --help` and every subcommand's `--help` print help: the first thing a new user runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.cli import build_parser


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_every_command_is_listed_in_the_top_level_help():
    text = build_parser().format_help()
    assert _commands(), "no commands found"
    for name in _commands():
        assert name in text


@pytest.mark.parametrize("argv", [[], ["--help"]])
def test_bare_labkit_and_help_print_usage(argv):
    out = subprocess.run([sys.executable, "-m", "labkit", *argv], capture_output=True, text=True, timeout=60)
    assert "usage: labkit" in out.stdout, out.stderr
    assert "Traceback" not in out.stderr
    # Bare `labkit` asks for a command (exit 2, as argparse does); `--help` succeeds.
    assert out.returncode == (0 if argv else 2)


@pytest.mark.parametrize("name", _commands())
def test_every_subcommand_prints_its_help(name, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: labkit {name}")
    assert "the seed" not in out.lower()
