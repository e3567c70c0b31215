"""Measure rollouts end to end with the live clients: against an in-process simulator or any base URL.

:func:`measure` starts a :class:`labkit.live.server.SimServer` for the transport's profile (``ws`` ->
``websocket``, ``http`` -> ``http_optimized``, ``http-chained`` -> ``http_chained``) unless a ``base_url`` is
given, runs the rollouts with :func:`labkit.live.runner.run_rollouts`, and :func:`summarize` turns the spans into
percentiles of TTFT, turn latency and end to end, plus pacing (inter-token gaps, achieved tokens/s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.metrics import rollout_metrics, turn_metrics
from labkit.experiments.validate import check_transport_profile, resolve_profile
from labkit.live.runner import RolloutResult, WorkloadLike, paused_gc, rollouts_spans, run_rollouts
from labkit.model import Profile, Workload, load_workload

QUANTILES = (50, 90, 99)


@dataclass(frozen=True, slots=True)
class MeasureSummary:
    """Percentiles of TTFT, turn latency and end to end over the measured rollouts, fallbacks, pacing."""

    transport: str
    #: The in-process server's profile and its decode rate (``None`` against an external ``base_url``).
    profile: str | None
    configured_tps: float | None
    workload: str | None
    base_url: str | None
    rollouts: int
    turns: int
    ttft_p50_s: float
    ttft_p90_s: float
    ttft_p99_s: float
    turn_latency_p50_s: float
    turn_latency_p90_s: float
    turn_latency_p99_s: float
    e2e_p50_s: float
    e2e_p90_s: float
    e2e_p99_s: float
    e2e_mean_s: float
    fallbacks: int
    #: Output delta frames received, and the spacing between consecutive ones.
    delta_frames: int
    itl_p50_s: float
    itl_p99_s: float
    #: Median over responses of (tokens - 1) / (last delta - first delta).
    achieved_tps_median: float
    #: Responses the server queued (``response.queued``), reasoning tokens and tool calls over all turns.
    queued_responses: int = 0
    reasoning_tokens: int = 0
    tool_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data; NaN (nothing to measure) becomes ``None`` so the dict is valid JSON."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Measurement:
    """What :func:`measure` ran and recorded: every rollout's result, and the summary of them."""

    transport: str
    #: The profile the in-process server ran, or ``None`` against an external ``base_url``.
    profile: Profile | None
    workload: WorkloadLike
    base_url: str | None
    results: list[RolloutResult]

    @property
    def spans(self) -> pd.DataFrame:
        return rollouts_spans(self.results)

    def events(self) -> pd.DataFrame:
        """Every event's timestamp, all rollouts (see :meth:`RolloutResult.events`)."""
        return pd.concat([r.events() for r in self.results], ignore_index=True)

    def summary(self) -> MeasureSummary:
        return summarize(
            self.results, transport=self.transport, profile=self.profile, workload=self.workload, base_url=self.base_url
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what ``labkit measure --json`` prints)."""
        return self.summary().to_dict()


def _pcts(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [float("nan")] * len(QUANTILES)
    return [float(np.percentile(values, q)) for q in QUANTILES]


def summarize(
    results: list[RolloutResult],
    *,
    transport: str,
    profile: Profile | None = None,
    workload: WorkloadLike | None = None,
    base_url: str | None = None,
) -> MeasureSummary:
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
    ok = [te.exchange for r in results for te in r.exchanges if te.exchange.ok]
    ttft = _pcts(turns["ttft_s"].to_numpy(float))
    lat = _pcts(turns["latency_s"].to_numpy(float))
    e2e = _pcts(rolls["e2e_s"].to_numpy(float))
    return MeasureSummary(
        transport=transport,
        profile=profile.name if profile else None,
        configured_tps=profile.decode_tps if profile else None,
        workload=workload.name if workload else None,
        base_url=base_url,
        rollouts=len(results),
        turns=len(turns),
        ttft_p50_s=ttft[0],
        ttft_p90_s=ttft[1],
        ttft_p99_s=ttft[2],
        turn_latency_p50_s=lat[0],
        turn_latency_p90_s=lat[1],
        turn_latency_p99_s=lat[2],
        e2e_p50_s=e2e[0],
        e2e_p90_s=e2e[1],
        e2e_p99_s=e2e[2],
        e2e_mean_s=float(rolls["e2e_s"].mean()) if len(rolls) else float("nan"),
        fallbacks=int(sum(len(r.fallbacks) for r in results)),
        delta_frames=int(gaps.size + sum(1 for r in results for te in r.exchanges if te.exchange.delta_t)),
        itl_p50_s=float(np.percentile(gaps, 50)) if gaps.size else float("nan"),
        itl_p99_s=float(np.percentile(gaps, 99)) if gaps.size else float("nan"),
        achieved_tps_median=float(np.median(rates)) if rates else float("nan"),
        queued_responses=sum(1 for r in results for te in r.exchanges if te.exchange.queued),
        reasoning_tokens=sum(ex.reasoning_tokens for ex in ok),
        tool_calls=sum(len(ex.function_calls) for ex in ok),
    )


async def measure(
    transport: str,
    workload: WorkloadLike | str,
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

    Without ``base_url`` an in-process simulator runs ``profile`` (a preset name, a profile file's path or a
    :class:`Profile`; default: the transport's preset) at ``tps``; with one, ``tps`` and ``profile`` must not be
    given (the server there decides). ``runner_options`` are :class:`labkit.live.runner.RolloutConfig` fields.
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
    if not isinstance(wl, Workload):
        raise ValueError(
            f"workload: the in-process simulator runs a Workload, not a {type(wl).__name__}; "
            "measure it against a server with base_url"
        )
    from labkit.live.server import SimServer

    opts = {"keep_alive": prof.keep_alive, "scenario": prof.name, **runner_options}
    async with SimServer(profile=prof, workload=wl, port=0, **(server_options or {})) as server:
        results = await run_against(server.base_url, **opts)
    return Measurement(transport, prof, wl, None, results)


__all__ = ["MeasureSummary", "Measurement", "measure", "summarize"]
