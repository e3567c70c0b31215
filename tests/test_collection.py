"""The conftest hook that skips importing test files `-m` deselects as a whole never loses a selectable test."""

from __future__ import annotations

from pathlib import Path

import pytest
from collection_marks import deselects_whole_file

LIVE_FILE = """
import pytest

pytestmark = pytest.mark.live


def test_a(): ...


@pytest.mark.slow
def test_b(): ...


@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.browser)])
def test_c(x): ...
"""


@pytest.mark.parametrize(
    ("markexpr", "skipped"),
    [
        ("not slow and not live and not browser and not notebook", True),
        ("not live", True),
        ("live", False),
        ("slow", False),  # test_b is selected: its own mark, beyond the file's
        ("browser and live", False),  # test_c, through its pytest.param's mark
        ("notebook", True),
        ("not slow", False),  # test_a
    ],
)
def test_a_file_is_skipped_only_when_no_test_in_it_can_be_selected(
    tmp_path: Path, markexpr: str, skipped: bool
) -> None:
    path = tmp_path / "test_live_file.py"
    path.write_text(LIVE_FILE)
    assert deselects_whole_file(path, markexpr) is skipped


def test_a_file_without_module_marks_is_always_collected(tmp_path: Path) -> None:
    path = tmp_path / "test_plain.py"
    path.write_text("def test_x(): ...\n")
    assert deselects_whole_file(path, "not live") is False
    assert deselects_whole_file(path, "live") is True  # nothing in it is marked live


def test_an_unparsable_file_is_left_to_pytest(tmp_path: Path) -> None:
    path = tmp_path / "test_broken.py"
    path.write_text("def test_x(:\n")
    assert deselects_whole_file(path, "not live") is False
