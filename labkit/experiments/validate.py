"""Prediction vs measurement: one scenario through the model and through the live server, turn by turn.

The prediction runs the scenario's profile on loopback (``profile.loopback()``: the live network is a real
socket on this machine, so the model's network stages are zero) through the SimPy model without jitter
(``labkit.sim.des.simulate(..., jitter=0)``), or through the closed form when the DES is not available. The
measurement runs the same workload and seed through the in-process simulated server with the agent runner.
Both are spans tables; the per-turn error is measured minus predicted, for turn latency and TTFT:

- turn latency: first byte of the request (handshake included) until ``response.completed``;
- TTFT: the same start until the first output delta.

The difference is what the model does not contain: the server's and the client's own work per event, the
loop's timer resolution, the kernel's loopback. That is the number this module reports. With the
in-process server it also says where that time goes, from server-side timestamps of each response
(:class:`ServerProbe`): before the request was sent (handshake, pool), client to server (framing, the
kernel, the server's read), the server's overrun of its plan (timer wake-ups, its own work), and server to
client (the last event's delivery and parsing).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.metrics import turn_metrics
from labkit.live.runner import TRANSPORTS, RolloutConfig, RolloutResult, RolloutRunner, paused_gc, rollouts_spans
from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.util.progress import progress

#: The preset each transport is measured with by default.
DEFAULT_PROFILE = {"ws": "websocket", "http": "http_optimized", "http-chained": "http_chained"}
#: The target on this machine: median per-turn error within max(1 ms, 2%).
TARGET_ABS_S = 0.001
TARGET_REL = 0.02
#: The parts of a turn's measured-minus-planned time that :class:`ServerProbe` separates.
BREAKDOWN_COLUMNS = ("client_before_send_s", "client_to_server_s", "server_overrun_s", "server_to_client_s")


def check_transport_profile(transport: str, profile: Profile) -> None:
    """The profile must describe what the transport does, or the prediction models another system."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport: expected one of {', '.join(TRANSPORTS)}, got {transport!r}")
    expected = {"ws": ("websocket", "connection"), "http": ("http", "none"), "http-chained": ("http", "store")}
    want_transport, want_chaining = expected[transport]
    if profile.transport != want_transport or profile.chaining != want_chaining:
        raise ValueError(
            f"profile: {profile.name!r} is transport={profile.transport}, chaining={profile.chaining}; "
            f"--transport {transport} needs transport={want_transport}, chaining={want_chaining}"
        )


def resolve_profile(profile: Profile | str | None, transport: str, tps: float | None) -> Profile:
    """A profile object for ``transport`` with ``decode_tps=tps``: ``profile`` is a preset name, the path of a
    profile TOML file (see :func:`labkit.model.load_profile`) or a :class:`Profile`; the transport's preset by
    default."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport: expected one of {', '.join(TRANSPORTS)}, got {transport!r}")
    if profile is None:
        profile = DEFAULT_PROFILE[transport]
    prof = load_profile(profile) if isinstance(profile, str) else profile
    if tps is not None:
        if not (isinstance(tps, int | float) and math.isfinite(tps) and tps > 0):
            raise ValueError(f"tps: must be a number > 0, got {tps!r}")
        prof = prof.with_(decode_tps=float(tps))
    return prof


def predict_spans(profile: Profile, workload: Workload, *, rollouts: int = 1) -> tuple[pd.DataFrame, str]:
    """The model's spans for ``rollouts`` repetitions of the workload at its own seed, on loopback.

    Returns ``(spans, predictor)``: ``"des"`` (SimPy, no jitter) or ``"analytic"`` (closed form). Every
    repetition is the same scenario, so each has the same prediction.
    """
    lo = profile.loopback()
    simulate: Callable[..., pd.DataFrame] | None
    try:
        from labkit.sim.des import simulate
    except ImportError:  # pragma: no cover - the DES is part of labkit; kept for partial installs
        simulate = None
    if simulate is not None:
        # DES rollout r of seed s draws turn_specs(s * 1_000_003 + r + workload.seed): seed 0, rollout 0
        # is the workload's own seed, which is what the live runner uses.
        one = simulate(lo, workload, rollouts=1, seed=0, jitter=0.0, scenario=profile.name)
        predictor = "des"
    else:
        from labkit.sim.analytic import analytic_spans

        one = analytic_spans(lo, workload).frame()
        predictor = "analytic"
    frames = [one.assign(rollout=r) for r in range(rollouts)]
    return pd.concat(frames, ignore_index=True), predictor


def turn_errors(predicted: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """One row per measured (rollout, turn): predicted, measured and error of turn latency and TTFT."""
    p = turn_metrics(predicted).set_index(["rollout", "turn"])
    m = turn_metrics(measured).set_index(["rollout", "turn"])
    out = pd.DataFrame(index=m.index)
    for name in ("latency_s", "ttft_s"):
        out[f"predicted_{name}"] = p[name].reindex(m.index)
        out[f"measured_{name}"] = m[name]
    out["predicted_tokens_out"] = p["tokens_out"].reindex(m.index)
    out["measured_tokens_out"] = m["tokens_out"]
    out["attempts"] = m["attempts"]
    out["error_s"] = out["measured_latency_s"] - out["predicted_latency_s"]
    out["rel_error"] = out["error_s"].abs() / out["predicted_latency_s"]
    out["ttft_error_s"] = out["measured_ttft_s"] - out["predicted_ttft_s"]
    out["ttft_rel_error"] = out["ttft_error_s"].abs() / out["predicted_ttft_s"]
    return out.reset_index()


def error_summary(turns: pd.DataFrame) -> dict[str, Any]:
    """Medians and tails of the per-turn errors (turn latency first, then TTFT), as the fields of
    :class:`ValidationSummary` (a plain dict: notebooks tabulate several of them)."""
    if turns.empty:
        raise ValueError("turns: no measured turns to compare")
    lat = turns["error_s"].to_numpy(float)
    rel = turns["rel_error"].to_numpy(float)
    tt = turns["ttft_error_s"].to_numpy(float)
    ttr = turns["ttft_rel_error"].to_numpy(float)
    median_abs = float(np.median(np.abs(lat)))
    median_rel = float(np.median(rel))
    return {
        "turns": len(turns),
        "median_abs_error_s": median_abs,
        "median_rel_error": median_rel,
        "p95_rel_error": float(np.percentile(rel, 95)),
        "median_error_s": float(np.median(lat)),
        "max_abs_error_s": float(np.max(np.abs(lat))),
        "ttft_median_abs_error_s": float(np.median(np.abs(tt))),
        "ttft_median_rel_error": float(np.median(ttr)),
        "ttft_p95_rel_error": float(np.percentile(ttr, 95)),
        "median_predicted_latency_s": float(turns["predicted_latency_s"].median()),
        "tokens_mismatch": int((turns["predicted_tokens_out"] != turns["measured_tokens_out"]).sum()),
        "fallbacks": int((turns["attempts"] - 1).sum()),
        "target_met": bool(median_abs <= TARGET_ABS_S or median_rel <= TARGET_REL),
    }


@dataclass(frozen=True, slots=True)
class ValidationSummary:
    """One scenario's per-turn errors, measured minus predicted (turn latency, then TTFT), and the target."""

    transport: str
    profile: str
    workload: str
    tps: float
    #: ``des`` (SimPy, no jitter) or ``analytic`` (closed form).
    predictor: str
    turns: int
    median_abs_error_s: float
    median_rel_error: float
    p95_rel_error: float
    #: Signed: the live stack's own overhead per turn.
    median_error_s: float
    max_abs_error_s: float
    ttft_median_abs_error_s: float
    ttft_median_rel_error: float
    ttft_p95_rel_error: float
    median_predicted_latency_s: float
    #: Turns whose measured output size differs from the model's.
    tokens_mismatch: int
    fallbacks: int
    #: Median per-turn error within max(1 ms, 2%).
    target_met: bool
    #: Where the time beyond the plan went, medians (in-process server only; else ``None``).
    median_client_before_send_s: float | None = None
    median_client_to_server_s: float | None = None
    median_server_overrun_s: float | None = None
    median_server_to_client_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data; the breakdown medians only when there is a breakdown."""
        out = dataclasses.asdict(self)
        for col in BREAKDOWN_COLUMNS:
            if out[f"median_{col}"] is None:
                del out[f"median_{col}"]
        return out


class ServerProbe:
    """Joins the in-process server's own per-turn timestamps (``SimServer.turn_log`` and ``timing()``)
    with the client's exchanges, by response id, on the client's clock."""

    def __init__(self, server: Any) -> None:
        self.server = server
        # The stock loop's clock is time.monotonic(); the clients stamp with perf_counter().
        self.offset = time.perf_counter() - asyncio.get_running_loop().time()

    def breakdown(self, results: list[RolloutResult]) -> pd.DataFrame:
        """Per turn (its successful attempt): where the measured time beyond the plan went."""
        logs = {log.response_id: log for log in self.server.turn_log}
        planned = {row["response_id"]: row for row in self.server.timing()}
        rows = []
        for r in results:
            for te in r.exchanges:
                ex = te.exchange
                log = logs.get(ex.response_id or "") if ex.ok else None
                if log is None:
                    continue
                plan = planned[log.response_id]
                t0, t_done = log.t0 + self.offset, log.t_done + self.offset
                rows.append(
                    {
                        "rollout": r.rollout,
                        "turn": te.turn,
                        "planned_server_s": plan["planned_done_s"],
                        "client_before_send_s": ex.t_sent - ex.t_start,
                        "client_to_server_s": t0 - ex.t_sent,
                        "server_overrun_s": (t_done - t0) - plan["planned_done_s"],
                        "server_to_client_s": ex.t_end - t_done,
                        "server_first_overrun_s": (
                            plan["actual_first_s"] - plan["planned_first_s"]
                            if plan["actual_first_s"] is not None
                            else float("nan")
                        ),
                    }
                )
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class Validation:
    """Both spans tables of one scenario, the per-turn errors and their summary."""

    profile: Profile
    workload: Workload
    transport: str
    predictor: str
    predicted: pd.DataFrame
    measured: pd.DataFrame
    turns: pd.DataFrame
    results: list[RolloutResult] = field(default_factory=list, repr=False)
    #: Where the time beyond the plan went, per turn (in-process server only; else ``None``).
    breakdown: pd.DataFrame | None = None

    def summary(self) -> ValidationSummary:
        medians: dict[str, Any] = {}
        if self.breakdown is not None and not self.breakdown.empty:
            medians = {f"median_{col}": float(self.breakdown[col].median()) for col in BREAKDOWN_COLUMNS}
        return ValidationSummary(
            transport=self.transport,
            profile=self.profile.name,
            workload=self.workload.name,
            tps=self.profile.decode_tps,
            predictor=self.predictor,
            **error_summary(self.turns),
            **medians,
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (what ``labkit validate --json`` prints)."""
        return self.summary().to_dict()


async def predict_and_measure(
    profile: Profile | str | None,
    workload: Workload | str,
    tps: float | None,
    transport: str = "ws",
    *,
    rollouts: int = 1,
    base_url: str | None = None,
    api_key: str | None = None,
    server_options: dict[str, Any] | None = None,
    pause_gc: bool = True,
    **runner_options: Any,
) -> Validation:
    """Run one scenario through the model and through the live server; compare turn by turn.

    ``profile`` defaults to the transport's preset (``ws`` -> ``websocket``, ``http`` -> ``http_optimized``,
    ``http-chained`` -> ``http_chained``) with ``decode_tps=tps``. Without ``base_url`` an in-process
    :class:`labkit.live.server.SimServer` runs the profile and workload on a free loopback port (extra keyword
    arguments for it in ``server_options``). ``rollouts`` repeats the scenario sequentially (same seed)
    for more turns per comparison. ``pause_gc`` keeps Python's cyclic garbage collector off while the
    rollouts run (see :func:`labkit.util.gctools.paused_gc`): its pauses are the harness's, not the system's.
    """
    prof = resolve_profile(profile, transport, tps)
    check_transport_profile(transport, prof)
    wl = load_workload(workload)
    predicted, predictor = predict_spans(prof, wl, rollouts=rollouts)
    opts = {"keep_alive": prof.keep_alive, "scenario": prof.name, **runner_options}
    breakdown = None
    gc_guard = paused_gc() if pause_gc else contextlib.nullcontext()
    if base_url is not None:
        with gc_guard:
            results = await _measure(transport, wl, rollouts, base_url, api_key, opts)
    else:
        from labkit.live.server import SimServer

        async with SimServer(profile=prof, workload=wl, port=0, **(server_options or {})) as server:
            probe = ServerProbe(server)
            with gc_guard:
                results = await _measure(transport, wl, rollouts, server.base_url, api_key, opts)
        breakdown = probe.breakdown(results)
    measured = rollouts_spans(results)
    return Validation(
        profile=prof,
        workload=wl,
        transport=transport,
        predictor=predictor,
        predicted=predicted,
        measured=measured,
        turns=turn_errors(predicted, measured),
        results=results,
        breakdown=breakdown,
    )


async def _measure(
    transport: str, wl: Workload, rollouts: int, base_url: str, api_key: str | None, opts: dict[str, Any]
) -> list[RolloutResult]:
    runner = RolloutRunner(RolloutConfig.from_options(transport, base_url=base_url, api_key=api_key, **opts))
    results = []
    for r in progress(range(rollouts), desc=f"{transport} rollouts", unit="rollout"):
        # Every repetition uses the workload's own seed: the same scenario, so one prediction fits all.
        results.append(await runner.run(wl, seed=wl.seed, rollout=r))
    return results


__all__ = [
    "BREAKDOWN_COLUMNS",
    "DEFAULT_PROFILE",
    "TARGET_ABS_S",
    "TARGET_REL",
    "ServerProbe",
    "Validation",
    "ValidationSummary",
    "check_transport_profile",
    "error_summary",
    "predict_and_measure",
    "predict_spans",
    "resolve_profile",
    "turn_errors",
]
