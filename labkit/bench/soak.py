"""``soak``: N concurrent WebSocket connections x 20 turns against one server process, with a cache budget.

The simulator runs in a subprocess (so its RSS is its own) with ``max_cached_bytes`` set; the agents are
the labkit runner in WebSocket mode, all at once, here. A sampler thread reads the server's RSS and its
metrics (``cached_bytes``, evictions) every 0.2 s over the whole run. A connection whose cached response
was evicted to stay within the budget gets ``previous_response_not_found`` and its client falls back to
the full context: that is not an error. Errors are rollouts that did not complete.

The store is capped (:data:`STORE_CAPS`: records, readable bodies and their bytes), so that the record's
``rss_growth_mb_per_10k_responses`` (RSS growth per 10,000 responses over the run's second half by responses
served, after the warm-up) shows whether anything but the capped store grows with the responses served.

Used by ``tests/test_soak.py`` at suite size and by ``labkit bench soak`` at 1,000 connections. Ratio =
peak cached bytes sampled / budget (goal <= 1, with no rollout lost).
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import urllib.request
from typing import Any

from labkit.bench.runner import result
from labkit.bench.server import ServerProcess
from labkit.model import load_workload
from labkit.util import progress

SAMPLE_S = 0.2
#: The store caps every soak runs with (``SimServer`` arguments; see docs/guides/wire.md, "Bounds").
STORE_CAPS = {"max_stored": 20_000, "max_stored_bodies": 2_000, "max_stored_bytes": 16 * 1024 * 1024}


def workload_overrides(turns: int) -> dict[str, Any]:
    return {
        "turns": turns,
        "initial_context_tokens": 2000,
        "tool_output_tokens": 200,
        "output_tokens": 40,
        "final_output_tokens": 60,
        "token_sigma": 0.0,
        "tool_time_median_s": 0.05,
        "tool_time_sigma": 0.0,
    }


class Sampler(threading.Thread):
    """Samples the server's RSS (bytes) and metrics until stopped."""

    def __init__(self, server: ServerProcess, metrics_url: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.metrics_url = metrics_url
        # Loopback only: never route the metrics poll through a configured HTTP proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.rss: list[int] = []
        self.cached_bytes: list[int] = []
        #: Responses the server had served at each sample.
        self.responses: list[int] = []
        self.stop_event = threading.Event()

    def metrics(self) -> dict[str, Any]:
        with self._opener.open(self.metrics_url, timeout=10) as resp:
            return json.loads(resp.read())

    def sample(self) -> None:
        self.rss.append(self.server.ps.memory_info().rss)
        m = self.metrics()
        self.cached_bytes.append(int(m["cached_bytes"]))
        self.responses.append(int(m.get("responses", 0)))

    def growth_per_10k(self) -> float | None:
        """RSS growth (MB) per 10,000 responses over the run's second half by responses served: the first
        half warms up (imports, the allocator's arenas, the caches filling) and would dominate a short run."""
        total = self.responses[-1] if self.responses else 0
        half = next((i for i, n in enumerate(self.responses) if n >= total / 2), None)
        if half is None or total - self.responses[half] <= 0:
            return None
        return (self.rss[-1] - self.rss[half]) / 2**20 / (total - self.responses[half]) * 10_000

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(SAMPLE_S)


async def _agents(base_url: str, connections: int, turns: int) -> list[Any]:
    from labkit.live.runner import run_rollout

    workload = load_workload("codex_bugfix", **workload_overrides(turns))
    t0 = time.perf_counter()
    return await progress.gather(
        *(
            run_rollout("ws", workload, base_url=base_url, seed=i, rollout=i, t0=t0, max_attempts=4, ping_interval=None)
            for i in range(connections)
        ),
        desc="soak rollouts",
        unit="rollout",
        return_exceptions=True,
    )


def soak(connections: int, turns: int = 20, max_cached_bytes: int | None = None, tps: float = 1000.0) -> dict:
    """Run the soak and return its figures (see the module docstring)."""
    config: dict[str, Any] = {"tps": tps, "workload": workload_overrides(turns), "instant": False, **STORE_CAPS}
    if max_cached_bytes is not None:
        config["max_cached_bytes"] = max_cached_bytes
    with ServerProcess("labkit", config) as server:
        base_url = server.urls[0].rsplit("/responses", 1)[0]
        sampler = Sampler(server, f"{base_url}/labkit/metrics")
        sampler.sample()
        rss_start = sampler.rss[0]
        sampler.start()
        t0 = time.perf_counter()
        try:
            outcomes = asyncio.run(_agents(base_url, connections, turns))
        finally:
            sampler.stop_event.set()
            sampler.join()
        wall = time.perf_counter() - t0
        sampler.sample()
        metrics = sampler.metrics()
    errors = [f"{type(o).__name__}: {o}"[:300] for o in outcomes if isinstance(o, BaseException)]
    done = [o for o in outcomes if not isinstance(o, BaseException)]
    codes = collections.Counter(f.code for o in done for f in o.fallbacks)
    responses = int(metrics.get("responses", 0))
    return {
        "connections": connections,
        "turns": turns,
        "max_cached_bytes": max_cached_bytes,
        "rollouts_finished": sum(1 for o in done if o.finished),
        "turns_completed": sum(o.turns for o in done),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "fallbacks": sum(codes.values()),
        "fallback_codes": dict(codes),
        "cached_bytes_peak": max(sampler.cached_bytes),
        "samples": len(sampler.rss),
        "rss_start_mb": rss_start / 2**20,
        "rss_peak_mb": max(sampler.rss) / 2**20,
        "rss_end_mb": sampler.rss[-1] / 2**20,
        "store_caps": dict(STORE_CAPS),
        "responses": responses,
        "rss_growth_mb_per_10k_responses": sampler.growth_per_10k(),
        "wall_s": wall,
        "server_metrics": metrics,
    }


def run(quick: bool = False) -> dict[str, Any]:
    connections = 50 if quick else 1000
    turns = 5 if quick else 20
    # A budget of a quarter of what every connection's cache would hold: eviction must do real work.
    per_conn = (2000 + turns * 250) * 4
    budget = connections * per_conn // 4
    fig = soak(connections, turns, budget)
    ratio = fig["cached_bytes_peak"] / budget
    lost = fig["errors"] + (connections - fig["rollouts_finished"])
    return result(
        "soak",
        ratio if lost == 0 else float("inf"),
        "<=",
        1.0,
        ratio_means="peak cached bytes sampled / max_cached_bytes budget (inf if any rollout was lost)",
        summary=(
            f"{fig['rollouts_finished']}/{connections} rollouts, {fig['errors']} errors, "
            f"{fig['fallbacks']} fallbacks; RSS {fig['rss_start_mb']:.0f} -> {fig['rss_peak_mb']:.0f} MB peak, "
            f"{_growth(fig['rss_growth_mb_per_10k_responses'])} per 10,000 responses with the store capped"
        ),
        **fig,
    )


def _growth(mb: float | None) -> str:
    return "n/a" if mb is None else f"{mb:+.1f} MB"
