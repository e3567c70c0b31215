"""Chrome trace-event JSON (what Perfetto and ``chrome://tracing`` open) from a spans table.

Format: the Trace Event Format document (``{"traceEvents": [...]}``), complete events ``"ph": "X"`` with ``ts``
and ``dur`` in microseconds, ``pid``/``tid`` naming the track, and metadata events ``"ph": "M"``
(``process_name``, ``thread_name``) naming them. One process per (source, scenario), one track (thread) per
rollout; on each track a slice per turn with its stages nested inside, and the tool calls between turns.
Slices on one track must nest, so a turn's slice spans exactly its stages.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labkit.model.spans import validate_spans


def _us(t: float) -> float:
    return round(float(t) * 1e6, 3)


def spans_to_perfetto(spans: pd.DataFrame) -> dict[str, Any]:
    """A trace-event document of a spans table."""
    validate_spans(spans)
    events: list[dict[str, Any]] = []
    r: Any
    source: Any
    scenario: Any
    rollout: Any
    turn: Any
    for pid, ((source, scenario), proc) in enumerate(spans.groupby(["source", "scenario"], sort=True), start=1):
        events.append(
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": f"{source} {scenario}"}}
        )
        for rollout, roll in proc.groupby("rollout", sort=True):
            tid = int(rollout) + 1
            events.append(
                {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": f"rollout {rollout}"}}
            )
            for turn, g in roll.groupby("turn", sort=True):
                work = g[g["stage"] != "tool"]
                if len(work):
                    t0, t1 = float(work["start_s"].min()), float(work["end_s"].max())
                    events.append(
                        {
                            "name": f"turn {turn}",
                            "cat": "turn",
                            "ph": "X",
                            "ts": _us(t0),
                            "dur": _us(t1) - _us(t0),
                            "pid": pid,
                            "tid": tid,
                            "args": {"attempts": int(g["attempt"].max()) + 1},
                        }
                    )
                for r in g.sort_values(["start_s", "end_s"]).itertuples(index=False):
                    events.append(
                        {
                            "name": str(r.stage),
                            "cat": "tool" if r.stage == "tool" else "stage",
                            "ph": "X",
                            "ts": _us(r.start_s),
                            "dur": _us(r.end_s) - _us(r.start_s),
                            "pid": pid,
                            "tid": tid,
                            "args": {
                                "turn": int(r.turn),
                                "tokens": int(r.tokens),
                                "bytes": int(r.bytes),
                                "cache_hit": bool(r.cache_hit),
                                "attempt": int(r.attempt),
                            },
                        }
                    )
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"producer": "labkit"}}
