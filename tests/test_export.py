"""labkit.viz.export: HTML always (no CDN), PNG/SVG/PDF through kaleido and the system Chromium, and one
clear line when no browser is found."""

from __future__ import annotations

import logging
import os
import re
import struct
from pathlib import Path

import plotly.graph_objects as go
import pytest

from labkit.viz import export, export_many, find_browser
from labkit.viz.export import NO_BROWSER_MESSAGE, PLOTLY_JS_NAME

needs_browser = pytest.mark.skipif(
    find_browser() is None,
    reason=(
        "no Chrome/Chromium on this machine: `make install` installs Debian's chromium where apt-get can run, "
        "or set BROWSER_PATH"
    ),
)

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF"}


def _fig(n: int = 3) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(n)), y=[v * v for v in range(n)], mode="lines"))
    fig.update_layout(title="a test figure", xaxis_title="x (s)", yaxis_title="y (s)")
    return fig


def _script_sources(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    return struct.unpack(">II", data[16:24])


def _check_magic(fmt: str, path: Path) -> None:
    head = path.read_bytes()[:512]
    if fmt == "svg":
        assert b"<svg" in head, head[:80]
    elif fmt == "html":
        assert head.lstrip().lower().startswith(b"<html") or b"<!doctype html" in head.lower()
    else:
        assert head.startswith(MAGIC[fmt]), head[:16]


@pytest.fixture
def no_browser(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    assert find_browser() is None


@needs_browser
@pytest.mark.browser
def test_every_format_in_one_batch(tmp_path):
    big = _fig()
    big.update_layout(width=640, height=400)  # the figure's own size must survive the batch path
    written = export_many([(big, "one"), (_fig(5), "two")], out_dir=tmp_path, scale=1)
    assert list(written) == ["one", "two"]
    for name, paths in written.items():
        assert list(paths) == ["html", "png", "svg", "pdf"]
        for fmt, path in paths.items():
            assert path == tmp_path / f"{name}.{fmt}"
            _check_magic(fmt, path)
    assert _png_size(written["one"]["png"]) == (640, 400)
    # Explicit sizes win, and scale multiplies the raster.
    again = export(_fig(), "sized", formats=("png",), out_dir=tmp_path, width=300, height=200, scale=2)
    assert list(again) == ["html", "png"]  # HTML is always written and reported
    assert _png_size(again["png"]) == (600, 400)


def test_html_is_offline(tmp_path, no_browser):
    inline = export(_fig(), "inline", formats=("html",), out_dir=tmp_path)
    text = inline["html"].read_text()
    # No script is loaded from anywhere: plotly.js itself is inside the file.
    assert _script_sources(text) == []
    assert len(text) > 1_000_000
    shared = export(_fig(), "shared", formats=("html",), out_dir=tmp_path, plotlyjs="directory")
    text = shared["html"].read_text()
    assert _script_sources(text) == [PLOTLY_JS_NAME]
    assert (tmp_path / PLOTLY_JS_NAME).stat().st_size > 1_000_000


def test_no_browser_writes_html_and_one_clear_line(tmp_path, no_browser, caplog):
    with caplog.at_level(logging.WARNING, logger="labkit.viz.export"):
        written = export(_fig(), "lonely", out_dir=tmp_path)
    assert list(written) == ["html"]
    assert written["html"].is_file()
    assert not (tmp_path / "lonely.png").exists()
    records = [r for r in caplog.records if r.name == "labkit.viz.export"]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert "\n" not in msg
    assert "apt-get install chromium" in msg and "BROWSER_PATH" in msg
    assert msg == NO_BROWSER_MESSAGE


def test_html_only_never_looks_for_a_browser(tmp_path, no_browser, caplog):
    with caplog.at_level(logging.WARNING):
        export(_fig(), "quiet", formats=["html"], out_dir=tmp_path)
    assert not caplog.records


def test_browser_path_is_honoured(tmp_path, monkeypatch):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    assert find_browser() == str(fake)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser() is None


def test_a_broken_browser_still_leaves_the_html(tmp_path, monkeypatch, caplog):
    fake = tmp_path / "broken-chrome"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(fake))
    (tmp_path / "out").mkdir()
    stale = tmp_path / "out" / "b.png"
    stale.write_bytes(b"old")
    with caplog.at_level(logging.WARNING, logger="labkit.viz.export"):
        written = export(_fig(), "b", formats=("html", "png"), out_dir=tmp_path / "out")
    assert list(written) == ["html"]
    assert not stale.exists()  # an old image never passes for this run's output
    assert any("failed" in r.getMessage() for r in caplog.records)


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="^formats:"):
        export(_fig(), "x", formats=("gif",), out_dir=tmp_path)
    with pytest.raises(ValueError, match="^name:"):
        export(_fig(), "../escape", out_dir=tmp_path)
    with pytest.raises(ValueError, match="^name:"):
        export_many([(_fig(), "same"), (_fig(), "same")], formats=("html",), out_dir=tmp_path)
    with pytest.raises(ValueError, match="^plotlyjs:"):
        export(_fig(), "x", formats=("html",), out_dir=tmp_path, plotlyjs="cdn")
    assert not any(p.suffix == ".html" for p in tmp_path.iterdir() if os.path.isfile(p))


@pytest.fixture
def browser_starts(monkeypatch):
    """Count kaleido browser starts (one-shot batches and the persistent engine both construct a Kaleido)."""
    import kaleido
    import kaleido._sync_server

    starts: list[int] = []

    class Counting(kaleido.Kaleido):
        def __init__(self, *args, **kwargs):
            starts.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kaleido, "Kaleido", Counting)
    monkeypatch.setattr(kaleido._sync_server, "Kaleido", Counting)
    return starts


@needs_browser
@pytest.mark.browser
def test_a_batch_starts_one_browser(tmp_path, browser_starts):
    written = export_many([(_fig(), "a"), (_fig(4), "b"), (_fig(5), "c")], ("svg", "pdf"), tmp_path)
    assert all(list(p) == ["html", "svg", "pdf"] for p in written.values())
    assert len(browser_starts) == 1


@needs_browser
@pytest.mark.browser
def test_persistent_browser_serves_every_export_in_the_block(tmp_path, browser_starts):
    from labkit.viz import persistent_browser

    with persistent_browser() as browser:
        assert browser == find_browser()
        for i in range(3):
            assert list(export(_fig(i + 2), f"f{i}", ("png",), tmp_path)) == ["html", "png"]
    assert len(browser_starts) == 1
    for i in range(3):
        _check_magic("png", tmp_path / f"f{i}.png")
    import kaleido

    assert not kaleido._global_server.is_running()  # the block stopped what it started


def test_an_image_that_failed_is_rendered_once_more_on_its_own(tmp_path, monkeypatch):
    """A browser tab can lose a race with its own page on a busy machine ("kaleido_scopes is not defined"):
    what failed is retried once, alone; what failed twice is left out (its HTML stays)."""
    import sys

    export_module = sys.modules["labkit.viz.export"]  # the module (labkit.viz.export is also its function's name)
    batches: list[list[str]] = []

    def render(specs, browser):
        batches.append([spec["path"].name for spec in specs])
        failed = []
        for spec in specs:
            name = spec["path"].name
            if (name == "a.png" and len(batches) == 1) or name == "b.svg":
                failed.append(RuntimeError("ReferenceError: kaleido_scopes is not defined"))
                continue
            spec["path"].write_bytes(b"image")
        return failed

    monkeypatch.setattr(export_module, "_render", render)
    monkeypatch.setattr(export_module, "find_browser", lambda: "chromium")
    written = export_many([(_fig(), "a"), (_fig(), "b")], out_dir=tmp_path, formats=("png", "svg"))
    assert batches == [["a.png", "a.svg", "b.png", "b.svg"], ["a.png", "b.svg"]]
    assert list(written["a"]) == ["html", "png", "svg"]
    assert list(written["b"]) == ["html", "png"]
