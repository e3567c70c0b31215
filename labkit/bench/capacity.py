"""``capacity``: concurrent live agents one server process holds at 1,000 tokens/s, labkit's against a raw one.

Two servers, each in a subprocess pinned to one core: labkit's simulator (``websocket`` profile, 1,000 TPS,
paced) and a raw pacing server (:mod:`labkit.bench.rawpacing`: plain ``websockets``, the same paced streams
with the same token counts and pre/post times, no logic). The agents (WebSocket mode, 20 turns, short tools;
a lean client, see :func:`lean_agent`) run here on the other core, their starts spread over one second.
Levels go upward (100, 250, 500, 750, 1,000, 1,500, 2,000); at each level the raw server and labkit's run
back to back, so a busy moment of the machine hits both. A level holds when every rollout completes without
a fallback and the per-agent achieved decode rate (output tokens after the first / first-to-last delta time,
pooled over the agent's turns) stays within 5% of configured for 95% of the agents at both ends (p5 >= 0.95
and p95 <= 1.05), in one of two tries; a missed try during which other processes used more than a quarter
of the machine is marked ``disturbed`` and retried (four tries at most). A server's search stops at its
first level that does not hold.

Ratio = agents labkit held / agents the raw server held in the same run (goal >= 1): an absolute count
moves with the machine's load; the ratio to a baseline beside it much less.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

import numpy as np

from labkit.bench.pinning import cores, pinned
from labkit.bench.rawpacing import turn_plan
from labkit.bench.runner import OthersCpu, result
from labkit.bench.server import RawPacingProcess, ServerProcess
from labkit.model import load_workload
from labkit.util.progress import progress

GOAL = ">= 1"
LEVELS: tuple[int, ...] = (100, 250, 500, 750, 1000, 1500, 2000)
QUICK_LEVELS: tuple[int, ...] = (10, 25)
TPS = 1000.0
TOLERANCE = 0.05
STAGGER_S = 1.0
#: A level gets a second try when the first misses: on a shared machine, a neighbour's burst on the
#: server's core can spoil one run; every try is recorded.
ATTEMPTS = 2
#: A missed try during which other processes used more than this share of the machine (cores per core)
#: does not count against the level: it is retried, up to ``MAX_TRIES`` tries in all.
DISTURBED = 0.25
MAX_TRIES = 4


def _workload_overrides(turns: int) -> dict[str, Any]:
    return {
        "turns": turns,
        "output_tokens": 300,
        "final_output_tokens": 300,
        "token_sigma": 0.0,
        "tool_time_median_s": 0.02,
        "tool_time_sigma": 0.0,
    }


async def lean_agent(ws_url: str, workload: Any, seed: int) -> tuple[float, float]:
    """One agent rollout in WebSocket mode with a lean client; returns (decode tokens, decode seconds).

    The same conversation as :func:`labkit.live.runner.run_rollout` (the task, then per turn a
    ``function_call_output`` with ``previous_response_id``), but delta frames are only timestamped by
    their type prefix, not parsed: the load generator must not be the bottleneck of a server benchmark.
    It stays lean on purpose instead of running :mod:`labkit.live.runner`'s agent loop, whose client parses
    and records every event (several microseconds each, on the core the load generator shares).
    """
    import json

    from websockets.asyncio.client import connect

    from labkit.live.runner import TOOLS
    from labkit.wire.protocol import build_create, function_call_output, user_message
    from labkit.wire.tokens import filler_text

    specs = workload.turn_specs(seed)
    tokens = seconds = 0.0
    prev: str | None = None
    items = [user_message(filler_text(specs[0].new_input_tokens, salt=seed))]
    async with connect(ws_url, compression=None, max_size=None, ping_interval=None, open_timeout=30) as ws:
        for spec in specs:
            body = build_create("labkit-sim", items, tools=TOOLS, store=False, previous_response_id=prev)
            await ws.send(json.dumps(body))
            first = last = 0.0
            while True:
                # Text frames only (decode=True): both servers send JSON text.
                msg = await ws.recv(decode=True)
                if msg.startswith(_DELTA_PREFIXES):
                    last = time.perf_counter()
                    first = first or last
                    continue
                if msg.startswith('{"type":"response.completed"'):
                    response = json.loads(msg)["response"]
                    break
                if msg.startswith('{"type":"error"') or msg.startswith('{"type":"response.failed"'):
                    raise RuntimeError(f"turn {spec.index}: {msg[:200]}")
            tokens += response["usage"]["output_tokens"] - 1
            seconds += last - first
            prev = response["id"]
            call = next((o for o in response["output"] if o.get("type") == "function_call"), None)
            if call is None or spec.final:
                break
            if spec.tool_s > 0:
                await asyncio.sleep(spec.tool_s)
            nxt = specs[spec.index + 1]
            items = [function_call_output(call["call_id"], filler_text(nxt.new_input_tokens, salt=seed + nxt.index))]
    return tokens, seconds


_DELTA_PREFIXES = ('{"type":"response.output_text.delta"', '{"type":"response.function_call_arguments.delta"')


async def _level(ws_url: str, agents: int, turns: int) -> dict[str, Any]:
    workload = load_workload("codex_bugfix", **_workload_overrides(turns))
    t0 = time.perf_counter()

    pooled = [0.0, 0.0]

    async def agent(i: int) -> tuple[float | None, int, str | None]:
        await asyncio.sleep(STAGGER_S * i / agents)
        try:
            tokens, seconds = await lean_agent(ws_url, workload, seed=i)
        except (RuntimeError, OSError) as exc:
            return None, 0, f"{type(exc).__name__}: {exc}"[:200]
        pooled[0] += tokens
        pooled[1] += seconds
        return (tokens / seconds / TPS if seconds > 0 else None), 0, None

    cpu0 = time.process_time()
    outcomes = await asyncio.gather(*(agent(i) for i in range(agents)))
    wall = time.perf_counter() - t0
    client_cpu = time.process_time() - cpu0
    ratios = np.array([r for r, _, _ in outcomes if r is not None])
    errors = [e for _, _, e in outcomes if e]
    fallbacks = sum(f for _, f, _ in outcomes)
    p5, p50, p95 = np.percentile(ratios, [5, 50, 95]) if len(ratios) else (np.nan,) * 3
    held = not errors and fallbacks == 0 and len(ratios) == agents and p5 >= 1 - TOLERANCE and p95 <= 1 + TOLERANCE
    return {
        "agents": agents,
        "held": bool(held),
        # All agents' tokens over all their decode time: the process's aggregate rate (not the criterion).
        "achieved_tps_ratio_pooled": pooled[0] / pooled[1] / TPS if pooled[1] else float("nan"),
        "achieved_tps_ratio_p5": float(p5),
        "achieved_tps_ratio_p50": float(p50),
        "achieved_tps_ratio_p95": float(p95),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "fallbacks": fallbacks,
        "wall_s": wall,
        "client_cpu_share": client_cpu / wall,
    }


def _try_level(kind: str, agents: int, turns: int, config: dict[str, Any], raw_config: dict[str, Any]) -> dict:
    # A fresh server per attempt, so one run's leftovers never burden the next.
    server_cm = ServerProcess("labkit", config) if kind == "labkit" else RawPacingProcess(raw_config)
    # Other work during this level: a neighbour's burst on the server's core can fail a level on its own.
    others = OthersCpu(len(cores()))
    with server_cm as server, pinned(1):
        url = server.urls[1] if kind == "labkit" else server.urls[0]
        cpu0, t0 = server.cpu(), time.perf_counter()
        fig = asyncio.run(_level(url, agents, turns))
        fig["server_cpu_share"] = (server.cpu() - cpu0) / (time.perf_counter() - t0)
        fig["server_rss_mb"] = server.ps.memory_info().rss / 2**20
    fig["server"] = kind
    fig["others_cpu_per_core"] = others.share()
    return fig


def run(quick: bool = False) -> dict[str, Any]:
    levels = QUICK_LEVELS if quick else LEVELS
    turns = 3 if quick else 20
    # Each agent holds a socket on both sides; make sure this process may open them all.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 4 * max(levels) + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    overrides = _workload_overrides(turns)
    config = {"tps": TPS, "workload": overrides, "instant": False}
    raw_config = {"tps": TPS, "plan": turn_plan(turns, overrides, TPS)}
    figures: list[dict[str, Any]] = []
    held = {"raw": 0, "labkit": 0}
    searching = {"raw": True, "labkit": True}
    for agents in progress(levels, desc="capacity levels", unit="level"):
        for kind in ("raw", "labkit"):
            if not searching[kind]:
                continue
            counted = 0
            for attempt in range(MAX_TRIES):
                fig = _try_level(kind, agents, turns, config, raw_config)
                fig["attempt"] = attempt
                others = fig["others_cpu_per_core"]
                fig["disturbed"] = bool(not fig["held"] and others is not None and others > DISTURBED)
                figures.append(fig)
                if fig["held"]:
                    break
                counted += not fig["disturbed"]
                if counted >= ATTEMPTS:
                    break
            if fig["held"]:
                held[kind] = agents
            else:
                searching[kind] = False
        if not any(searching.values()):
            break
    ratio = held["labkit"] / held["raw"] if held["raw"] else float("nan")
    return result(
        "capacity",
        ratio,
        ">=",
        1.0,
        ratio_means=f"concurrent WebSocket agents held at {TPS:g} TPS within 5%: labkit / raw pacing server",
        summary=(
            f"labkit held {held['labkit']}, raw held {held['raw']}"
            + ("" if all(not v for v in searching.values()) else f" (levels ran out at {levels[-1]})")
        ),
        labkit_held=held["labkit"],
        raw_held=held["raw"],
        levels_tried=list(levels),
        attempts_per_level=ATTEMPTS,
        disturbed_above=DISTURBED,
        max_tries_per_level=MAX_TRIES,
        turns=turns,
        levels=figures,
    )
