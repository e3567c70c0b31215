"""``labkit params``: the calibration parameters with their provenance, or the published facts."""

from __future__ import annotations

import argparse
import json

from labkit.model import load_profile, parameter_table, preset_names, published_facts

NAME = "params"
HELP = "List the model's parameters (value, unit, provenance, source) per preset, or the published facts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--published", action="store_true", help="list the published facts instead")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (the default)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).lower() if isinstance(v, bool) else str(v)


def markdown_parameters() -> str:
    """Parameters as a Markdown table: the baseline value, the presets that change it, provenance."""
    presets = [load_profile(n) for n in preset_names()]
    base = presets[0]
    lines = [
        "| parameter | unit | " + " | ".join(p.name for p in presets) + " | provenance | source / note |",
        "|---|---|" + "---|" * len(presets) + "---|---|",
    ]
    for row in parameter_table():
        name = row["parameter"]
        values = []
        for p in presets:
            v = getattr(p, name)
            values.append(_fmt(v) if p is base or v != getattr(base, name) else "″")
        note = "; ".join(x for x in (row.get("source", ""), row.get("note", "")) if x and x != "-")
        lines.append(f"| `{name}` | {row['unit']} | " + " | ".join(values) + f" | {row['provenance']} | {note} |")
    return "\n".join(lines)


def markdown_published() -> str:
    lines = ["| fact | value | unit | source |", "|---|---|---|---|"]
    for f in published_facts().values():
        lines.append(f"| {f['claim']} | {_fmt(f['value'])} | {f['unit']} | {f['source']} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(published_facts() if args.published else parameter_table(), indent=2))
    else:  # Markdown is also the readable terminal form
        print(markdown_published() if args.published else markdown_parameters())
    return 0
