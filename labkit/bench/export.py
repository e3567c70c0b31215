"""``export``: seconds per figure for PNG, SVG and PDF in one batch, labkit vs a raw kaleido batch.

Labkit's path is :func:`labkit.viz.export_many` (HTML for every figure, then one browser start for all
static images); the raw baseline hands kaleido the same figures and options directly
(``kaleido.write_fig_from_object_sync``, which ``plotly.io.write_images`` also uses). Each format is one
batch; the two paths alternate. Ratio = labkit seconds per figure / raw seconds per figure, worst format.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from labkit.bench.runner import result, summarize
from labkit.util.progress import progress

GOAL = "<= 1.25"
FORMATS = ("png", "svg", "pdf")


def _figures(n: int) -> list[tuple[Any, str]]:
    from labkit.model import load_profile, load_workload
    from labkit.model.spans import concat_spans
    from labkit.sim.des import simulate
    from labkit.viz import gantt, stage_breakdown

    workload = load_workload("codex_bugfix")
    spans = concat_spans(
        simulate(load_profile(p), workload, rollouts=3, seed=1, jitter=0.2)
        for p in ("http_baseline", "http_optimized", "websocket")
    )
    figs = []
    for i in range(n):
        fig = stage_breakdown(spans) if i % 2 == 0 else gantt(spans, rollout=i % 3)
        figs.append((fig, f"fig{i:02d}"))
    return figs


def _labkit_batch(figs: list[tuple[Any, str]], fmt: str, out: Path) -> float:
    from labkit.viz import export_many

    t0 = time.perf_counter()
    written = export_many(figs, formats=(fmt,), out_dir=out)
    elapsed = time.perf_counter() - t0
    missing = [name for name, paths in written.items() if fmt not in paths]
    if missing:
        raise RuntimeError(f"export: {len(missing)} {fmt} file(s) not written (e.g. {missing[0]})")
    return elapsed


def _raw_batch(figs: list[tuple[Any, str]], fmt: str, out: Path, browser: str) -> float:
    import kaleido

    from labkit.viz.template import HEIGHT, SCALE, WIDTH

    t0 = time.perf_counter()
    specs = [
        {
            "fig": fig.to_plotly_json(),
            "path": out / f"{name}.{fmt}",
            "opts": {
                "format": fmt,
                "width": fig.layout.width or WIDTH,
                "height": fig.layout.height or HEIGHT,
                "scale": SCALE,
            },
        }
        for fig, name in figs
    ]
    kaleido.write_fig_from_object_sync(specs, kopts={"mathjax": False, "path": browser})
    elapsed = time.perf_counter() - t0
    if not all(Path(s["path"]).is_file() for s in specs):
        raise RuntimeError(f"export: the raw kaleido batch did not write every {fmt} file")
    return elapsed


def run(quick: bool = False) -> dict[str, Any]:
    from labkit.viz import find_browser

    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chrome/Chromium found (install chromium or set BROWSER_PATH)")
    n = 2 if quick else 12
    repeats = 1 if quick else 3
    figs = _figures(n)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for fmt in FORMATS:
            lab: list[float] = []
            raw: list[float] = []
            ratios: list[float] = []
            for rep in progress(range(repeats), desc=f"export {fmt} repeats", unit="repeat"):
                lab_dir, raw_dir = root / f"lab-{fmt}-{rep}", root / f"raw-{fmt}-{rep}"
                raw_dir.mkdir()
                lab.append(_labkit_batch(figs, fmt, lab_dir) / n)
                raw.append(_raw_batch(figs, fmt, raw_dir, browser) / n)
                ratios.append(lab[-1] / raw[-1])
            parts.append(
                result(
                    fmt,
                    summarize(ratios)["median"],
                    "<=",
                    1.25,
                    ratio_means=f"s per figure, {fmt} batch: labkit export_many (+HTML) / raw kaleido batch",
                    ratio_stats=summarize(ratios),
                    summary=f"{summarize(lab)['median']:.2f} vs {summarize(raw)['median']:.2f} s per figure",
                    labkit_s_per_figure=summarize(lab),
                    raw_s_per_figure=summarize(raw),
                )
            )
    worst = max(p["ratio"] for p in parts)
    return result(
        "export",
        worst,
        "<=",
        1.25,
        ratio_means="worst format: s per figure, labkit export_many / raw kaleido batch",
        parts=parts,
        figures_per_batch=n,
        repeats=repeats,
        browser_found=True,
        labkit_s_per_figure={p["name"]: p["labkit_s_per_figure"]["median"] for p in parts},
    )
