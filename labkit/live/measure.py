"""Measure rollouts end to end with the live clients: against an in-process simulator or any base URL.

:func:`measure` starts a :class:`labkit.live.server.SimServer` for the transport's profile (``ws`` ->
``websocket``, ``http`` -> ``http_optimized``, ``http-chained`` -> ``http_chained``) unless a ``base_url`` is
given, runs the rollouts with :func:`labkit.live.runner.run_rollouts`, and :func:`summarize` turns the spans into
percentiles of TTFT, turn latency and end to end, plus pacing (inter-token gaps, achieved tokens/s).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.live.runner import RolloutResult, paused_gc, rollouts_spans, run_rollouts
from labkit.live.validation import check_transport_profile, resolve_profile
from labkit.model import Profile, Workload, load_workload

QUANTILES = (50, 90, 99)


@dataclass
class Measurement:
    transport: str
    #: The profile the in-process server ran, or ``None`` against an external ``base_url``.
    profile: Profile | None
    workload: Workload
    base_url: str | None
    results: list[RolloutResult]

    @property
    def spans(self) -> pd.DataFrame:
        return rollouts_spans(self.results)

    def summary(self) -> dict[str, Any]:
        return summarize(
            self.results, transport=self.transport, profile=self.profile, workload=self.workload, base_url=self.base_url
        )


def _pcts(values: np.ndarray, prefix: str) -> dict[str, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {f"{prefix}_p{q}_s": float("nan") for q in QUANTILES}
    return {f"{prefix}_p{q}_s": float(np.percentile(values, q)) for q in QUANTILES}


def summarize(
    results: list[RolloutResult],
    *,
    transport: str,
    profile: Profile | None = None,
    workload: Workload | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Percentiles of TTFT, turn latency and end to end; fallbacks; pacing of the output stream."""
    spans = rollouts_spans(results)
    turns = turn_metrics(spans)
    rolls = rollout_metrics(spans)
    gaps = np.concatenate([r.inter_token_gaps() for r in results]) if results else np.zeros(0)
    rates = []
    for r in results:
        for te in r.exchanges:
            ex = te.exchange
            if ex.ok and len(ex.delta_t) > 1 and ex.delta_t[-1] > ex.delta_t[0]:
                rates.append((ex.output_tokens - 1) / (ex.delta_t[-1] - ex.delta_t[0]))
    out: dict[str, Any] = {
        "transport": transport,
        "profile": profile.name if profile else None,
        "configured_tps": profile.decode_tps if profile else None,
        "workload": workload.name if workload else None,
        "base_url": base_url,
        "rollouts": len(results),
        "turns": len(turns),
        **_pcts(turns["ttft_s"].to_numpy(float), "ttft"),
        **_pcts(turns["latency_s"].to_numpy(float), "turn_latency"),
        **_pcts(rolls["e2e_s"].to_numpy(float), "e2e"),
        "e2e_mean_s": float(rolls["e2e_s"].mean()),
        "fallbacks": int(sum(len(r.fallbacks) for r in results)),
        "delta_frames": int(gaps.size + sum(1 for r in results for te in r.exchanges if te.exchange.delta_t)),
        "itl_p50_s": float(np.percentile(gaps, 50)) if gaps.size else float("nan"),
        "itl_p99_s": float(np.percentile(gaps, 99)) if gaps.size else float("nan"),
        "achieved_tps_median": float(np.median(rates)) if rates else float("nan"),
    }
    return out


async def measure(
    transport: str,
    workload: Workload | str,
    *,
    tps: float | None = None,
    profile: Profile | str | None = None,
    rollouts: int = 1,
    concurrency: int = 1,
    base_url: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    server_options: dict[str, Any] | None = None,
    pause_gc: bool = True,
    **runner_options: Any,
) -> Measurement:
    """Run ``rollouts`` rollouts over ``transport`` and keep everything they recorded.

    Without ``base_url`` an in-process simulator runs ``profile`` (default: the transport's preset) at
    ``tps``; with one, ``tps`` and ``profile`` must not be given (the server there decides).
    ``pause_gc`` keeps Python's cyclic garbage collector off while the rollouts run
    (:func:`labkit.util.gctools.paused_gc`).
    """
    wl = load_workload(workload) if isinstance(workload, str) else workload

    async def run_against(url: str, **options: Any) -> list[RolloutResult]:
        with paused_gc() if pause_gc else contextlib.nullcontext():
            return await run_rollouts(
                transport, wl, rollouts=rollouts, concurrency=concurrency, seed=seed, base_url=url,
                api_key=api_key, **options,
            )  # fmt: skip

    if base_url is not None:
        if tps is not None or profile is not None:
            raise ValueError("tps: --tps and --profile configure the server measure starts; not with --base-url")
        return Measurement(transport, None, wl, base_url, await run_against(base_url, **runner_options))
    prof = resolve_profile(profile, transport, tps)
    check_transport_profile(transport, prof)
    from labkit.live.server import SimServer

    opts = {"keep_alive": prof.keep_alive, "scenario": prof.name, **runner_options}
    async with SimServer(profile=prof, workload=wl, port=0, **(server_options or {})) as server:
        results = await run_against(server.base_url, **opts)
    return Measurement(transport, prof, wl, None, results)


__all__ = ["Measurement", "measure", "summarize"]
