"""Read trace files of any supported format into one :class:`Trace`, the format told or detected."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from labkit.traces import codex, otlp, spansio, tracelab
from labkit.traces.model import Session, Trace, TraceError

FORMATS: tuple[str, ...] = ("codex", "tracelab", "otlp", "labkit")
READERS: dict[str, Callable[[str], list[Session]]] = {
    "codex": lambda p: [codex.read_codex(p)],
    "tracelab": tracelab.read_tracelab,
    "otlp": otlp.read_otlp,
    "labkit": spansio.read_labkit_spans,
}
#: The sessions shipped with labkit (package data, see ``labkit/data/traces/ATTRIBUTION.md``).
SHIPPED = ("tracelab_round_trace.jsonl",)
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _first_objects(path: str, limit: int = 20) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.read(1 << 20)
    try:
        doc = json.loads(head)
        return [doc] if isinstance(doc, dict) else [d for d in doc if isinstance(d, dict)][:limit]
    except json.JSONDecodeError:
        pass
    for line in head.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            objs.append(obj)
        if len(objs) >= limit:
            break
    return objs


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a trace file: ``labkit`` for CSV/Parquet spans, else from its first JSON objects."""
    p = str(path)
    if not Path(p).is_file():
        raise TraceError(p, None, "file", "no such file")
    if Path(p).suffix.lower() in _TABLE_SUFFIXES:
        return "labkit"
    objs = _first_objects(p)
    if not objs:
        # One JSON document larger than the sniffed head (an OTLP export of a long session): look for its key.
        with open(p, encoding="utf-8", errors="replace") as fh:
            if '"resourceSpans"' in fh.read(4096):
                return "otlp"
    if otlp.looks_like(objs):
        return "otlp"
    if tracelab.looks_like(objs):
        return "tracelab"
    if codex.looks_like(objs):
        return "codex"
    if not objs:
        raise TraceError(p, 1, "line", "no JSON object in the first lines: not a trace file")
    raise TraceError(p, None, "format", f"cannot tell the format (not {', '.join(FORMATS)}); name it with --format")


def _expand(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            # A directory such as ~/.codex/sessions: every trace-looking file below it, in name order.
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in (".jsonl", ".json", *_TABLE_SUFFIXES)
            )
            if not found:
                raise TraceError(str(p), None, "directory", "holds no .jsonl, .json, .csv or .parquet file")
            out.extend(str(f) for f in found)
        else:
            out.append(str(p))
    return out


def load_trace(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], fmt: str | None = None) -> Trace:
    """Sessions of one or more files (or directories), each file's format ``fmt`` or detected."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    sessions: list[Session] = []
    for p in _expand(items):
        kind = fmt or detect_format(p)
        sessions.extend(READERS[kind](p))
    if not sessions:
        raise ValueError("trace: no sessions")
    return Trace(tuple(sessions))


def shipped_trace() -> Trace:
    """The sessions shipped inside the package (TraceLab's sanitized example sessions, CC BY 4.0)."""
    sessions: list[Session] = []
    root = resources.files("labkit").joinpath("data", "traces")
    for name in SHIPPED:
        with resources.as_file(root.joinpath(name)) as path:
            sessions.extend(tracelab.read_tracelab(path))
    return Trace(tuple(sessions))
