"""The one data shape: a spans table, one row per stage of a turn, from any source (sim, live, real API).

Columns (``SPAN_COLUMNS``): ``source`` (``sim`` | ``analytic`` | ``live`` | ``api``), ``scenario`` (usually
the profile name), ``rollout``, ``turn``, ``stage``, ``start_s``, ``end_s`` (seconds on the source's clock),
``tokens``, ``bytes``, ``cache_hit``, and ``attempt`` (0, or the retry number after a dropped connection or
``previous_response_not_found``: rows with ``attempt > 0`` are the cost of a full-context fallback).

Simulated spans use the fine stages of :mod:`labkit.model`. A live client cannot see inside the server,
so live spans use coarse stages that keep the same boundaries for the metrics:
``connect`` (handshake), ``queue`` (only when the server sent ``response.queued``: until the response left the
queue), ``request`` (request sent until the first output delta, or until a reasoning item began),
``reasoning`` (only for responses with reasoning: the reasoning item until the first output delta; ``tokens``
from the usage), ``decode`` (first to last output delta), ``complete`` (last delta until the terminal event),
``tool``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

SPAN_COLUMNS: tuple[str, ...] = (
    "source",
    "scenario",
    "rollout",
    "turn",
    "stage",
    "start_s",
    "end_s",
    "tokens",
    "bytes",
    "cache_hit",
    "attempt",
)
LIVE_STAGES: tuple[str, ...] = ("connect", "queue", "request", "reasoning", "decode", "complete", "tool")

_DTYPES = {
    "source": "string",
    "scenario": "string",
    "rollout": "int64",
    "turn": "int64",
    "stage": "string",
    "start_s": "float64",
    "end_s": "float64",
    "tokens": "int64",
    "bytes": "int64",
    "cache_hit": "bool",
    "attempt": "int64",
}


class SpanColumns:
    """Span buffer: one tuple per span, in ``SPAN_COLUMNS`` order, turned into a DataFrame once.

    Appending one tuple is several times cheaper than a dict per row or a list per column, and span
    recording is the DES's hot path.
    """

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(
        self,
        source: str,
        scenario: str,
        rollout: int,
        turn: int,
        stage: str,
        start_s: float,
        end_s: float,
        tokens: int = 0,
        nbytes: int = 0,
        cache_hit: bool = False,
        attempt: int = 0,
    ) -> None:
        self.rows.append((source, scenario, rollout, turn, stage, start_s, end_s, tokens, nbytes, cache_hit, attempt))

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return spans_frame()
        return spans_frame(dict(zip(SPAN_COLUMNS, zip(*self.rows, strict=True), strict=True)))


def spans_frame(data: dict[str, Sequence[Any]] | Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """A spans DataFrame with the canonical columns and dtypes (missing optional columns filled)."""
    df = pd.DataFrame(data if data is not None else {c: [] for c in SPAN_COLUMNS})
    for col, default in (("tokens", 0), ("bytes", 0), ("cache_hit", False), ("attempt", 0)):
        if col not in df:
            df[col] = default
    missing = [c for c in SPAN_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"spans: missing column(s) {', '.join(missing)}")
    extra = [c for c in df.columns if c not in SPAN_COLUMNS]
    df = df[[*SPAN_COLUMNS, *extra]]
    return df.astype(_DTYPES)


def validate_spans(df: pd.DataFrame) -> pd.DataFrame:
    """Check a spans table: columns present, ``end_s >= start_s``; returns it unchanged."""
    missing = [c for c in SPAN_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"spans: missing column(s) {', '.join(missing)}")
    bad = df["end_s"] < df["start_s"] - 1e-12
    if bad.any():
        row = df[bad].iloc[0]
        raise ValueError(f"end_s: before start_s in stage {row['stage']!r} of turn {row['turn']}")
    return df


def concat_spans(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return spans_frame()
    return pd.concat(frames, ignore_index=True)
