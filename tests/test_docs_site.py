"""The built documentation site in a real browser: every notebook page draws all its figures, offline.

Reads the site ``make docs`` built into ``site/`` (CI builds it before the tests) and opens each notebook page
from ``file://`` in headless Debian Chromium (Playwright, no browser download): every figure the page carries
is drawn by the plotly.js bundled into the site, no request leaves ``file://``, nothing is logged as an error,
the dashboard is a static snapshot with its note, no machine path shows, and links between pages end in
``.html`` (so they open pages, not folder listings, from ``file://``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit.report.notebooks import NOTEBOOKS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def browser():
    if not (SITE / "notebooks" / f"{NOTEBOOKS[0]}.html").is_file():
        pytest.skip("no built site: run `make docs` first")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium on this machine (make install installs Debian's)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_draws_every_figure_offline(browser, name: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    remote: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
    page.goto((SITE / "notebooks" / f"{name}.html").as_uri(), wait_until="load")
    figures = page.locator("script.labkit-plotly-figure").count()
    assert figures > 0, f"{name}: the page carries no figure"
    page.wait_for_function(f"document.querySelectorAll('.labkit-plotly .main-svg').length >= {figures}", timeout=30_000)
    drawn = page.evaluate("document.querySelectorAll('.labkit-plotly.js-plotly-plot').length")
    assert drawn == figures, f"{name}: {drawn} of {figures} figures drawn"
    text = page.inner_text("body")
    assert str(ROOT) not in text and "/tmp/" not in text, f"{name}: a machine path shows"
    assert ":class:" not in text
    if name == "04_caching_strategies":
        assert page.locator("img.labkit-widget-snapshot").count() >= 1
        assert "need a running Python kernel" in text
    page.close()
    assert not errors, f"{name}: console errors {errors[:3]}"
    assert not remote, f"{name}: fetched from the network {remote[:3]}"


def test_links_open_pages_from_file_urls(browser) -> None:
    page = browser.new_page()
    page.goto((SITE / "index.html").as_uri())
    hrefs = page.eval_on_selector_all("nav a.md-nav__link[href]", "els => els.map(e => e.getAttribute('href'))")
    local = [h for h in hrefs if h and not h.startswith(("http", "#"))]
    assert local
    assert [h for h in local if not h.split("#")[0].endswith(".html")] == []
    page.close()
    text = (SITE / "reference" / "traces.html").read_text()
    assert ":class:" not in text and ":func:" not in text
