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


_KEYS = ["source", "scenario", "rollout", "turn"]


def _rebuild_conversation(
    rollout_ids: np.ndarray, turns: np.ndarray, sent: np.ndarray, chained: np.ndarray, outs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The conversation each request stands for and what it added (rows sorted by rollout, then turn)."""
    conv = np.zeros(len(sent), dtype="int64")
    new = np.zeros(len(sent), dtype="int64")
    conv_prev = out_prev = 0
    for i in range(len(sent)):
        if i == 0 or rollout_ids[i] != rollout_ids[i - 1]:
            conv_prev = out_prev = 0
        if chained[i]:
            c, added = conv_prev + out_prev + int(sent[i]), int(sent[i])
        else:
            c = int(sent[i])
            added = max(0, c - conv_prev - out_prev) if turns[i] > 0 else c
            if added == 0 and 0 < c < conv_prev + out_prev:
                added = c  # a new conversation (compaction, a fresh chain): nothing of it was sent before
        conv[i], new[i] = c, added
        conv_prev, out_prev = c, int(outs[i])
    return conv, new


def _request_rows(last: pd.DataFrame) -> pd.DataFrame:
    """Per turn, the tokens the request sent (``sent``) and whether it was chained (``request_hit``): the
    ``request`` stage's (live), else the ``upload``'s, else the ``validate``'s (simulated spans may leave out
    zero-length stages, and validation carries the same tokens as the upload)."""
    req: pd.DataFrame | None = None
    for stage in ("request", "upload", "validate"):
        rows = last[last["stage"] == stage].groupby(_KEYS)[["tokens", "cache_hit"]].first()
        req = rows if req is None else req.combine_first(rows)
    assert req is not None
    return req.rename(columns={"tokens": "sent", "cache_hit": "request_hit"})


def turn_table(spans: pd.DataFrame) -> pd.DataFrame:
    """One row per model call of a spans table, columns ``TURN_COLUMNS`` (see the module docstring)."""
    validate_spans(spans)
    if spans.empty:
        return pd.DataFrame(columns=list(TURN_COLUMNS))
    df = spans.reset_index(drop=True)
    by_turn = df.groupby(_KEYS, sort=True)
    last = df[df["attempt"] == by_turn["attempt"].transform("max")]
    is_tool = df["stage"] == "tool"
    t = pd.DataFrame({"attempts": by_turn["attempt"].max() + 1, "any_start": by_turn["start_s"].min()})
    work = df[~is_tool].groupby(_KEYS)
    t["start_s"] = work["start_s"].min()
    t["end_s"] = work["end_s"].max()
    t["start_s"] = t["start_s"].fillna(t["any_start"])
    t["end_s"] = t["end_s"].fillna(t["start_s"])
    last_work = last[last["stage"] != "tool"]
    t["last_end"] = last_work.groupby(_KEYS)["end_s"].max()
    t["request_start_s"] = last_work[last_work["stage"] != "connect"].groupby(_KEYS)["start_s"].min()
    t["request_start_s"] = t["request_start_s"].fillna(t["start_s"])

    def first(stage: str, cols: list[str]) -> pd.DataFrame:
        return last[last["stage"] == stage].groupby(_KEYS)[cols].first().add_prefix(stage + "_")

    t = t.join(_request_rows(last))
    t = t.join(first("decode", ["tokens", "start_s", "end_s"]))
    t = t.join(first("prefill", ["tokens"]))
    t = t.join(first("connect", ["start_s", "end_s", "cache_hit"]))
    t["reasoning"] = last[last["stage"] == "reasoning"].groupby(_KEYS)["tokens"].sum()
    tools = df[is_tool]
    tool_s = (tools["end_s"] - tools["start_s"]).groupby([tools[k] for k in _KEYS])
    t["tool_s"] = tool_s.max()
    t["tool_calls"] = tool_s.size()
    t = t.reset_index()

    has_decode = t["decode_tokens"].notna().to_numpy()
    sent = t["sent"].fillna(0).astype("int64").to_numpy()
    turns = t["turn"].to_numpy()
    chained = t["request_hit"].fillna(False).astype(bool).to_numpy() & (turns > 0)
    outs = np.where(has_decode, t["decode_tokens"].fillna(0).to_numpy() + 1, 0).astype("int64")
    rollout_ids = t[["source", "scenario", "rollout"]].astype(str).agg("/".join, axis=1).to_numpy()
    conv, new = _rebuild_conversation(rollout_ids, turns, sent, chained, outs)
    decode_start = t["decode_start_s"].to_numpy(float)
    prefill = t["prefill_tokens"]
    out = pd.DataFrame(
        {
            "source": t["source"],
            "scenario": t["scenario"],
            "rollout": t["rollout"].astype("int64"),
            "turn": t["turn"].astype("int64"),
            "start_s": t["start_s"].astype(float),
            "end_s": t["end_s"].astype(float),
            "ttft_s": decode_start - t["start_s"].to_numpy(float),
            "request_start_s": t["request_start_s"].astype(float),
            "request_ttft_s": decode_start - t["request_start_s"].to_numpy(float),
            "connect_s": (t["connect_end_s"] - t["connect_start_s"]).fillna(0.0),
            "reused": t["connect_cache_hit"].fillna(True).astype(bool),
            "sent_tokens": sent,
            "chained": chained,
            "input_tokens": conv,
            "new_tokens": new,
            "context_tokens": conv - new,
            "cached_input_tokens": np.where(prefill.notna(), np.maximum(0, conv - prefill.fillna(0)), 0).astype(
                "int64"
            ),
            "output_tokens": outs,
            "reasoning_tokens": t["reasoning"].fillna(0).astype("int64"),
            "decode_s": (t["decode_end_s"] - t["decode_start_s"]).fillna(0.0),
            # Last delta to the end of the request: live ``complete``, simulated safety_out..postprocess.
            "complete_s": np.where(has_decode, t["last_end"] - t["decode_end_s"], 0.0),
            "tool_s": t["tool_s"].fillna(0.0).astype(float),
            "tool_calls": t["tool_calls"].fillna(0).astype("int64"),
            "attempts": t["attempts"].astype("int64"),
        }
    )
    return out[list(TURN_COLUMNS)]


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
