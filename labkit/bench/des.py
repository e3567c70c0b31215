"""``des``: the DES's cost per simulated stage against a bare SimPy timeout, measured side by side in one run.

A *simulated stage* is one span row (one stage of one request, or a tool call): a hand-written SimPy model
would spend one ``env.timeout`` on each. The baseline runs as many SimPy processes as the model has
concurrent agents, each yielding ``env.timeout`` the same total number of times, so both heaps hold the same
number of entries. Parts (each repeat alternates labkit and raw, with a fresh seed so no cached turn specs
are reused):

- ``spans``: ``codex_bugfix`` rollouts with every span kept (numpy columns, no DataFrame);
- ``stream``: the same rollouts with streamed metrics only (what ``labkit fleet`` runs);
- ``pools``: streamed, with finite API workers and inference slots (events at every phase boundary).

Ratio = labkit seconds per simulated stage / raw seconds per timeout, worst of ``spans`` and ``stream``
(goal <= 0.5: stages laid out arithmetically between the places rollouts share something). ``pools`` has a
goal labkit set itself (<= 1), reported but not counted in ``met``: with finite pools a turn needs SimPy
events at its phase boundaries (four a turn; a wait ends at the next boundary and adds none), so its cost
follows the pools and how much the fleet queues, not how the stages are laid out.

Each part runs in a fresh worker process of its own (``spawn``), pinned to the bench's core as before, its
labkit runs and its raw baseline runs alternating in that one process after a warm-up of both sides: a part's
number must not depend on which parts ran before it in the same interpreter (their arrays, garbage, heap
layout and caches stay with them). When all parts shared one process, ``pools`` measured alone gave 0.82 and
after ``spans`` and ``stream`` 0.95 (one engineer's five alternating pairs, 1-minute load 1.3-1.5); at load
10-16 on two cores the difference did not reproduce (see the benchmarks guide), so the cost of the shared
process is not proven, but nothing in a part's measurement now depends on the order. Both sides get the same
process, core, priority, warm-up and ``gc.collect()`` before each run; ``raw_timeouts`` is unchanged.

``model_share`` is the part of labkit's time spent in the latency model itself (``Workload.turn_specs`` and
``plan_rollout``, a tile of rollouts at a time as the DES calls them, timed alone on the same calls): the
floor below which no engine change can go.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import simpy

from labkit.bench.pinning import pinned
from labkit.bench.runner import result, summarize
from labkit.model import load_profile, load_workload
from labkit.model.plan import plan_rollout
from labkit.sim import des
from labkit.util.progress import progress

GOAL = "<= 0.5"
PROFILE = "websocket"
WORKLOAD = "codex_bugfix"


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


def labkit_rollouts(rollouts: int, seed: int, mode: str) -> tuple[float, int]:
    """Seconds to simulate ``rollouts`` rollouts in ``mode`` (spans | stream | pools), and the stages made."""
    profile = load_profile(PROFILE)
    workload = load_workload(WORKLOAD)
    fleet = des.Fleet(api_workers=max(1, rollouts // 20), inference_slots=max(1, rollouts // 4))
    kw: dict[str, Any] = {"rollouts": rollouts, "seed": seed, "jitter": 0.0}
    if mode == "pools":
        kw["fleet"] = fleet
    t0 = time.perf_counter()
    res = des.run(profile, workload, record="spans" if mode == "spans" else "stream", as_frame=False, **kw)
    elapsed = time.perf_counter() - t0
    # Stages simulated: the span rows the same run makes (counted after the clock stopped).
    table = res.table if res.table is not None else des.run(profile, workload, as_frame=False, **kw).table
    assert table is not None
    return elapsed, len(table)


def model_seconds(rollouts: int, seed: int) -> float:
    """Seconds the latency model alone takes for the calls a run makes (turn specs, plans a tile at a time)."""
    profile = load_profile(PROFILE)
    workload = load_workload(WORKLOAD)
    first, later = np.zeros(3, dtype=bool), np.ones(3, dtype=bool)
    t0 = time.perf_counter()
    for start in range(0, rollouts, des.PLAN_TILE):
        specs = [
            spec
            for r in range(start, min(start + des.PLAN_TILE, rollouts))
            for spec in workload.turn_specs(seed * 1_000_003 + r + workload.seed)
        ]
        # The cache states as the DES builds them (picked per turn with numpy).
        continuing = np.fromiter((spec.index > 0 for spec in specs), dtype=bool, count=len(specs))
        plan_rollout(profile, specs, np.where(continuing[:, None], later, first)).tolist()
    return time.perf_counter() - t0


#: The parts, in the order the bench runs them; each in a fresh worker process of its own.
MODES: tuple[str, ...] = ("spans", "stream", "pools")


@dataclass(frozen=True)
class PartTimes:
    """One part's repeats, measured in one worker process: labkit and raw alternating, per stage in us."""

    mode: str
    labkit_us: tuple[float, ...]
    raw_us: tuple[float, ...]
    ratios: tuple[float, ...]
    stages: int
    #: The latency model alone per stage, timed after each repeat's pair (only in the ``stream`` part).
    model_us: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_part(mode: str, rollouts: int, repeats: int, with_model: bool = False) -> PartTimes:
    """``repeats`` alternating pairs of one part (labkit then raw) on the bench's core, in this process.

    Meant to run in a fresh worker process (:func:`run_part`): nothing but this part's own warm-up ran
    before, so neither side inherits another part's heap, garbage or caches.
    """
    lab: list[float] = []
    raw: list[float] = []
    ratios: list[float] = []
    model: list[float] = []
    stages = 0
    with pinned(0):
        # Warm-up for both sides alike: imports, presets, this part's code paths and SimPy's.
        labkit_rollouts(2, seed=10_000, mode=mode)
        raw_timeouts(2, 64)
        for rep in range(repeats):
            # A fresh seed per repeat and part: no run reuses another's cached turn specs.
            seed = 100 * rep + MODES.index(mode)
            gc.collect()
            t_lab, stages = labkit_rollouts(rollouts, seed, mode)
            gc.collect()
            t_raw = raw_timeouts(rollouts, stages)
            lab.append(t_lab / stages * 1e6)
            raw.append(t_raw / stages * 1e6)
            ratios.append(t_lab / t_raw)
            if with_model:
                gc.collect()
                model.append(model_seconds(rollouts, 100 * rep + 50) / stages * 1e6)
    return PartTimes(mode, tuple(lab), tuple(raw), tuple(ratios), stages, tuple(model))


def run_part(mode: str, rollouts: int, repeats: int) -> PartTimes:
    """:func:`measure_part` in a fresh spawned process (so that no earlier part's state leaks into it)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_part, mode, rollouts, repeats, mode == "stream").result()


def run(quick: bool = False) -> dict[str, Any]:
    rollouts = 20 if quick else 400
    repeats = 3 if quick else 7
    measured = {mode: run_part(mode, rollouts, repeats) for mode in progress(MODES, desc="des parts", unit="part")}
    lab = {m: list(t.labkit_us) for m, t in measured.items()}
    raw = {m: list(t.raw_us) for m, t in measured.items()}
    ratios = {m: list(t.ratios) for m, t in measured.items()}
    events = {m: t.stages for m, t in measured.items()}
    model = list(measured["stream"].model_us)
    raw_us = summarize(raw["stream"])["median"]
    model_us = summarize(model)["median"]
    parts = []
    for mode, goal in (("spans", 0.5), ("stream", 0.5), ("pools", 1.0)):
        st = summarize(ratios[mode])
        parts.append(
            result(
                mode,
                st["median"],
                "<=",
                goal,
                counted=mode != "pools",
                ratio_means=f"labkit s per simulated stage ({mode}) / raw SimPy s per env.timeout (same count)",
                ratio_stats=st,
                summary=f"{summarize(lab[mode])['median']:.3f} vs {summarize(raw[mode])['median']:.3f} us per stage",
                labkit_us_per_stage=summarize(lab[mode]),
                raw_us_per_stage=summarize(raw[mode]),
                stages_per_repeat=events[mode],
                labkit_rollouts_per_s=rollouts / (summarize(lab[mode])["median"] * events[mode] / 1e6),
            )
        )
    worst = max(parts[0]["ratio"], parts[1]["ratio"])
    turns = load_workload(WORKLOAD).turns
    return result(
        "des",
        worst,
        "<=",
        0.5,
        ratio_means="labkit s per simulated stage / raw SimPy s per env.timeout, worst of spans and stream",
        parts=parts,
        summary=(
            f"spans {parts[0]['ratio']:.2f}, stream {parts[1]['ratio']:.2f}, pools {parts[2]['ratio']:.2f}; "
            f"the latency model alone: {model_us / raw_us:.2f} of a timeout per stage"
        ),
        profile=PROFILE,
        workload=WORKLOAD,
        turns_per_rollout=turns,
        rollouts_per_repeat=rollouts,
        events_per_repeat=events["spans"],
        repeats=repeats,
        process_per_part="each part in a fresh spawned process, pinned to the bench core",
        model_us_per_stage=summarize(model),
        model_share_of_stream=model_us / summarize(lab["stream"])["median"],
        model_ratio_floor=model_us / raw_us,
    )
