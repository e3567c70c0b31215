"""``labkit measure``: run agent rollouts over one transport and print TTFT, turn latency, end to end."""

from __future__ import annotations

import argparse
import asyncio
import json
import math

from labkit.live.runner import DEFAULT_MODEL, TRANSPORTS
from labkit.model import preset_names, workload_names

NAME = "measure"
HELP = (
    "Measure agent rollouts over ws, http or http-chained: against an in-process simulator it starts, "
    "or against --base-url (the real API with OPENAI_API_KEY)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=TRANSPORTS, default="ws", help="ws | http | http-chained")
    parser.add_argument("--tps", type=float, default=None, help="decode tokens/s of the simulator (default: profile's)")
    parser.add_argument("--workload", default="codex_bugfix", help=f"workload: {', '.join(workload_names())}")
    parser.add_argument("--rollouts", type=int, default=1, help="number of rollouts (default 1)")
    parser.add_argument("--concurrency", type=int, default=1, help="rollouts in flight at once (default 1)")
    parser.add_argument(
        "--profile",
        default=None,
        help=f"simulator profile: a preset ({', '.join(preset_names())}) or the path of a profile TOML file "
        '(a [profile] table or top-level Profile fields, optional base = "<preset>"); default by transport: '
        "ws -> websocket, http -> http_optimized, http-chained -> http_chained",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of rollout 0 (rollout i uses seed + i)")
    parser.add_argument("--no-keep-alive", action="store_true", help="http: a new connection per request")
    parser.add_argument(
        "--base-url",
        default=None,
        help="measure this server instead (e.g. https://api.openai.com/v1; key from OPENAI_API_KEY)",
    )
    parser.add_argument("--model", default=None, help=f"model name (default {DEFAULT_MODEL!r}; needed for a real API)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one response")
    parser.add_argument("--max-attempts", type=int, default=3, help="attempts per turn before giving up (default 3)")
    parser.add_argument("--spans", default=None, metavar="PATH", help="also write the spans table to PATH (CSV)")
    parser.add_argument(
        "--events", default=None, metavar="PATH", help="also write every event's timestamp to PATH (CSV)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from labkit.experiments.measure import measure

    opts: dict = {"timeout": args.timeout, "max_attempts": args.max_attempts}
    if args.model:
        opts["model"] = args.model
    if args.no_keep_alive:
        opts["keep_alive"] = False
    if args.base_url:
        # A real model follows the script only when told to: call a tool until the last turn, then answer.
        opts["script_tool_choice"] = True
    m = asyncio.run(
        measure(
            args.transport,
            args.workload,
            tps=args.tps,
            profile=args.profile,
            rollouts=args.rollouts,
            concurrency=args.concurrency,
            base_url=args.base_url,
            seed=args.seed,
            **opts,
        )
    )
    if args.spans:
        m.spans.to_csv(args.spans, index=False)
    if args.events:
        m.events().to_csv(args.events, index=False)
    s = m.to_dict()
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    where = s["base_url"] or f"in-process simulator, profile {s['profile']} at {s['configured_tps']:g} TPS"
    print(f"{s['transport']} on {s['workload']}: {s['rollouts']} rollout(s), {s['turns']} turns ({where})")
    print(f"  {'':14}{'p50':>10}{'p90':>10}{'p99':>10}")
    for label, key in (("TTFT", "ttft"), ("turn latency", "turn_latency"), ("end to end", "e2e")):
        vals = "".join(_ms(s[f"{key}_p{q}_s"]) for q in (50, 90, 99))
        print(f"  {label:14}{vals}")
    rate = s["achieved_tps_median"]
    print(
        f"  fallbacks {s['fallbacks']}; inter-token gap p50 {_ms(s['itl_p50_s']).strip()}, "
        f"p99 {_ms(s['itl_p99_s']).strip()}; achieved "
        f"{'-' if rate is None else f'{rate:.0f}'} tokens/s (median per response)"
    )
    extras = [f"{s['tool_calls']} tool calls"]
    if s["reasoning_tokens"]:
        extras.append(f"{s['reasoning_tokens']} reasoning tokens")
    if s["queued_responses"]:
        extras.append(f"{s['queued_responses']} responses queued by the server")
    print(f"  {'; '.join(extras)}")
    return 0


def _ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return f"{'-':>10}"
    if seconds >= 10:
        return f"{seconds:9.2f}s"
    return f"{seconds * 1e3:8.1f}ms"
