"""``des``: the SimPy model's cost per simulated stage against raw SimPy timeouts, measured in one run.

An *event* here is one stage the model simulates (one span row): a hand-written SimPy model would spend
one ``env.timeout`` on each. The baseline runs as many SimPy processes as the model has concurrent agents,
each yielding ``env.timeout`` the same total number of times, so both heaps hold the same number of
entries. Ratio = labkit seconds per event / raw seconds per event; goal at most 2.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import simpy

from labkit.bench.pinning import pinned
from labkit.bench.runner import result, summarize
from labkit.model import load_profile, load_workload
from labkit.sim import des

GOAL = "<= 2"


def raw_timeouts(processes: int, events: int) -> float:
    """Seconds for ``processes`` SimPy processes to yield ``events`` timeouts in total."""
    env = simpy.Environment()
    per, extra = divmod(events, processes)

    def proc(env: simpy.Environment, n: int):
        for _ in range(n):
            yield env.timeout(1.0)

    for i in range(processes):
        env.process(proc(env, per + (1 if i < extra else 0)))
    t0 = time.perf_counter()
    env.run()
    return time.perf_counter() - t0


def labkit_rollouts(rollouts: int, profile_name: str, seed: int, jitter: float) -> tuple[float, int]:
    """Seconds to simulate ``rollouts`` codex_bugfix rollouts, and the number of spans (events) made."""
    profile = load_profile(profile_name)
    workload = load_workload("codex_bugfix")
    t0 = time.perf_counter()
    spans = des.run(profile, workload, rollouts=rollouts, seed=seed, jitter=jitter, as_frame=False)
    elapsed = time.perf_counter() - t0
    return elapsed, len(spans)


def run(quick: bool = False) -> dict[str, Any]:
    rollouts = 20 if quick else 400
    repeats = 3 if quick else 7
    profile_name = "websocket"
    jitter = 0.0
    labkit_s: list[float] = []
    raw_s: list[float] = []
    ratios: list[float] = []
    events = 0
    with pinned(0):
        # Warm caches (imports, presets, lru caches of turn specs differ by seed, so seeds change below).
        labkit_rollouts(2, profile_name, seed=10_000, jitter=jitter)
        for rep in range(repeats):
            gc.collect()
            # A fresh seed per repeat: the model cannot reuse the previous repeat's cached turn specs.
            t_lab, events = labkit_rollouts(rollouts, profile_name, seed=rep, jitter=jitter)
            gc.collect()
            t_raw = raw_timeouts(rollouts, events)
            labkit_s.append(t_lab)
            raw_s.append(t_raw)
            ratios.append(t_lab / t_raw)
    lab = summarize(labkit_s)
    raw = summarize(raw_s)
    ratio = summarize(ratios)
    turns = load_workload("codex_bugfix").turns
    return result(
        "des",
        ratio["median"],
        "<=",
        2.0,
        ratio_means="labkit s per simulated stage / raw SimPy s per env.timeout (same count, one core)",
        ratio_stats=ratio,
        summary=(
            f"{lab['median'] / events * 1e6:.2f} vs {raw['median'] / events * 1e6:.2f} us per event; "
            f"{rollouts / lab['median']:,.0f} rollouts/s"
        ),
        profile=profile_name,
        workload="codex_bugfix",
        turns_per_rollout=turns,
        rollouts_per_repeat=rollouts,
        events_per_repeat=events,
        labkit_seconds=lab,
        raw_seconds=raw,
        labkit_us_per_event=lab["median"] / events * 1e6,
        raw_us_per_event=raw["median"] / events * 1e6,
        labkit_rollouts_per_s=rollouts / lab["median"],
        raw_timeouts_per_s=events / raw["median"],
    )
