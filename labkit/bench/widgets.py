"""``widgets``: a slider change to a redrawn dashboard, p50 and p95, driven in Python.

Each sample sets one control of :func:`labkit.viz.dashboard.what_if` the way a slider does (assigning the
widget's ``value``, whose observer recomputes the closed forms and updates every figure in place), and
times the assignment. Controls cycle through decode speed, hops, tool time, turns, context, strategy and a
mechanism checkbox.
For where the time goes, the closed-form part alone (``Dashboard.compute``) is timed as well. The
browser's own drawing is outside this measure (see the browser test). Ratio = p95 / 100 ms.
"""

from __future__ import annotations

import gc
import itertools
import time
from typing import Any

from labkit.bench.runner import percentile, result
from labkit.util.progress import progress

GOAL_MS = 100.0
GOAL = "<= 1"


def _changes() -> itertools.cycle:
    return itertools.cycle(
        [
            ("tps", 65.0),
            ("tps", 1000.0),
            ("hops", 3),
            ("tps", 4000.0),
            ("tool_s", 0.5),
            ("hops", 1),
            ("turns", 40),
            ("tool_s", 0.2),
            ("context_k", 30),
            ("turns", 25),
            ("strategy", "http_chained"),
            ("context_k", 12),
            ("strategy", "websocket"),
            ("engine_pinning", True),
            ("tps", 250.0),
            ("engine_pinning", False),
        ]
    )


def run(quick: bool = False) -> dict[str, Any]:
    from labkit.viz.dashboard import what_if

    samples = 30 if quick else 300
    dash = what_if()
    dash.redraw()  # first draw outside the measure
    slider_ms: list[float] = []
    compute_ms: list[float] = []
    changes = _changes()
    gc.collect()
    for _ in progress(range(samples), desc="widget slider changes", unit="change"):
        name, value = next(changes)
        control = dash.controls[name]
        if control.value == value:
            continue
        before = dash.redraws
        t0 = time.perf_counter()
        control.value = value
        slider_ms.append((time.perf_counter() - t0) * 1e3)
        if dash.redraws != before + 1:
            raise RuntimeError(f"widgets: changing {name} did not redraw the dashboard once")
        t0 = time.perf_counter()
        dash.compute()
        compute_ms.append((time.perf_counter() - t0) * 1e3)
    p50, p95 = percentile(slider_ms, 50), percentile(slider_ms, 95)
    return result(
        "widgets",
        p95 / GOAL_MS,
        "<=",
        1.0,
        ratio_means="p95 of slider change -> figures updated (ms) / 100 ms",
        summary=f"p50 {p50:.1f} ms, p95 {p95:.1f} ms over {len(slider_ms)} changes",
        slider_to_redraw_ms={
            "p50": p50,
            "p95": p95,
            "max": max(slider_ms),
            "n": len(slider_ms),
        },
        closed_form_ms={"p50": percentile(compute_ms, 50), "p95": percentile(compute_ms, 95)},
        figures=len(dash.figures),
    )
