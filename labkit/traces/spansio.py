"""labkit's own spans table (CSV or Parquet, schema in :mod:`labkit.model.spans`) as sessions and as turns.

:func:`turn_table` is the one reading of a spans table per model call, shared by the importer, the OTLP and
Perfetto exporters and :mod:`labkit.traces.fit`. Live spans carry coarse stages (``connect, queue, request,
reasoning, decode, complete, tool``), simulated spans fine ones (``connect, upload, ..., prefill, reasoning,
download, decode, ...``); both keep the same boundaries:

- the request's tokens are the ``request`` stage's (live) or the ``upload`` (else ``validate``) stage's
  (simulated): what the client *sent*, and ``cache_hit`` on that row says the request was chained (only new
  items travelled);
- the conversation a turn's request stands for is rebuilt from them: a chained request adds its new items to
  the previous turn's conversation and output, an unchained one sends it all. ``new`` is what the request
  added, ``context`` the rest (what a WebSocket connection cache or a prefix cache can already hold);
- visible output tokens are the ``decode`` stage's plus one (the first token belongs to TTFT); reasoning tokens
  are the ``reasoning`` stage's (a session's ``output_tokens`` is their sum, the usage object's convention);
  cached input is known only for simulated spans (the conversation minus the ``prefill`` stage's uncached
  tokens);
- times use the last attempt (a fallback's earlier attempts are in the turn's start and end, as in
  :func:`labkit.analysis.metrics.turn_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.model.spans import SPAN_COLUMNS, spans_frame, validate_spans
from labkit.traces.model import ModelCall, Session, ToolCall, TraceError

FORMAT = "labkit"
TURN_COLUMNS = (
    "source",
    "scenario",
    "rollout",
    "turn",
    "start_s",
    "end_s",
    "ttft_s",
    "request_start_s",
    "request_ttft_s",
    "connect_s",
    "reused",
    "sent_tokens",
    "chained",
    "input_tokens",
    "new_tokens",
    "context_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "decode_s",
    "complete_s",
    "tool_s",
    "tool_calls",
    "attempts",
)


def looks_like_columns(columns: list[str]) -> bool:
    return all(c in columns for c in ("source", "scenario", "rollout", "turn", "stage", "start_s", "end_s"))


def read_spans_file(path: str | Path) -> pd.DataFrame:
    """A spans table from CSV or Parquet (by extension; ``.parquet``/``.pq`` else CSV), validated."""
    p = Path(path)
    if not p.is_file():
        raise TraceError(str(p), None, "file", "no such file")
    try:
        raw = pd.read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pd.read_csv(p)
    except Exception as exc:  # pandas raises many types for a file that is not a table
        raise TraceError(str(p), None, "file", f"not a spans table ({type(exc).__name__}: {exc})") from None
    missing = [c for c in ("source", "scenario", "rollout", "turn", "stage", "start_s", "end_s") if c not in raw]
    if missing:
        raise TraceError(str(p), None, missing[0], f"missing column(s) {', '.join(missing)}: not a labkit spans table")
    for col in ("start_s", "end_s"):
        values = pd.to_numeric(raw[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            # +2: one header line, 1-based lines.
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2 if p.suffix.lower() not in (".parquet", ".pq") else None
            raise TraceError(str(p), line, col, f"not a number: {raw[col][bad].iloc[0]!r}")
    try:
        columns: dict[str, Sequence[Any]] = {str(c): list(raw[c]) for c in raw.columns if c in SPAN_COLUMNS}
        df = spans_frame(columns)
        return validate_spans(df)
    except ValueError as exc:
        raise TraceError(str(p), None, "spans", str(exc)) from None


def turn_table(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per model call of a spans table, columns ``TURN_COLUMNS`` (see the module docstring)."""
    validate_spans(spans)
    rows = []
    source: Any
    scenario: Any
    rollout: Any
    turn: Any
    keys = ["source", "scenario", "rollout"]
    for (source, scenario, rollout), roll in spans.groupby(keys, sort=True):
        conv_prev = 0
        out_prev = 0
        for turn, g in roll.groupby("turn", sort=True):
            last = g[g["attempt"] == g["attempt"].max()]
            by_stage = {s: r for s, r in last.groupby("stage")}
            work = g[g["stage"] != "tool"]
            tools = g[g["stage"] == "tool"]
            # Simulated spans may leave out zero-length stages: validation carries the same tokens as the upload.
            req = next((by_stage[k] for k in ("request", "upload", "validate") if k in by_stage), None)
            sent = int(req["tokens"].iloc[0]) if req is not None else 0
            chained = bool(req["cache_hit"].iloc[0]) if req is not None and int(turn) > 0 else False
            conv = conv_prev + out_prev + sent if chained else sent
            new = sent if chained else max(0, conv - conv_prev - out_prev) if int(turn) > 0 else conv
            if not chained and new == 0 and conv > 0 and conv < conv_prev + out_prev:
                new = conv  # a new conversation (compaction, a fresh chain): nothing of it was sent before
            dec = by_stage.get("decode")
            out = int(dec["tokens"].iloc[0]) + 1 if dec is not None else 0
            reasoning = int(by_stage["reasoning"]["tokens"].sum()) if "reasoning" in by_stage else 0
            prefill = by_stage.get("prefill")
            cached = max(0, conv - int(prefill["tokens"].iloc[0])) if prefill is not None else 0
            lw = last[last["stage"] != "tool"]
            start = float(work["start_s"].min()) if len(work) else float(g["start_s"].min())
            end = float(work["end_s"].max()) if len(work) else start
            decode_start = float(dec["start_s"].iloc[0]) if dec is not None else np.nan
            non_connect = lw[lw["stage"] != "connect"]
            req_start = float(non_connect["start_s"].min()) if len(non_connect) else start
            conn = by_stage.get("connect")
            rows.append(
                {
                    "source": source,
                    "scenario": scenario,
                    "rollout": int(rollout),
                    "turn": int(turn),
                    "start_s": start,
                    "end_s": end,
                    "ttft_s": decode_start - start,
                    "request_start_s": req_start,
                    "request_ttft_s": decode_start - req_start,
                    "connect_s": float((conn["end_s"] - conn["start_s"]).iloc[0]) if conn is not None else 0.0,
                    "reused": bool(conn["cache_hit"].iloc[0]) if conn is not None else True,
                    "sent_tokens": sent,
                    "chained": chained,
                    "input_tokens": conv,
                    "new_tokens": new,
                    "context_tokens": conv - new,
                    "cached_input_tokens": cached,
                    "output_tokens": out,
                    "reasoning_tokens": reasoning,
                    "decode_s": float((dec["end_s"] - dec["start_s"]).iloc[0]) if dec is not None else 0.0,
                    # Last delta to the end of the request: live ``complete``, simulated safety_out..postprocess.
                    "complete_s": float(lw["end_s"].max()) - float(dec["end_s"].iloc[0]) if dec is not None else 0.0,
                    "tool_s": float((tools["end_s"] - tools["start_s"]).max()) if len(tools) else 0.0,
                    "tool_calls": len(tools),
                    "attempts": int(g["attempt"].max()) + 1,
                }
            )
            conv_prev, out_prev = conv, out
    if not rows:
        return pd.DataFrame(columns=list(TURN_COLUMNS))
    return pd.DataFrame(rows, columns=list(TURN_COLUMNS))


def sessions_from_spans(spans: pd.DataFrame, source_name: str = "") -> list[Session]:
    """One session per (source, scenario, rollout) of a spans table."""
    turns = turn_table(spans)
    tools = spans[spans["stage"] == "tool"]
    sessions = []
    r: Any
    source: Any
    scenario: Any
    rollout: Any
    for (source, scenario, rollout), g in turns.groupby(["source", "scenario", "rollout"], sort=True):
        tr = tools[(tools["source"] == source) & (tools["scenario"] == scenario) & (tools["rollout"] == rollout)]
        calls = []
        for r in g.itertuples(index=False):
            tc = tr[tr["turn"] == r.turn]
            calls.append(
                ModelCall(
                    index=int(r.turn),
                    input_tokens=int(r.input_tokens),
                    cached_input_tokens=int(r.cached_input_tokens),
                    # The Trace convention: output includes reasoning (the spans keep them apart).
                    output_tokens=int(r.output_tokens) + int(r.reasoning_tokens),
                    reasoning_tokens=int(r.reasoning_tokens),
                    start_s=float(r.start_s),
                    end_s=float(r.end_s),
                    ttft_s=None if np.isnan(r.ttft_s) else float(r.ttft_s),
                    model=str(scenario),
                    tool_calls=tuple(
                        ToolCall(name="tool", call_id=f"{rollout}.{r.turn}.{k}", start_s=float(a), end_s=float(b))
                        for k, (a, b) in enumerate(zip(tc["start_s"], tc["end_s"], strict=True))
                    ),
                )
            )
        sessions.append(
            Session(
                id=f"{source}/{scenario}/{rollout}",
                format=FORMAT,
                calls=tuple(calls),
                source=source_name,
                model=str(scenario),
            )
        )
    return sessions


def read_labkit_spans(path: str | Path) -> list[Session]:
    return sessions_from_spans(read_spans_file(path), Path(path).name)
