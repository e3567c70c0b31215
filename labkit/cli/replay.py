"""``labkit replay TRACE...``: real sessions replayed under each strategy and decode speed."""

from __future__ import annotations

import argparse
import json

from labkit.model import preset_names

NAME = "replay"
HELP = "Replay real agent sessions (Codex CLI, TraceLab, OTLP, labkit spans) under each profile and decode speed."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trace",
        nargs="*",
        help="trace files or directories (Codex rollout JSONL, TraceLab round_trace.jsonl, OTLP JSON, labkit spans "
        "CSV/Parquet); none: the sessions shipped with labkit (TraceLab's example sessions, CC BY 4.0)",
    )
    parser.add_argument(
        "--format", default=None, choices=("codex", "tracelab", "otlp", "labkit"), help="default: detected per file"
    )
    parser.add_argument(
        "--profiles",
        default=None,
        help=f"comma-separated presets or profile files (default: every preset: {', '.join(preset_names())})",
    )
    parser.add_argument(
        "--tps", default=None, help="comma-separated decode speeds, e.g. 65,1000 (default: each profile's)"
    )
    parser.add_argument(
        "--profile-cache",
        action="store_true",
        help="use each profile's prefix-cache share instead of the share the session measured",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ValueError(f"expected a comma-separated list, got {value!r}")
    return items


def _speeds(value: str | None) -> list[float] | None:
    items = _list(value)
    if items is None:
        return None
    try:
        return [float(x) for x in items]
    except ValueError:
        raise ValueError(f"tps: expected numbers like 65,1000, got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    from labkit.traces import load_trace, shipped_trace
    from labkit.traces.replay import replay

    trace = load_trace(args.trace, args.format) if args.trace else shipped_trace()
    results = replay(trace, _list(args.profiles), _speeds(args.tps), trace_cache=not args.profile_cache)
    if args.json:
        print(json.dumps({"sessions": [r.to_dict() for r in results]}, indent=2))
        return 0
    for r in results:
        measured = f"{r.measured_s:.1f} s measured" if r.measured_s is not None else "no measured time"
        print(
            f"{r.id} ({r.format}): {r.model_calls} model calls, {r.tool_calls} tool calls, "
            f"{r.input_tokens:,} input tokens ({r.cached_input_tokens:,} cached), {r.output_tokens:,} output "
            f"({r.reasoning_tokens:,} reasoning); {measured}"
            + (f"; {r.skipped_lines} lines skipped" if r.skipped_lines else "")
        )
        speeds = sorted({k for v in r.predicted_e2e_s.values() for k in v}, key=float)
        print("  " + "profile".ljust(20) + "".join(f"{k + ' TPS':>14}" for k in speeds))
        for prof, by in r.predicted_e2e_s.items():
            cells = "".join(f"{by[k]:>12.2f} s" if k in by else " " * 14 for k in speeds)
            print("  " + prof.ljust(20) + cells)
    return 0
