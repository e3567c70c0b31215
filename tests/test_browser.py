"""A real browser on a real JupyterLab: open 04_caching_strategies, run all, move the TPS slider.

JupyterLab runs on loopback with a token and its own temporary config, runtime, settings, workspace and
IPython folders, on a copy of the notebook (so autosave never touches the repository). Headless Debian
Chromium is driven through Playwright for Python with ``executable_path`` (no browser download), at 1280x800
with JupyterLab's default left sidebar open.

The test checks that moving the first slider (decode TPS) redraws the plots shown in the page (all three, what
the user sees), that nothing of the dashboard is clipped or overlaps, that the page logs no console error, and
that a drag (continuous update) ends on the plot of the final value.
Timing is taken inside the page (``performance.now()``): a key press, the comm messages to and from the kernel
(a wrapped ``WebSocket``; the one carrying the dashboard's figure edits marked) and every change of each plot (a
``MutationObserver``), so the test's own polling adds nothing to the numbers. It prints median and p95 of key
press to redrawn plots over 20 steps (failing if a step leaves one of the three plots unchanged) and where the
time goes, and saves the dashboard's screenshot (as ``docs/img/dashboard.png`` with ``LABKIT_UPDATE_DOCS=1``).
``LABKIT_BROWSER_PROFILE=FILE`` writes a CPU profile of the timed steps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from labkit.report.notebooks import inject_parameters, notebook_path

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NOTEBOOK = "04_caching_strategies"
TOKEN = "labkit-browser-test"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# Every trace path of every plot in the notebook's outputs; its "d" attributes change when a plot redraws.
# Traces drawn without their x data (plotly then plots y against the point index): name them.
MISSING_X_JS = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot'))
    .flatMap(p => (p.data || []).filter(t => (t.type || 'scatter') === 'scatter' && t.y && t.y.length > 2
        && (t.x === undefined || t.x === null)).map(t => t.name || '(unnamed)'))"""
PATHS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-OutputArea-output .js-plotly-plot .trace path')).map(p => p.getAttribute('d') || '')"""

CHANGED_JS = f"(before) => JSON.stringify(({PATHS_JS})()) !== JSON.stringify(before)"
#: Extra slider steps after the first one, timed for the report.
STEPS = 19
VIEWPORT = {"width": 1280, "height": 800}
#: The dashboard's snapshot on the docs site and in the guide: rewritten only when asked
#: (``LABKIT_UPDATE_DOCS=1``), so running the suite leaves the checkout clean.
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "dashboard.png"


def _screenshot_path(tmp_path: Path) -> Path:
    return SCREENSHOT if os.environ.get("LABKIT_UPDATE_DOCS") == "1" else tmp_path / "dashboard.png"


#: anywidget's error when a widget model takes over 2 s to initialize.
ANYWIDGET_TIMEOUT = "[anywidget] Failed to initialize model."
#: The goal: p95 over the steps of key press to all three plots redrawn (what the user sees). A timed goal is
#: not a unit-test assertion on a shared machine (docs/guides/figures.md gives the measured runs), so the test
#: prints the p95 against the goal and fails only past P95_BOUND_S, where the dashboard has stopped feeling live.
P95_GOAL_S = 0.1
P95_BOUND_S = 0.5
# Installed before the page loads: timestamps of key presses, of kernel comm messages each way (bytes too),
# and of every change of a plot's trace paths.
INSTRUMENT_JS = """(() => {
  const lk = window.__lk = {keys: [], sends: [], recvs: [], muts: [], pmuts: []};
  document.addEventListener('keydown', () => lk.keys.push(performance.now()), true);
  const dec = new TextDecoder('utf-8', {fatal: false});
  const text = d => typeof d === 'string' ? d : (d instanceof ArrayBuffer ? dec.decode(d) : '');
  const size = d => typeof d === 'string' ? d.length : (d && d.byteLength) || 0;
  const isComm = t => t.includes('"comm_msg"');
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (d) {
    if (isComm(text(d))) lk.sends.push([performance.now(), size(d)]);
    return send.call(this, d);
  };
  const WS = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new WS(...args);
    ws.addEventListener('message', e => {
      const t = text(e.data);
      if (isComm(t)) lk.recvs.push([performance.now(), size(e.data), t.includes('labkit.plot-edits')]);
    });
    return ws;
  };
  window.WebSocket.prototype = WS.prototype;
  Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  // One callback can carry the mutations of several plots (edits applied in one task): record each plot.
  const watch = () => new MutationObserver(ms => {
    const t = performance.now();
    const plots = new Set();
    for (const m of ms) {
      const el = m.target.nodeType === 1 ? m.target : m.target.parentElement;
      const plot = el && el.closest && el.closest('.js-plotly-plot');
      if (plot) plots.add(plot);
    }
    if (!plots.size) return;
    lk.muts.push(t);
    const all = Array.from(document.querySelectorAll('.js-plotly-plot'));
    for (const plot of plots) lk.pmuts.push([t, all.indexOf(plot)]);
  }).observe(document.body, {subtree: true, attributes: true, childList: true, characterData: true});
  if (document.body) watch(); else document.addEventListener('DOMContentLoaded', watch);
})()"""
# Lines and bars of the dashboard's plots drawn outside their plot area (more than 2 px): an axis range that does
# not match the data drawn.
OUTSIDE_JS = """() => { let checked = 0; const outside = [];
  document.querySelectorAll('.lk-dashboard .js-plotly-plot').forEach((p, i) => {
    const svg = p.querySelector('.main-svg');
    const size = p._fullLayout && p._fullLayout._size;
    if (!svg || !size) return;
    const box = svg.getBoundingClientRect();
    const a = {left: box.left + size.l, right: box.left + size.l + size.w, top: box.top + size.t,
      bottom: box.top + size.t + size.h};
    p.querySelectorAll('.scatterlayer path.js-line, .barlayer path').forEach(el => {
      const r = el.getBoundingClientRect();
      if (r.width + r.height === 0) return;
      checked++;
      if (r.left < a.left - 2 || r.right > a.right + 2 || r.top < a.top - 2 || r.bottom > a.bottom + 2)
        outside.push(`plot ${i}: ${Math.round(r.left)}-${Math.round(r.right)} x ${Math.round(r.top)}-`
          + `${Math.round(r.bottom)} outside ${Math.round(a.left)}-${Math.round(a.right)} x ${Math.round(a.top)}-`
          + `${Math.round(a.bottom)}`);
    });
  });
  return {checked, outside};
}"""
# Everything of the dashboard that must stay inside its box, and pairs of controls that must not overlap.
LAYOUT_JS = """() => {
  const dash = document.querySelector('.lk-dashboard');
  if (!dash) return {error: 'no .lk-dashboard in the page'};
  const area = dash.closest('.jp-OutputArea-output') || dash;
  const box = area.getBoundingClientRect();
  const r = el => el.getBoundingClientRect();
  const inside = (a, b, tol = 1.5) => a.left >= b.left - tol && a.right <= b.right + tol
    && a.top >= b.top - tol && a.bottom <= b.bottom + tol;
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const problems = [];
  const name = el => (el.getAttribute('data-unformatted') || el.textContent || el.className || el.tagName)
    .toString().slice(0, 40);
  dash.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    const svg = plot.querySelector('.main-svg');
    if (!svg) return;
    const pr = r(svg);
    if (!inside(pr, box)) problems.push(`plot ${i} (${Math.round(pr.width)} px wide) leaves the output area`);
    if (pr.width < 0.9 * box.width) problems.push(`plot ${i} is ${Math.round(pr.width)} px wide in a `
      + `${Math.round(box.width)} px output area: it did not size itself to it`);
    plot.querySelectorAll('.legend, text').forEach(el => {
      const er = r(el);
      if (er.width === 0 && er.height === 0) return;
      if (!inside(er, pr)) problems.push(`plot ${i}: "${name(el)}" is clipped`);
    });
  });
  const controls = Array.from(dash.querySelectorAll(
    '.widget-label, .widget-readout, .widget-slider .slider-container, .widget-dropdown select, '
    + '.widget-checkbox input, .widget-toggle-buttons .widget-toggle-button'))
    .filter(el => r(el).width > 0);
  controls.forEach(el => {
    if (!inside(r(el), box)) problems.push(`control "${name(el)}" leaves the output area `
      + `(${Math.round(r(el).left)}-${Math.round(r(el).right)} of ${Math.round(box.left)}-${Math.round(box.right)})`);
    if (el.classList.contains('widget-label') && el.scrollWidth > el.clientWidth + 1)
      problems.push(`label "${name(el)}" is cut off`);
  });
  for (let i = 0; i < controls.length; i++)
    for (let j = i + 1; j < controls.length; j++)
      if (!controls[i].contains(controls[j]) && !controls[j].contains(controls[i])
          && overlap(r(controls[i]), r(controls[j])))
        problems.push(`"${name(controls[i])}" overlaps "${name(controls[j])}"`);
  return {problems, width: box.width, plots: dash.querySelectorAll('.js-plotly-plot').length};
}"""


def _chromium() -> str | None:
    env = os.environ.get("BROWSER_PATH")
    return shutil.which(env) if env else shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """JupyterLab on 127.0.0.1 serving a copy of the notebook; yields (base URL, notebook's URL path)."""
    root = tmp_path / "lab"
    nb_dir = root / "notebooks"
    nb_dir.mkdir(parents=True)
    nb = nbformat.read(notebook_path(NOTEBOOK), as_version=4)
    # The small parameter set, and HTML-only export: the browser test is about the page, not kaleido.
    nb = inject_parameters(nb, {"fast": True, "formats": ["html"]})
    nbformat.write(nb, nb_dir / f"{NOTEBOOK}.ipynb")

    dirs = {name: tmp_path / name for name in ("config", "runtime", "settings", "workspaces", "ipython")}
    for d in dirs.values():
        d.mkdir()
    # The "get notified about Jupyter news" toast would cover the page; this setting removes it.
    note = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    note.parent.mkdir(parents=True)
    note.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
    }
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--port=0",
        f"--IdentityProvider.token={TOKEN}",
        "--LabApp.expose_app_in_browser=True",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp_path / "jupyter.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = _wait_for_server(proc, dirs["runtime"], tmp_path / "jupyter.log")
        yield base, Path("notebooks") / f"{NOTEBOOK}.ipynb"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _wait_for_server(proc: subprocess.Popen[bytes], runtime: Path, log: Path, timeout: float = 60.0) -> str:
    """The server's URL once ``/api/status`` answers (the port is read from its runtime file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
        for info in runtime.glob("jpserver-*.json"):
            try:
                port = json.loads(info.read_text())["port"]
                base = f"http://127.0.0.1:{port}"
                req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {TOKEN}"})
                with urllib.request.urlopen(req, timeout=2) as resp:
                    if resp.status == 200:
                        return base
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.2)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


LOAD_BEFORE = os.getloadavg()[0]


def test_dashboard_slider_redraws_plot_in_browser(lab: tuple[str, Path], tmp_path: Path) -> None:
    global LOAD_BEFORE
    LOAD_BEFORE = os.getloadavg()[0]
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on this machine (apt-get install chromium, or set BROWSER_PATH)")
    from playwright.sync_api import sync_playwright

    base, nb_path = lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.add_init_script(INSTRUMENT_JS)
            console: list[str] = []
            page.on("console", lambda m: console.append(f"{m.text} ({m.location})") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"page error: {e}"))
            try:
                report = _run_and_move(page, base, nb_path, tmp_path)
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                raise
        finally:
            browser.close()

    timeouts = [c for c in console if ANYWIDGET_TIMEOUT in c]
    print(f"console errors: {len(console)}, of which {ANYWIDGET_TIMEOUT}: {len(timeouts)}")
    assert report["after_value"] != report["before_value"], "the TPS slider's readout did not move"
    assert not report["missing_x"], f"traces drawn without their x data in the page: {report['missing_x']}"
    assert report["layout"].get("plots", 0) >= 3, report["layout"]
    assert report["layout"]["problems"] == [], "\n".join(report["layout"]["problems"])
    assert report["drag_final_ok"], "after a drag the plots did not settle on the slider's final value"
    assert report["outside"]["checked"] >= 3, report["outside"]
    assert report["outside"]["outside"] == [], f"after the drag, data drawn outside its plot area: {report['outside']}"
    # The timing is honest only if each step redrew every plot: a plot left alone would not count.
    assert report["steps_missing_a_plot"] == 0, f"{report['steps_missing_a_plot']} step(s) left a plot unchanged"
    assert _screenshot_path(tmp_path).stat().st_size > 20_000
    print(
        f"p95 of key press to all three plots redrawn {report['p95_all_s']:.3f} s: "
        f"{'meets' if report['p95_all_s'] <= P95_GOAL_S else 'misses'} the goal of {P95_GOAL_S} s "
        f"(load average {LOAD_BEFORE:.2f})"
    )
    assert report["p95_all_s"] <= P95_BOUND_S, (
        f"p95 of key press to all three plots redrawn {report['p95_all_s']:.3f} s (bound {P95_BOUND_S} s, "
        f"goal {P95_GOAL_S} s; load average {LOAD_BEFORE:.2f})"
    )
    # anywidget rejects a model that takes over 2 s to initialize (the figures share one plotly module and
    # initialize at once, so this must not appear); any console error fails.
    assert timeouts == [], f"{len(timeouts)} x {ANYWIDGET_TIMEOUT}"
    assert console == [], "console errors in the page:\n" + "\n".join(console)


def _settled(page, since: float, quiet_ms: float = 250.0, timeout_ms: float = 15_000) -> None:
    """Wait until a plot changed after ``since`` (page clock) and nothing changed for ``quiet_ms``."""
    page.wait_for_function(
        """([since, quiet]) => { const m = window.__lk.muts.filter(t => t > since);
            return m.length > 0 && performance.now() - m[m.length - 1] > quiet; }""",
        arg=[since, quiet_ms],
        timeout=timeout_ms,
        polling=50,
    )


def _step_timings(page, since: float) -> dict[str, float]:
    """Where one key press's time went, from the page's own timestamps (ms)."""
    return page.evaluate(
        """(since) => {
            const lk = window.__lk;
            const key = lk.keys.filter(t => t >= since)[0];
            const sends = lk.sends.filter(([t]) => t >= key);
            const recvs = lk.recvs.filter(([t]) => t >= key);
            const muts = lk.muts.filter(t => t >= key);
            const first = a => a.length ? a[0][0] : NaN;
            const edits = first(recvs.filter(r => r[2]));
            const plots = {};
            for (const [t, i] of lk.pmuts.filter(([t]) => t >= key)) if (!(i in plots)) plots[i] = t - key;
            const at = i => (i in plots ? plots[i] : NaN);
            return {
                plot_1: at(0), plot_2: at(1), plot_3: at(2),
                key_to_send: first(sends) - key,
                send_to_reply: first(recvs) - first(sends),
                reply_to_plot: muts[0] - first(recvs),
                key_to_edits: edits - key,
                edits_to_last_plot: muts[muts.length - 1] - edits,
                first_plot: muts[0] - key,
                last_plot: muts[muts.length - 1] - key,
                msgs_out: sends.length, bytes_out: sends.reduce((a, [, b]) => a + b, 0),
                msgs_in: recvs.length, bytes_in: recvs.reduce((a, [, b]) => a + b, 0),
            };
        }""",
        since,
    )


#: Set to a file name to write a CPU profile of the timed steps (open it in Chromium's DevTools, Performance).
PROFILE_ENV = "LABKIT_BROWSER_PROFILE"


def _start_profile(page):
    """A CDP session profiling the page's JavaScript when ``LABKIT_BROWSER_PROFILE`` names a file, else None."""
    if not os.environ.get(PROFILE_ENV):
        return None
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 250})
    cdp.send("Profiler.start")
    return cdp


def _stop_profile(cdp) -> None:
    if cdp is not None:
        Path(os.environ[PROFILE_ENV]).write_text(json.dumps(cdp.send("Profiler.stop")["profile"]))


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


def _run_and_move(page, base: str, nb_path: Path, tmp_path: Path) -> dict:
    """Open the notebook, run all, check the layout, time key steps and a drag of the first slider."""
    page.goto(f"{base}/lab/tree/{nb_path.as_posix()}?token={TOKEN}", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # "idle" shows before a kernel exists: also wait for the kernel's name in the toolbar.
    page.wait_for_function(
        """() => {
            const k = document.querySelector('.jp-Toolbar-kernelName');
            const s = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return k && /python/i.test(k.textContent) && s && s.getAttribute('data-status') === 'idle';
        }""",
        timeout=60_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # Done when no cell waits or runs ("[*]") and the dashboard's slider and plots are in the page.
    page.wait_for_function(
        """() => {
            const prompts = Array.from(document.querySelectorAll('.jp-InputArea-prompt'));
            const busy = prompts.some(p => p.textContent.includes('*'));
            const done = prompts.filter(p => /\\[\\d+\\]/.test(p.textContent)).length;
            return !busy && done > 0 && document.querySelector('.lk-dashboard .widget-slider .noUi-handle')
                && document.querySelectorAll('.lk-dashboard .js-plotly-plot .trace path').length > 0;
        }""",
        timeout=180_000,
        polling=250,
    )
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, errors.first.inner_text()
    sidebar_open = page.evaluate("() => !!document.querySelector('#jp-left-stack:not(.lm-mod-hidden)')")

    dash = page.locator(".lk-dashboard").first
    dash.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let autosized plots settle to the output area's width
    layout = page.evaluate(LAYOUT_JS)
    # The notebook scrolls inside its panel, so the whole dashboard is shot in a taller window of the same width
    # (widths, and so every wrap and size, stay those of 1280x800); then the window goes back to 800 px.
    height = int(dash.bounding_box()["height"]) + 400  # type: ignore[index]
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    page.wait_for_timeout(500)
    dash.scroll_into_view_if_needed()
    shot = _screenshot_path(tmp_path)
    shot.parent.mkdir(parents=True, exist_ok=True)
    dash.screenshot(path=str(shot))
    page.set_viewport_size(VIEWPORT)
    page.wait_for_timeout(300)

    readout = dash.locator(".widget-slider .widget-readout").first
    before_value = readout.inner_text()
    handle = dash.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    profiler = _start_profile(page)
    steps = []
    for k in range(STEPS + 1):
        since = page.evaluate("() => performance.now()")
        page.keyboard.press("PageUp" if k % 2 == 0 else "PageDown")
        _settled(page, since)
        steps.append(_step_timings(page, since))
        if k == 0:
            after_value = readout.inner_text()
    _stop_profile(profiler)
    missing_x = page.evaluate(MISSING_X_JS)

    # A drag: many value changes while the mouse moves; the plots must end on the final value.
    box = handle.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for dx in range(1, 21):
        page.mouse.move(x0 - 6 * dx, y0)
        page.wait_for_timeout(16)
    page.mouse.up()
    since = page.evaluate("() => performance.now()")
    page.wait_for_timeout(100)
    page.wait_for_timeout(1000)
    # The decode speed the plot is drawn for: the x of its "current TPS" line, in the page's own plot data.
    drawn = page.evaluate(
        """() => { for (const p of document.querySelectorAll('.lk-dashboard .js-plotly-plot')) {
            const t = (p.data || []).find(t => t.name === 'current TPS'); if (t) return t.x[0]; } return null; }"""
    )
    settled_at = page.evaluate(
        "(since) => { const m = window.__lk.muts.filter(t => t > since); return m.length ? m.at(-1) - since : 0; }",
        since,
    )
    readout_final = readout.inner_text()
    # Stale axes (a range change lost behind a later step) would leave the drawn data outside its plot area.
    outside = page.evaluate(OUTSIDE_JS)
    drag_final_ok = drawn is not None and abs(float(drawn) - float(readout_final.replace(",", ""))) <= 0.5

    first = [s["first_plot"] / 1e3 for s in steps]
    last = [s["last_plot"] / 1e3 for s in steps]
    med = {k: _pct([s[k] for s in steps], 0.5) for k in steps[0]}
    print(
        f"\nload average {LOAD_BEFORE:.2f} before the run, {os.getloadavg()[0]:.2f} after; "
        f"viewport {VIEWPORT['width']}x{VIEWPORT['height']}, "
        f"sidebar {'open' if sidebar_open else 'closed'}; output area {layout.get('width', 0):.0f} px wide"
    )
    print(
        f"slider to redrawn plot in the page, {len(steps)} steps: median {_pct(first, 0.5):.3f} s, "
        f"p95 {_pct(first, 0.95):.3f} s (all plots redrawn: median {_pct(last, 0.5):.3f} s, "
        f"p95 {_pct(last, 0.95):.3f} s)"
    )
    print(
        "where it goes (median ms): key to comm message {key_to_send:.0f}, kernel round trip {send_to_reply:.0f}, "
        "reply to first plot change {reply_to_plot:.0f}; the figures' edits arrive {key_to_edits:.0f} after the key "
        "and are drawn {edits_to_last_plot:.0f} later; first change of the 1st, 2nd, 3rd plot in the page "
        "{plot_1:.0f}, {plot_2:.0f}, {plot_3:.0f}; per step {msgs_out:.0f} messages out ({bytes_out:.0f} B), "
        "{msgs_in:.0f} in ({bytes_in:.0f} B)".format(**med)
    )
    print(
        f"drag: last plot change {settled_at:.0f} ms after release; slider at {readout_final}, "
        f"plot drawn for {drawn} tokens/s; {outside['checked']} lines and bars checked inside their plot area"
    )
    return {
        "before_value": before_value,
        "after_value": after_value,
        "missing_x": missing_x,
        "layout": layout,
        "p95_s": _pct(first, 0.95),
        "p95_all_s": _pct(last, 0.95),
        "drag_final_ok": drag_final_ok,
        "outside": outside,
        "steps_missing_a_plot": sum(1 for s in steps if any(s[f"plot_{i}"] != s[f"plot_{i}"] for i in (1, 2, 3))),
    }
