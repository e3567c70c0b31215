"""``labkit export SPANS --format otlp|perfetto --out FILE``: a spans table as OTLP JSON or a Perfetto trace."""

from __future__ import annotations

import argparse
import json

NAME = "export"
HELP = "Export a spans table as OTLP JSON (GenAI conventions) or as Chrome trace-event JSON for Perfetto."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spans", help="spans table (CSV or Parquet), e.g. from labkit measure --spans")
    parser.add_argument("--format", required=True, choices=("otlp", "perfetto"), help="otlp | perfetto")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file (JSON)")
    parser.add_argument("--model", default="labkit-sim", help="otlp: gen_ai.request.model of the chat spans")
    parser.add_argument(
        "--origin-ns", type=int, default=None, help="otlp: Unix time in ns of the spans' time 0 (default: now)"
    )


def run(args: argparse.Namespace) -> int:
    from labkit.traces import read_spans_file, spans_to_otlp, spans_to_perfetto

    spans = read_spans_file(args.spans)
    if args.format == "otlp":
        doc = spans_to_otlp(spans, model=args.model, origin_unix_ns=args.origin_ns)
        n = len(doc["resourceSpans"][0]["scopeSpans"][0]["spans"])
    else:
        doc = spans_to_perfetto(spans)
        n = len(doc["traceEvents"])
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {args.out}: {n} {'spans' if args.format == 'otlp' else 'trace events'}")
    return 0
