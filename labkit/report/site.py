"""Executed notebooks made fit for the static documentation site (``make docs``).

The site is plain HTML without a kernel, read served or from ``file://``, offline. So each kept notebook is
rewritten before mkdocs-jupyter renders it:

- a plotly figure's output (``application/vnd.plotly.v1+json``, which nbconvert cannot represent) gets an HTML
  representation: the figure's JSON in a ``<script type="application/json">`` beside an empty ``<div>``, drawn
  by ``docs/js/labkit-plotly.js`` with the plotly.js bundled into the site (:func:`write_plotly_js`), not
  fetched from a CDN;
- a widget (the dashboard) becomes a static snapshot with a note that its sliders need a kernel, and the
  notebook's widget state is dropped, so the page does not load a widget manager from a CDN;
- this machine's paths (the injected ``out_dir``) are written relative to the working directory.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nbformat

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
#: The static snapshot of the dashboard, relative to a notebook page of the site (site/notebooks/*.html).
DASHBOARD_SNAPSHOT = "../img/dashboard.png"
#: plotly.js as the site ships it, beside the kept notebooks (docs/notebooks/, see :func:`write_plotly_js`).
PLOTLY_JS = "plotly.min.js"
DEFAULT_HEIGHT = 450


def plotly_html(figure: dict[str, Any]) -> str:
    """The HTML a static page draws ``figure`` from (see ``docs/js/labkit-plotly.js``)."""
    layout = figure.get("layout") or {}
    height = int(layout.get("height") or DEFAULT_HEIGHT)
    payload = json.dumps(
        {
            "data": figure.get("data", []),
            "layout": layout,
            "config": {"responsive": True, **(figure.get("config") or {})},
        }
    )
    # Inside a <script> element only "</" can end it early; JSON allows "<\/".
    payload = payload.replace("</", "<\\/")
    return (
        f'<div class="labkit-plotly" style="width:100%;height:{height}px"></div>'
        f'<script type="application/json" class="labkit-plotly-figure">{payload}</script>'
    )


def widget_html(snapshot: str = DASHBOARD_SNAPSHOT) -> str:
    """A widget on the static site: a note and a snapshot (the sliders need a running kernel)."""
    return (
        '<div class="admonition note labkit-widget-note"><p class="admonition-title">Interactive dashboard</p>'
        "<p>The sliders need a running Python kernel: open this notebook in JupyterLab (<code>make lab</code>) to"
        " use them. Below, a snapshot of the dashboard.</p></div>"
        f'<img class="labkit-widget-snapshot" src="{html.escape(snapshot, quote=True)}"'
        ' alt="The what-if dashboard: sliders and three plots" style="max-width:100%">'
    )


def _relative(text: str, root: str) -> str:
    return text.replace(root + os.sep, "").replace(root, ".")


def prepare_for_site(nb: nbformat.NotebookNode, root: Path | None = None) -> nbformat.NotebookNode:
    """Rewrite ``nb`` in place for the static site (see the module's docstring) and return it."""
    base = str((root or Path.cwd()).resolve())
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.source = _relative(cell.source, base)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _relative(out["text"], base)
            data = out.get("data")
            if not data:
                continue
            if WIDGET_MIME in data:
                out["data"] = {"text/html": widget_html(), "text/plain": "(dashboard: needs a kernel)"}
                continue
            if PLOTLY_MIME in data:
                data["text/html"] = plotly_html(data.pop(PLOTLY_MIME))
            for key in ("text/plain", "text/html"):
                if isinstance(data.get(key), str):
                    data[key] = _relative(data[key], base)
    return nb


def write_plotly_js(folder: Path) -> Path:
    """plotly.js, from the installed plotly package, beside the kept notebooks (mkdocs.yml loads it)."""
    from plotly.offline import get_plotlyjs

    path = Path(folder) / PLOTLY_JS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(get_plotlyjs(), encoding="utf-8")
    return path


__all__ = [
    "PLOTLY_JS",
    "PLOTLY_MIME",
    "WIDGET_MIME",
    "plotly_html",
    "prepare_for_site",
    "widget_html",
    "write_plotly_js",
]
