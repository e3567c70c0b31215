"""``labkit fit TRACE...``: a profile fitted to real sessions' per-call times, or to a measured spans table.

Two fits, chosen by what is given:

- real sessions (any importable format: Codex rollouts, TraceLab round traces, OTLP JSON, labkit spans; several
  files or folders at once): a robust fit of each model call's time on its visible output, reasoning and
  uncached input tokens, with intervals from a bootstrap over sessions (:mod:`labkit.traces.sessionfit`);
  ``--holdout`` adds leave-one-session-out predictions of each session's model time;
- one labkit spans table alone (without ``--holdout`` or ``--per-call``): the stage-level fit of
  :mod:`labkit.traces.fit` (TTFT, decode, completion and connection apart, as a spans table shows them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from pathlib import Path
from typing import Any

NAME = "fit"
HELP = "Fit a profile to real sessions (any trace format, per-call times) or to a measured spans table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "traces",
        nargs="*",
        metavar="TRACE",
        help="trace files or folders (Codex rollouts, TraceLab round traces, OTLP JSON, labkit spans CSV/Parquet)",
    )
    parser.add_argument("--format", default=None, help="the files' format (default: detected per file)")
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="leave-one-session-out: predict each session's model time from a fit on the others",
    )
    parser.add_argument(
        "--per-call",
        action="store_true",
        help="fit per-call times even for one labkit spans table (default there: the stage-level fit)",
    )
    parser.add_argument(
        "--recover-sessions",
        type=int,
        default=None,
        metavar="N",
        help="generate N sessions with known parameters in each trace format, read them back, fit, and compare",
    )
    parser.add_argument("--out", default=None, metavar="PROFILE.toml", help="write the fitted profile file here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--base",
        default=None,
        help="preset or profile file the unfitted values come from (default: websocket; spans: by transport)",
    )
    parser.add_argument("--name", default="fitted", help="name of the fitted profile (default 'fitted')")
    parser.add_argument(
        "--rtt-from-connect",
        action="store_true",
        help="spans fit: derive rtt_s as half the connection set-up (a measurement over a real network, not loopback)",
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
    if isinstance(obj, float) and math.isinf(obj):
        return "inf"
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _cost(args: argparse.Namespace) -> int:
    from labkit.experiments import recovery as rec

    cost = rec.token_cost("calibration", args.rollouts, args.seed)
    if args.json:
        print(json.dumps(cost, indent=2))
        return 0
    print(
        f"{cost['rollouts']} calibration rollouts: {cost['requests']} requests, {cost['input_tokens']:,} input "
        f"tokens (billed in full each request, cached ones at the provider's discount), "
        f"{cost['output_tokens']:,} output tokens"
    )
    return 0


def _recovery(args: argparse.Namespace) -> int:
    from labkit.experiments import recovery as rec

    result = asyncio.run(rec.recovery(args.recovery, n_boot=args.boot))
    doc = _clean(result.to_dict())
    if args.out:
        Path(args.out).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
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


def _recover_sessions(args: argparse.Namespace) -> int:
    from labkit.traces.sessionrecovery import recover_formats

    results = recover_formats(n_sessions=args.recover_sessions, seed=args.seed, n_boot=args.boot)
    if args.json:
        print(json.dumps(_clean([r.to_dict() for r in results]), indent=2))
        return 0
    for r in results:
        mae = "-" if r.median_abs_error is None else f"{r.median_abs_error:.1%}"
        print(f"{r.format:12s} {r.sessions} sessions, {r.calls} calls, holdout median |error| {mae}")
        for key, p in r.parameters.items():
            inside = "inside" if p.inside else "OUTSIDE"
            print(f"  {key:24s} truth {p.truth:10.4g} fitted {p.value:10.4g}  error {p.rel_error:6.1%}  {inside}")
    return 0


def _spans_fit(args: argparse.Namespace, path: str | None) -> int:
    from labkit.traces.fit import fit_file, fit_spans, write_profile

    if args.measure:
        from labkit.experiments import recovery as rec
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
        assert path is not None
        fit = fit_file(path, base=args.base, name=args.name, n_boot=args.boot, rtt_from_connect=args.rtt_from_connect)
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


def _session_fit(args: argparse.Namespace) -> int:
    from labkit.traces.sessionfit import fit_sessions, write_session_profile

    fit = fit_sessions(
        args.traces,
        fmt=args.format,
        base=args.base or "websocket",
        n_boot=args.boot,
        seed=args.seed,
        with_holdout=args.holdout,
    )
    if args.out:
        write_session_profile(fit, args.out, args.name)
    if args.json:
        print(json.dumps(_clean(fit.to_dict()), indent=2))
        return 0
    print(f"fitted {fit.calls} model calls of {fit.sessions} sessions from {', '.join(fit.files)}")
    for key, p in fit.parameters.items():
        ci = f"[{p.lo:.4g}, {p.hi:.4g}]" if p.lo is not None and p.hi is not None else "(no interval)"
        print(f"  {key:24s} {p.value:10.4g} {ci:24s} {p.provenance}")
    r = fit.residuals
    print(f"  residuals: median {r['median_s']:+.3f} s, mean {r['mean_s']:+.3f} s, p95 |r| {r['p95_abs_s']:.3f} s")
    for row in fit.holdout or ():
        print(
            f"  held out {row.session}: {row.calls} calls, measured {row.measured_s:.1f} s, "
            f"predicted {row.predicted_s:.1f} s ({row.error:+.1%})"
        )
    if fit.median_abs_error is not None:
        print(f"  holdout median |error| {fit.median_abs_error:.1%} over {len(fit.holdout or ())} sessions")
    print("  not separable: " + fit.notes["call_fixed_s"])
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _is_one_spans_table(paths: list[str], fmt: str | None) -> bool:
    from labkit.traces.load import detect_format

    return len(paths) == 1 and Path(paths[0]).is_file() and (fmt or detect_format(paths[0])) == "labkit"


def run(args: argparse.Namespace) -> int:
    if args.traces and (args.measure or args.cost or args.recovery is not None or args.recover_sessions is not None):
        raise ValueError(
            "traces: give trace files or one of --measure, --cost, --recovery N, --recover-sessions N, not both"
        )
    if args.cost:
        return _cost(args)
    if args.recovery is not None:
        return _recovery(args)
    if args.recover_sessions is not None:
        return _recover_sessions(args)
    if args.measure:
        return _spans_fit(args, None)
    if not args.traces:
        raise ValueError(
            "traces: give a spans file or other trace files (Codex, TraceLab, OTLP), or --measure, --recovery N, "
            "--recover-sessions N or --cost"
        )
    if not args.holdout and not args.per_call and _is_one_spans_table(args.traces, args.format):
        return _spans_fit(args, args.traces[0])
    return _session_fit(args)
