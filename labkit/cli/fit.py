"""``labkit fit SPANS``: a profile fitted to a measurement, with bootstrap intervals and provenance."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from pathlib import Path
from typing import Any

NAME = "fit"
HELP = "Fit a profile to a measured spans table (decode TPS, TTFT terms, completion, connection, tool time)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "spans", nargs="?", default=None, help="spans table (CSV or Parquet), e.g. from labkit measure --spans"
    )
    parser.add_argument("--out", default=None, metavar="PROFILE.toml", help="write the fitted profile file here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--base", default=None, help="preset or profile file the unfitted values come from (default: by transport)"
    )
    parser.add_argument("--name", default="fitted", help="name of the fitted profile (default 'fitted')")
    parser.add_argument(
        "--rtt-from-connect",
        action="store_true",
        help="derive rtt_s as half the connection set-up (a measurement over a real network, not loopback)",
    )
    parser.add_argument("--boot", type=int, default=200, help="bootstrap resamples (default 200)")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="measure first: serve --profile with the simulator, run the calibration workload over WebSocket mode",
    )
    parser.add_argument("--profile", default="websocket", help="with --measure: the simulator's preset or profile file")
    parser.add_argument("--rollouts", type=int, default=6, help="with --measure: rollouts of the calibration workload")
    parser.add_argument("--seed", type=int, default=0, help="with --measure: seed of rollout 0")
    parser.add_argument("--spans-out", default=None, metavar="PATH", help="with --measure: also write the spans (CSV)")
    parser.add_argument(
        "--cost",
        action="store_true",
        help="print the token cost of --rollouts calibration rollouts on a real API, then exit",
    )
    parser.add_argument(
        "--recovery",
        type=int,
        default=None,
        metavar="N",
        help="run N parameter-recovery trials against the simulator and print the recovery rate (--out: write JSON)",
    )


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from labkit.traces import recovery as rec
    from labkit.traces.fit import fit_file, fit_spans, write_profile

    if args.spans and (args.measure or args.cost or args.recovery is not None):
        raise ValueError("spans: give a spans file or one of --measure, --cost, --recovery N, not both")
    if args.cost:
        cost = rec.token_cost("calibration", args.rollouts, args.seed)
        if args.json:
            print(json.dumps(cost, indent=2))
        else:
            print(
                f"{cost['rollouts']} calibration rollouts: {cost['requests']} requests, {cost['input_tokens']:,} input "
                f"tokens (billed in full each request, cached ones at the provider's discount), "
                f"{cost['output_tokens']:,} output tokens"
            )
        return 0
    if args.recovery is not None:
        result = asyncio.run(rec.recovery(args.recovery, n_boot=args.boot))
        doc = _clean(result.to_dict())
        if args.out:
            Path(args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            held = result.held_out_summary()
            print(f"recovery rate {result.rate:.0%} over {len(result.trials)} trials")
            for k, v in result.parameter_rates().items():
                print(f"  {k:24s} {v:.0%}")
            if held:
                print(
                    f"held-out end to end: mean |error| {held['mean_abs_rel']:.2%}, max {held['max_abs_rel']:.2%}, "
                    f"{held['within_5pct']:.0%} within 5% ({held['n']} rollouts)"
                )
        return 0
    if args.measure:
        from labkit.model import load_profile

        spans = asyncio.run(
            rec.measure_simulated(load_profile(args.profile), "calibration", rollouts=args.rollouts, seed=args.seed)
        )
        if args.spans_out:
            spans.to_csv(args.spans_out, index=False)
        fit = fit_spans(
            spans,
            base=args.base,
            name=args.name,
            source=args.spans_out or "labkit fit --measure",
            n_boot=args.boot,
            rtt_from_connect=args.rtt_from_connect,
        )
    else:
        if not args.spans:
            raise ValueError("spans: give a spans file, or --measure, --recovery N or --cost")
        fit = fit_file(
            args.spans, base=args.base, name=args.name, n_boot=args.boot, rtt_from_connect=args.rtt_from_connect
        )
    if args.out:
        write_profile(fit, args.out)
    if args.json:
        d = fit.to_dict()
        keys = ("parameters", "residuals", "workload", "base", "source", "turns")
        print(json.dumps(_clean({k: d[k] for k in keys}), indent=2))
        return 0
    print(f"fitted {fit.turns} turns of {fit.rollouts} rollouts from {fit.source} (base {fit.base})")
    for key, p in fit.parameters.items():
        if p.provenance == "assumed":
            continue
        ci = f"[{p.lo:.6g}, {p.hi:.6g}]" if p.lo is not None and p.hi is not None else ""
        print(f"  {key:24s} {p.value:12.6g} {ci:28s} {p.provenance}")
    for key, p in fit.workload.items():
        print(f"  {key:24s} {p.value:12.6g} [{p.lo:.6g}, {p.hi:.6g}] fitted (workload)")
    ttft = fit.residuals.get("ttft", {})
    if ttft.get("n"):
        print(f"  TTFT residual rmse {ttft['rmse_s'] * 1e3:.2f} ms over {ttft['n']} turns")
    if "e2e" in fit.residuals:
        e2e = fit.residuals["e2e"]
        print(f"  end to end: mean error {e2e['mean_rel']:+.2%} over {e2e['n']} rollouts")
    if args.out:
        print(f"wrote {args.out}")
    return 0
