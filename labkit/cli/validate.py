"""``labkit validate``: the model's prediction against a live measurement of the same scenario, per turn."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from labkit.live.runner import TRANSPORTS
from labkit.model import preset_names, workload_names

NAME = "validate"
HELP = (
    "Run one scenario through the model (DES, no jitter, loopback) and through the in-process simulator; "
    "print the per-turn error of turn latency and TTFT."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tps", type=float, default=1000.0, help="decode tokens/s (default 1000)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="ws", help="ws | http | http-chained")
    parser.add_argument("--workload", default="codex_bugfix", help=f"workload: {', '.join(workload_names())}")
    parser.add_argument(
        "--profile",
        default=None,
        help=f"a preset ({', '.join(preset_names())}) or the path of a profile TOML file; default by transport: "
        "ws -> websocket, http -> http_optimized, http-chained -> http_chained",
    )
    parser.add_argument("--rollouts", type=int, default=1, help="repetitions of the scenario (default 1)")
    parser.add_argument("--csv", default=None, metavar="PATH", help="also write the per-turn table to PATH")
    parser.add_argument(
        "--figure",
        default=None,
        metavar="DIR",
        help="also write the per-turn figure (turn latency and TTFT, predicted vs measured) to DIR as HTML and PNG",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from labkit.experiments.validate import predict_and_measure

    if not isinstance(args.rollouts, int) or args.rollouts < 1:
        raise ValueError(f"rollouts: must be an integer >= 1, got {args.rollouts!r}")
    v = asyncio.run(predict_and_measure(args.profile, args.workload, args.tps, args.transport, rollouts=args.rollouts))
    s = v.to_dict()
    if args.csv:
        v.turns.to_csv(args.csv, index=False)
    if args.figure:
        _figures(v, args.figure)
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    print(
        f"{s['transport']} / {s['profile']} on {s['workload']} at {s['tps']:g} TPS: {s['turns']} turns, "
        f"predicted by {s['predictor']} (loopback)"
    )
    print(f"  turns               {s['turns']}")
    print(f"  median_abs_error_s  {s['median_abs_error_s']:.6f}   (measured - predicted turn latency)")
    print(f"  median_rel_error    {s['median_rel_error']:.4f}")
    print(f"  p95_rel_error       {s['p95_rel_error']:.4f}")
    print(f"  median_error_s      {s['median_error_s']:+.6f}   (signed: the live stack's own overhead)")
    print(
        f"  ttft median_abs_error_s {s['ttft_median_abs_error_s']:.6f}, median_rel_error "
        f"{s['ttft_median_rel_error']:.4f}, p95_rel_error {s['ttft_p95_rel_error']:.4f}"
    )
    print(
        f"  median predicted turn latency {s['median_predicted_latency_s']:.4f} s; fallbacks {s['fallbacks']}; "
        f"output-size mismatches {s['tokens_mismatch']}"
    )
    if "median_server_overrun_s" in s:
        print(
            "  where the time beyond the plan goes (medians): "
            f"before send {_ms(s['median_client_before_send_s'])}, "
            f"client->server {_ms(s['median_client_to_server_s'])}, "
            f"server overrun {_ms(s['median_server_overrun_s'])}, "
            f"server->client {_ms(s['median_server_to_client_s'])}"
        )
    verdict = "met" if s["target_met"] else "NOT met"
    print(f"  target median error <= max(1 ms, 2%): {verdict}")
    return 0


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def _figures(v, out_dir: str) -> None:
    from labkit.viz import export_many, find_browser
    from labkit.viz.figures import prediction_vs_measurement

    name = f"validate_{v.transport.replace('-', '_')}_{v.workload.name}"
    figs = [
        (prediction_vs_measurement(v.predicted, v.measured, column=col), f"{name}_{col.removesuffix('_s')}")
        for col in ("latency_s", "ttft_s")
    ]
    formats = ("html", "png") if find_browser() else ("html",)
    for written in export_many(figs, formats, out_dir).values():
        for path in written.values():
            print(f"wrote {path}", file=sys.stderr)
