"""Write figures for a writeup: HTML always, PNG/SVG/PDF through kaleido 1.x and a local Chrome/Chromium.

- HTML carries plotly.js itself (inlined, or one shared ``plotly.min.js`` copied next to the files), never a
  CDN link: the figures must open on an offline machine.
- Static formats need a Chrome or Chromium. It is looked up in ``BROWSER_PATH``, then on ``PATH``
  (``chromium``, ``chromium-browser``, ``google-chrome``, ...). With none found, one log line says how to
  get one and the HTML is still written; nothing raises.
- A batch renders every image of every figure with ONE browser start (kaleido's batch call), with MathJax
  off: kaleido would otherwise fetch MathJax from a CDN, which stalls ~5 s now and then when offline.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go

from labkit.viz.template import HEIGHT, SCALE, WIDTH

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("html", "png", "svg", "pdf")
STATIC_FORMATS = frozenset({"png", "svg", "pdf", "jpeg", "webp"})
BROWSER_NAMES: tuple[str, ...] = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
)
NO_BROWSER_MESSAGE = (
    "labkit.viz.export: no Chrome/Chromium found, wrote HTML only; for PNG/SVG/PDF run "
    "`apt-get install chromium` (or install Chrome) or set BROWSER_PATH to a Chrome/Chromium executable"
)
PLOTLY_JS_NAME = "plotly.min.js"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def find_browser() -> str | None:
    """The Chrome/Chromium that kaleido will use: ``BROWSER_PATH`` if it names an executable, else PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        found = shutil.which(env)
        if found:
            return found
        log.warning("labkit.viz.export: BROWSER_PATH=%r is not an executable; looking on PATH", env)
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    out: list[str] = []
    for f in formats:
        f = f.lower().lstrip(".")
        f = "jpeg" if f == "jpg" else f
        if f != "html" and f not in STATIC_FORMATS:
            raise ValueError(f"formats: unknown format {f!r}; known: html, {', '.join(sorted(STATIC_FORMATS))}")
        if f not in out:
            out.append(f)
    return tuple(out)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name: {name!r} must be a plain file stem (letters, digits, '.', '_', '-')")
    return name


def _write_html(fig: go.Figure, path: Path, plotlyjs: str) -> None:
    if plotlyjs == "inline":
        include: bool | str = True
    else:
        # One local copy shared by every figure of the directory: 4.6 MB once instead of per file.
        src = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS_NAME
        dest = path.parent / PLOTLY_JS_NAME
        if not dest.exists() or dest.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, dest)
        include = PLOTLY_JS_NAME
    fig.write_html(
        path,
        include_plotlyjs=include,
        include_mathjax=False,
        full_html=True,
        config={"displaylogo": False, "toImageButtonOptions": {"format": "svg", "filename": path.stem}},
    )


#: Key of ``layout.meta`` where a figure that fills its container on screen asks for its static export's width.
EXPORT_WIDTH = "export_width"


def _size(fig: go.Figure, width: int | None, height: int | None) -> tuple[int, int]:
    # A figure's own size wins over the defaults; explicit arguments win over both.
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    w = width or fig.layout.width or meta.get(EXPORT_WIDTH) or WIDTH
    h = height or fig.layout.height or HEIGHT
    return int(w), int(h)


def export_many(
    figures: Iterable[tuple[go.Figure, str]],
    formats: Sequence[str] = FORMATS,
    out_dir: str | os.PathLike[str] = "figures",
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = SCALE,
    plotlyjs: str = "inline",
) -> dict[str, dict[str, Path]]:
    """Export ``(figure, name)`` pairs in every format; one browser start for all static images.

    Returns ``{name: {format: path}}`` with only the files actually written (HTML always; static formats
    only when a browser was found and rendering succeeded). ``plotlyjs`` is ``"inline"`` (each HTML file
    stands alone) or ``"directory"`` (one shared local ``plotly.min.js`` next to the files).
    """
    fmts = _check_formats(formats)
    if plotlyjs not in ("inline", "directory"):
        raise ValueError(f"plotlyjs: must be 'inline' or 'directory', got {plotlyjs!r}")
    if scale <= 0:
        raise ValueError(f"scale: must be > 0, got {scale!r}")
    items = [(fig, _check_name(name)) for fig, name in figures]
    names = [n for _, n in items]
    if len(set(names)) != len(names):
        raise ValueError("name: duplicate figure names in one batch")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    written: dict[str, dict[str, Path]] = {name: {} for name in names}
    # HTML is written first and always, so a failing browser never costs the interactive figure.
    for fig, name in items:
        path = out / f"{name}.html"
        _write_html(fig, path, plotlyjs)
        written[name]["html"] = path

    static = [f for f in fmts if f != "html"]
    if not static or not items:
        return _ordered(written, fmts)
    browser = find_browser()
    if browser is None:
        log.warning(NO_BROWSER_MESSAGE)
        return _ordered(written, fmts)

    specs: list[dict[str, Any]] = []
    for fig, name in items:
        w, h = _size(fig, width, height)
        fig_dict = fig.to_plotly_json()
        for fmt in static:
            path = out / f"{name}.{fmt}"
            # A stale file from an earlier run must not pass for this run's output.
            path.unlink(missing_ok=True)
            specs.append(
                {
                    "fig": fig_dict,
                    "path": path,
                    "opts": {"format": fmt, "width": w, "height": h, "scale": scale},
                }
            )
    errors = _render(specs, browser)
    missing = [spec for spec in specs if not _rendered(spec["path"])]
    if errors and missing:
        # A busy machine can make a browser tab run kaleido's script before its page has loaded it ("kaleido_scopes
        # is not defined"): what failed is rendered once more, in a batch of its own.
        errors = _render(missing, browser)
    for spec in specs:
        path = spec["path"]
        if _rendered(path):
            written[path.stem][spec["opts"]["format"]] = path
    if errors:
        log.warning("labkit.viz.export: %d image(s) failed to render: %s", len(errors), errors[0])
    return _ordered(written, fmts)


def _rendered(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _render(specs: list[dict[str, Any]], browser: str) -> list[BaseException]:
    """Render every spec with one kaleido browser, or with the persistent one if it is running."""
    import kaleido

    try:
        if _engine_running():
            res = kaleido.write_fig_from_object_sync(specs)
        else:
            res = kaleido.write_fig_from_object_sync(specs, kopts={"mathjax": False, "path": browser})
    except Exception as exc:  # kaleido raises its own error types for a browser that will not start
        log.warning("labkit.viz.export: the browser %s failed, wrote HTML only: %s", browser, exc)
        return [exc]
    return list(res or ())


def _engine_running() -> bool:
    import kaleido

    return bool(kaleido._global_server.is_running())


@contextmanager
def persistent_browser() -> Iterator[str | None]:
    """Keep one browser open for every export inside the block (kaleido's persistent sync engine).

    Each :func:`export_many` call otherwise starts its own browser (~2 s); inside the block only the first
    export pays for it. Yields the browser's path, or ``None`` (exports then write HTML only). If an engine is
    already running, it is used and left running.
    """
    import kaleido

    browser = find_browser()
    started = False
    if browser is not None and not _engine_running():
        kaleido.start_sync_server(mathjax=False, path=browser, silence_warnings=True)
        started = True
    try:
        yield browser
    finally:
        if started:
            kaleido.stop_sync_server(silence_warnings=True)


def _ordered(written: dict[str, dict[str, Path]], fmts: tuple[str, ...]) -> dict[str, dict[str, Path]]:
    # HTML is always written, so it is always reported, first.
    order = ("html", *(f for f in fmts if f != "html"))
    return {name: {f: paths[f] for f in order if f in paths} for name, paths in written.items()}


def export(
    fig: go.Figure,
    name: str,
    formats: Sequence[str] = FORMATS,
    out_dir: str | os.PathLike[str] = "figures",
    *,
    width: int | None = None,
    height: int | None = None,
    scale: float = SCALE,
    plotlyjs: str = "inline",
) -> dict[str, Path]:
    """Write one figure as ``out_dir/name.{html,png,svg,pdf}``; returns ``{format: path}`` written."""
    return export_many([(fig, name)], formats, out_dir, width=width, height=height, scale=scale, plotlyjs=plotlyjs)[
        name
    ]


__all__ = [
    "BROWSER_NAMES",
    "EXPORT_WIDTH",
    "FORMATS",
    "NO_BROWSER_MESSAGE",
    "export",
    "export_many",
    "find_browser",
    "persistent_browser",
]


def publish(
    figures: Mapping[str, Any],
    out_dir: str | Path,
    formats: Sequence[str] = ("html", "png", "svg", "pdf"),
) -> dict[str, dict[str, Path]]:
    """Export a notebook's figures (one browser start for all) and keep each as plotly JSON too.

    The JSON lets ``labkit figures`` re-render a figure at another size (the README tour) without
    re-running the notebook. Prints one line per figure with the formats written.
    """
    out = Path(out_dir)
    written = export_many([(fig, name) for name, fig in figures.items()], formats, out)
    for name, fig in figures.items():
        fig.write_json(out / f"{name}.json")
        print(f"{name}: {', '.join(written[name])} -> {out}")
    return written
