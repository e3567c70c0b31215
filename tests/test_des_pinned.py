"""The DES's pooled path pinned: spans and streamed metrics of seeded runs with finite pools, as the engine of
issue 18's start made them (``tests/fixtures/des_pooled.json.gz``), so a faster pool pass cannot change a result.

The cases cover what goes through ``_serve_pooled``: plain turns (phase sums from the tile), jitter, drops,
evictions, random routing over replicas, a cache byte budget, the connection limit, API workers only, inference
slots only, and both; each with waits (more agents than servers). Times are compared to 1e-12 (relative, or
absolute near zero): the same arithmetic, summed in another order, may differ in its last bit; counts, stages,
tokens, bytes and cache hits exactly.

To regenerate (only when a result is meant to change, and say why in the commit):
``python tests/test_des_pinned.py``.
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labkit.model import load_profile, load_workload
from labkit.model.cache import CachePolicy
from labkit.sim.des import Faults, Fleet, run

FIXTURE = Path(__file__).parent / "fixtures" / "des_pooled.json.gz"
REL = 1e-12
ABS = 1e-9  # seconds: times are up to a few thousand seconds, so 1e-12 relative is at most a few ns


@dataclass(frozen=True)
class Case:
    name: str
    profile: str
    profile_overrides: dict[str, Any] = field(default_factory=dict)
    turns: int = 6
    rollouts: int = 10
    agents: int | None = None
    seed: int = 0
    jitter: float = 0.0
    faults: Faults = field(default_factory=Faults)
    fleet: Fleet = field(default_factory=Fleet)
    cache: CachePolicy | None = None
    stagger_s: float = 0.0

    def run(self, record: str) -> Any:
        workload = load_workload("codex_bugfix").with_(turns=self.turns)
        return run(
            load_profile(self.profile, **self.profile_overrides),
            workload,
            rollouts=self.rollouts,
            agents=self.agents,
            seed=self.seed,
            jitter=self.jitter,
            faults=self.faults,
            fleet=self.fleet,
            cache=self.cache,
            stagger_s=self.stagger_s,
            record=record,  # type: ignore[arg-type]
        )


CASES = (
    # The bench's pooled run in small: plain turns, both pools, everybody queueing.
    Case(
        "plain_both_pools", "websocket", rollouts=16, agents=12, seed=3, fleet=Fleet(api_workers=2, inference_slots=3)
    ),
    Case("plain_api_only", "http_optimized", rollouts=12, seed=4, fleet=Fleet(api_workers=1), stagger_s=0.05),
    Case("plain_inference_only", "http_chained", rollouts=12, seed=5, fleet=Fleet(inference_slots=2)),
    Case(
        "jitter_faults",
        "websocket",
        rollouts=12,
        agents=6,
        seed=6,
        jitter=0.3,
        faults=Faults(drop_rate=0.15, evict_rate=0.15),
        fleet=Fleet(api_workers=2, inference_slots=2),
    ),
    Case(
        "random_routing",
        "http_baseline",
        {"replicas": 3, "routing": "random"},
        rollouts=12,
        seed=7,
        jitter=0.2,
        faults=Faults(drop_rate=0.1),
        fleet=Fleet(api_workers=1, inference_slots=3),
    ),
    Case(
        "cache_budget_limit",
        "websocket",
        {"replicas": 2},
        turns=10,
        rollouts=10,
        seed=8,
        faults=Faults(evict_rate=0.05, connection_limit_s=20.0),
        fleet=Fleet(api_workers=2, inference_slots=4),
        cache=CachePolicy(budget_bytes=700_000),
    ),
)


def _spans(case: Case) -> dict[str, list[Any]]:
    res = case.run("spans")
    df = res.spans
    return {
        "until": [res.until],
        "inference_time_average": [res.inference_time_average],
        "inference_arrivals": [res.inference_arrivals],
        **{c: df[c].tolist() for c in ("rollout", "turn", "attempt", "stage", "tokens", "bytes")},
        "cache_hit": [bool(x) for x in df["cache_hit"]],
        "start_s": df["start_s"].tolist(),
        "end_s": df["end_s"].tolist(),
    }


def _hist(h: Any) -> dict[str, Any]:
    return {"bins": list(h.bins), "counts": list(h.counts), "zeros": h.zeros, "n": h.n, "total": h.total}


def _stream(case: Case) -> dict[str, Any]:
    m = case.run("stream").metrics
    return {
        "turns": m.turns,
        "requests": m.requests,
        "fallbacks": m.fallbacks,
        "until_s": m.until_s,
        "e2e_s": m.e2e_s.tolist(),
        "ttft": _hist(m.ttft),
        "api_wait": _hist(m.api_wait),
        "inference_wait": _hist(m.inference_wait),
        "api_busy": list(m.api_busy),
        "inference_busy": list(m.inference_busy),
        "api_in_system": list(m.api_in_system),
        "inference_in_system": list(m.inference_in_system),
        "cache": [m.cache_hits, m.cache_misses, m.cache_evictions, m.cache_expirations, list(m.cache_peak_bytes)],
    }


def snapshot() -> dict[str, Any]:
    return {c.name: {"spans": _spans(c), "stream": _stream(c)} for c in CASES}


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    with gzip.open(FIXTURE, "rt") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _close(got: Any, want: Any, where: str) -> None:
    """Equal, floats to ``REL``/``ABS``, everything else exactly."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            _close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} values, pinned {len(want)}"
        if want and all(isinstance(x, float) for x in want):
            g, w = np.asarray(got, float), np.asarray(want, float)
            np.testing.assert_allclose(g, w, rtol=REL, atol=ABS, err_msg=where)
        else:
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                _close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=REL, abs_tol=ABS), f"{where}: {got} != {want}"
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pooled_spans_equal_the_pinned_engine(case, pinned):
    want = pinned[case.name]["spans"]
    assert want["inference_arrivals"][0] is None or want["inference_arrivals"][0] > 0
    _close(_spans(case), want, case.name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_pooled_stream_metrics_equal_the_pinned_engine(case, pinned):
    want = pinned[case.name]["stream"]
    # Every case queues somewhere: the wait histograms are not all zeros.
    assert want["api_wait"]["n"] + want["inference_wait"]["n"] > 0
    assert want["api_wait"]["total"] + want["inference_wait"]["total"] > 0
    _close(_stream(case), want, case.name)


if __name__ == "__main__":
    with gzip.open(FIXTURE, "wt") as out:
        json.dump(snapshot(), out, separators=(",", ":"))
    print(f"wrote {FIXTURE}")
