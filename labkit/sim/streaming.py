"""Fleet metrics without spans: what the fleet figures need, aggregated while the DES runs.

A span table grows with every stage of every turn (about a dozen rows a turn); at tens of thousands of agents
that is millions of rows. :class:`StreamRecorder` keeps instead:

- the end to end of every rollout (exact, one float per rollout: memory grows with agents, not spans);
- TTFT and queue waits (API workers, inference slots) in log-binned histograms with a relative bin width of
  0.1% (fixed memory; quantiles within 0.05% of the exact ones; means, sums and counts exact);
- the pools' occupancy integrals (utilisation) and each replica's cache bytes on a time grid (peak exact).

:class:`FleetMetrics` is the frozen result; results of independent shards (replicas) merge with
:func:`merge`, in shard order, so a merged result does not depend on where each shard ran.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Histogram range and resolution (seconds): values below ``LO`` count in the first bin, above ``HI`` in the last.
LO, HI, RATIO = 1e-6, 1e5, 1.001
_LOG_LO = math.log(LO)
_INV_LOG_R = 1.0 / math.log(RATIO)
N_BINS = math.ceil(math.log(HI / LO) * _INV_LOG_R) + 1
_FLUSH = 1 << 16


class LogHistogram:
    """Counts of positive values in geometric bins, plus an exact count of zeros, sum and count.

    Values are buffered and binned in batches with numpy (a Python ``log`` per value would cost more than
    the simulation step that produced it); the buffer is bounded. A caller adding values on a hot path may call
    :attr:`append` (the buffer's own, no Python frame) and :meth:`bound` now and then instead of :meth:`add`.
    """

    __slots__ = ("_buf", "append", "counts", "maximum", "n", "total", "zeros")

    def __init__(self) -> None:
        self._buf: list[float] = []
        self.append = self._buf.append
        self.counts = np.zeros(N_BINS, dtype=np.int64)
        self.total = 0.0
        self.zeros = 0
        self.n = 0
        self.maximum = 0.0

    def add(self, x: float) -> None:
        self.append(x)
        if len(self._buf) >= _FLUSH:
            self.flush()

    def bound(self) -> None:
        """Bin the buffered values if there are many (after values came in through :attr:`append`)."""
        if len(self._buf) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        v = np.asarray(self._buf, dtype=np.float64)
        self._buf.clear()  # the same list: ``append`` stays bound to it
        self.n += len(v)
        self.total += float(v.sum())
        self.maximum = max(self.maximum, float(v.max()))
        pos = v[v > 0]
        self.zeros += len(v) - len(pos)
        idx = np.clip(((np.log(pos) - _LOG_LO) * _INV_LOG_R).astype(np.int64), 0, N_BINS - 1)
        self.counts += np.bincount(idx, minlength=N_BINS)

    def frozen(self) -> Histogram:
        self.flush()
        nz = np.flatnonzero(self.counts)
        return Histogram(
            bins=tuple(int(i) for i in nz),
            counts=tuple(int(c) for c in self.counts[nz]),
            zeros=self.zeros,
            n=self.n,
            total=self.total,
            maximum=self.maximum,
        )


@dataclass(frozen=True)
class Histogram:
    """A frozen, sparse :class:`LogHistogram` (only non-empty bins)."""

    bins: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()
    zeros: int = 0
    n: int = 0
    total: float = 0.0
    maximum: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (linear interpolation between ranks, as numpy's default), from bin centres."""
        if not 0 <= q <= 1:
            raise ValueError(f"q: must be within [0, 1], got {q!r}")
        if not self.n:
            return math.nan
        h = (self.n - 1) * q
        lo, hi = math.floor(h), math.ceil(h)
        a, b = self._rank(lo), self._rank(hi)
        return a + (b - a) * (h - lo)

    def _rank(self, k: int) -> float:
        if k < self.zeros:
            return 0.0
        cum = np.cumsum(self.counts) + self.zeros
        i = int(np.searchsorted(cum, k, side="right"))
        b = self.bins[min(i, len(self.bins) - 1)]
        # Geometric centre of bin b: [LO * r^b, LO * r^(b+1)).
        return min(math.exp(_LOG_LO + (b + 0.5) / _INV_LOG_R), self.maximum)

    def merged(self, other: Histogram) -> Histogram:
        acc: dict[int, int] = dict(zip(self.bins, self.counts, strict=True))
        for b, c in zip(other.bins, other.counts, strict=True):
            acc[b] = acc.get(b, 0) + c
        keys = sorted(acc)
        return Histogram(
            bins=tuple(keys),
            counts=tuple(acc[k] for k in keys),
            zeros=self.zeros + other.zeros,
            n=self.n + other.n,
            total=self.total + other.total,
            maximum=max(self.maximum, other.maximum),
        )

    def summary(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_mean_s": self.mean,
            f"{prefix}_p50_s": self.quantile(0.5),
            f"{prefix}_p95_s": self.quantile(0.95),
            f"{prefix}_p99_s": self.quantile(0.99),
            f"{prefix}_max_s": self.maximum if self.n else math.nan,
        }


class ByteSeries:
    """One replica's cache bytes: a value sampled every ``sample_s`` seconds, the exact peak and integral."""

    __slots__ = ("_last_t", "_next", "area", "peak", "sample_s", "samples", "value")

    def __init__(self, sample_s: float) -> None:
        self.sample_s = sample_s
        self.samples: list[int] = []
        self._next = 0.0
        self.value = 0
        self.peak = 0
        self.area = 0.0
        self._last_t = 0.0

    def set(self, t: float, value: int) -> None:
        """The bytes held changed to ``value`` at time ``t`` (times never go backwards)."""
        while self._next <= t:
            self.samples.append(self.value)
            self._next += self.sample_s
        self.area += self.value * (t - self._last_t)
        self._last_t = t
        self.value = value
        if value > self.peak:
            self.peak = value

    def close(self, until: float) -> None:
        self.set(until, self.value)


@dataclass(frozen=True, eq=False)
class FleetMetrics:
    """Fleet metrics of one run or of merged shards (see the module docstring)."""

    agents: int
    rollouts: int
    turns: int
    #: Requests sent, attempts included; ``fallbacks`` are the attempts beyond each turn's first.
    requests: int
    fallbacks: int
    until_s: float
    #: End to end of every rollout, in rollout order (shard by shard when merged).
    e2e_s: np.ndarray
    ttft: Histogram
    api_wait: Histogram
    inference_wait: Histogram
    #: Per pool (API pools per replica; inference): time-average share of servers busy, and time-average
    #: requests in system (waiting + served, for Little's law).
    api_busy: tuple[float, ...] = ()
    inference_busy: tuple[float, ...] = ()
    api_in_system: tuple[float, ...] = ()
    inference_in_system: tuple[float, ...] = ()
    api_workers: int | None = None
    inference_slots: int | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    cache_evictions: int = 0
    cache_expirations: int = 0
    #: Per replica: peak bytes, time-average bytes, and bytes every ``sample_s`` seconds.
    cache_peak_bytes: tuple[int, ...] = ()
    cache_mean_bytes: tuple[float, ...] = ()
    cache_series: tuple[tuple[int, ...], ...] = ()
    sample_s: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def e2e_quantile(self, q: float) -> float:
        return float(np.quantile(self.e2e_s, q)) if len(self.e2e_s) else math.nan

    @property
    def hit_rate(self) -> float:
        looked = self.cache_hits + self.cache_misses
        return self.cache_hits / looked if looked else math.nan

    def cache_bytes_over_time(self) -> np.ndarray:
        """Total cache bytes of all replicas at ``0, sample_s, 2 sample_s, ...``."""
        if not self.cache_series:
            return np.zeros(0, dtype=np.int64)
        n = max(len(s) for s in self.cache_series)
        out = np.zeros(n, dtype=np.int64)
        for s in self.cache_series:
            out[: len(s)] += np.asarray(s, dtype=np.int64)
            if len(s) < n and s:  # a replica that finished early holds its last value
                out[len(s) :] += s[-1]
        return out

    def utilisation(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.api_busy:
            out["api_utilisation"] = float(np.mean(self.api_busy))
            out["api_in_system"] = float(np.mean(self.api_in_system))
        if self.inference_busy:
            out["inference_utilisation"] = float(np.mean(self.inference_busy))
            out["inference_in_system"] = float(np.mean(self.inference_in_system))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Scalars only (quantiles, means, counts), JSON-ready."""
        d: dict[str, Any] = {
            "agents": self.agents,
            "rollouts": self.rollouts,
            "turns": self.turns,
            "requests": self.requests,
            "fallbacks": self.fallbacks,
            "until_s": self.until_s,
            "e2e_mean_s": float(np.mean(self.e2e_s)) if len(self.e2e_s) else math.nan,
            "e2e_p50_s": self.e2e_quantile(0.5),
            "e2e_p95_s": self.e2e_quantile(0.95),
            "e2e_p99_s": self.e2e_quantile(0.99),
            **self.ttft.summary("ttft"),
            **self.api_wait.summary("api_wait"),
            **self.inference_wait.summary("inference_wait"),
            **self.utilisation(),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_rate": self.hit_rate,
            "cache_evictions": self.cache_evictions,
            "cache_expirations": self.cache_expirations,
            "cache_peak_bytes_per_replica": max(self.cache_peak_bytes) if self.cache_peak_bytes else 0,
            "cache_peak_bytes_total": int(self.cache_bytes_over_time().max()) if self.cache_series else 0,
            "cache_mean_bytes_per_replica": float(np.mean(self.cache_mean_bytes)) if self.cache_mean_bytes else 0.0,
        }
        d.update(self.extra)
        return d


def merge(parts: Sequence[FleetMetrics]) -> FleetMetrics:
    """Independent shards (replicas) as one fleet, in the given order."""
    if not parts:
        raise ValueError("parts: nothing to merge")
    first = parts[0]
    ttft, api, inf = first.ttft, first.api_wait, first.inference_wait
    for p in parts[1:]:
        ttft, api, inf = ttft.merged(p.ttft), api.merged(p.api_wait), inf.merged(p.inference_wait)
    return FleetMetrics(
        agents=sum(p.agents for p in parts),
        rollouts=sum(p.rollouts for p in parts),
        turns=sum(p.turns for p in parts),
        requests=sum(p.requests for p in parts),
        fallbacks=sum(p.fallbacks for p in parts),
        until_s=max(p.until_s for p in parts),
        e2e_s=np.concatenate([p.e2e_s for p in parts]),
        ttft=ttft,
        api_wait=api,
        inference_wait=inf,
        api_busy=tuple(x for p in parts for x in p.api_busy),
        inference_busy=tuple(x for p in parts for x in p.inference_busy),
        api_in_system=tuple(x for p in parts for x in p.api_in_system),
        inference_in_system=tuple(x for p in parts for x in p.inference_in_system),
        api_workers=first.api_workers,
        inference_slots=first.inference_slots,
        cache_hits=sum(p.cache_hits for p in parts),
        cache_misses=sum(p.cache_misses for p in parts),
        cache_evictions=sum(p.cache_evictions for p in parts),
        cache_expirations=sum(p.cache_expirations for p in parts),
        cache_peak_bytes=tuple(x for p in parts for x in p.cache_peak_bytes),
        cache_mean_bytes=tuple(x for p in parts for x in p.cache_mean_bytes),
        cache_series=tuple(s for p in parts for s in p.cache_series),
        sample_s=first.sample_s,
    )
