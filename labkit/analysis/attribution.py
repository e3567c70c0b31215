"""Where a strategy's gain comes from: exact Shapley values over the mechanisms two profiles differ by.

A strategy is a set of mechanisms (:data:`labkit.model.profile.MECHANISMS`, each a group of :class:`Profile`
fields). Between a baseline and a candidate, the mechanisms whose fields differ are the players; the value of a
coalition is the closed-form end to end (or mean TTFT) of the baseline with that coalition's fields taken from
the candidate. A mechanism's share is its marginal gain averaged over every order of switching the mechanisms
on, so the shares add up to the total gain exactly, and interactions (incremental input is worth nothing until
the server holds the conversation) are split fairly instead of credited to whichever came first.

With n mechanisms this costs 2**n closed-form forecasts (128 for ``websocket`` against ``http_baseline``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.model.profile import OTHER, differing_mechanisms, mechanism
from labkit.sim.analytic import forecast

#: Above this many differing mechanisms the exact sum (2**n forecasts) is refused.
MAX_MECHANISMS = 14


@dataclass(frozen=True, slots=True)
class Attribution:
    """Each mechanism's share of the candidate's gain over the baseline (seconds; positive = faster)."""

    baseline: str
    candidate: str
    workload: str
    tps: float
    total_gain_s: float
    shares_s: dict[str, float]
    ttft_total_gain_s: float
    ttft_shares_s: dict[str, float]
    baseline_e2e_s: float
    baseline_ttft_mean_s: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def largest(self) -> str:
        """The mechanism with the largest end-to-end share."""
        if not self.shares_s:
            raise ValueError("shares_s: the profiles differ by no mechanism")
        return max(self.shares_s, key=lambda k: self.shares_s[k])

    def lines(self) -> list[str]:
        """The text form: one mechanism a line, seconds and share of the gain, end to end and TTFT."""
        out = [
            f"{self.candidate} vs {self.baseline} on {self.workload} at {self.tps:g} TPS: "
            f"end to end {self.total_gain_s:.2f} s faster ({_pct(self.total_gain_s, self.baseline_e2e_s)} of "
            f"{self.baseline_e2e_s:.2f} s), mean TTFT {self.ttft_total_gain_s * 1e3:.0f} ms faster",
            f"  {'mechanism':<38} {'end to end':>10} {'of gain':>8} {'mean TTFT':>10} {'of gain':>8}",
        ]
        for name, s in self.shares_s.items():
            t = self.ttft_shares_s[name]
            out.append(
                f"  {_label(name):<38} {s:9.2f}s {_pct(s, self.total_gain_s):>8} {t * 1e3:8.1f}ms "
                f"{_pct(t, self.ttft_total_gain_s):>8}"
            )
        out.append(
            f"  {'total':<38} {sum(self.shares_s.values()):9.2f}s {'':>8} "
            f"{sum(self.ttft_shares_s.values()) * 1e3:8.1f}ms"
        )
        return out


def _label(name: str) -> str:
    return "other parameters" if name == OTHER else mechanism(name).label


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def shapley(players: Sequence[str], value: Mapping[int, float]) -> dict[str, float]:
    """Exact Shapley values of ``players`` for a game given on every coalition (bit ``i`` = player ``i``).

    ``value[0]`` is the empty coalition; the values sum to ``value[full] - value[0]``.
    """
    n = len(players)
    weights = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    out = {}
    for i, name in enumerate(players):
        bit = 1 << i
        total = 0.0
        for s in range(1 << n):
            if s & bit:
                continue
            total += weights[s.bit_count()] * (value[s | bit] - value[s])
        out[name] = total
    return out


def _as_profile(p: str | Profile) -> Profile:
    return load_profile(p)


def attribute(
    candidate: str | Profile,
    baseline: str | Profile = "http_baseline",
    *,
    tps: float | None = None,
    workload: str | Workload = "codex_bugfix",
) -> Attribution:
    """Each differing mechanism's exact Shapley share of the candidate's end-to-end and mean-TTFT gain."""
    w = load_workload(workload)
    b, c = _as_profile(baseline), _as_profile(candidate)
    if tps is not None:
        b, c = b.with_(decode_tps=tps), c.with_(decode_tps=tps)
    groups = differing_mechanisms(b, c)
    players = list(groups)
    if len(players) > MAX_MECHANISMS:
        raise ValueError(
            f"candidate: differs from the baseline by {len(players)} mechanisms (at most {MAX_MECHANISMS})"
        )
    e2e: dict[int, float] = {}
    ttft: dict[int, float] = {}
    for s in range(1 << len(players)):
        changes = {f: getattr(c, f) for i, name in enumerate(players) if s >> i & 1 for f in groups[name]}
        fc = forecast(b.with_(**changes), w)
        # Gains are reductions, so the game's value is the time saved against the baseline.
        e2e[s], ttft[s] = fc.e2e_s, fc.ttft_mean_s
    full = (1 << len(players)) - 1
    neg_e2e = {k: -v for k, v in e2e.items()}
    neg_ttft = {k: -v for k, v in ttft.items()}
    return Attribution(
        baseline=b.name,
        candidate=c.name,
        workload=w.name,
        tps=c.decode_tps,
        total_gain_s=e2e[0] - e2e[full],
        shares_s=shapley(players, neg_e2e),
        ttft_total_gain_s=ttft[0] - ttft[full],
        ttft_shares_s=shapley(players, neg_ttft),
        baseline_e2e_s=e2e[0],
        baseline_ttft_mean_s=ttft[0],
    )


def attribution_over_tps(
    candidate: str | Profile,
    tps: Sequence[float],
    baseline: str | Profile = "http_baseline",
    workload: str | Workload = "codex_bugfix",
) -> pd.DataFrame:
    """Rows ``tps, mechanism, label, share_s, share_of_baseline`` (the share as a fraction of the baseline's end
    to end at that speed): the input of :func:`labkit.viz.gain_by_mechanism`."""
    rows = []
    for t in tps:
        a = attribute(candidate, baseline, tps=float(t), workload=workload)
        for name, s in a.shares_s.items():
            rows.append(
                {
                    "tps": float(t),
                    "candidate": a.candidate,
                    "mechanism": name,
                    "label": _label(name),
                    "share_s": s,
                    "share_of_baseline": s / a.baseline_e2e_s,
                    "total_gain_s": a.total_gain_s,
                    "baseline_e2e_s": a.baseline_e2e_s,
                }
            )
    return pd.DataFrame(rows)


def gap_to_ideal(
    presets: Sequence[str | Profile],
    *,
    baseline: str | Profile = "http_baseline",
    ideal: str | Profile = "ideal",
    tps: float = 1000.0,
    workload: str | Workload = "codex_bugfix",
) -> pd.DataFrame:
    """Per preset: its end to end, its gain over the baseline and the share of the baseline-to-ideal gap it
    closes (``gap_closed``: 0 = the baseline, 1 = the lower bound)."""
    w = load_workload(workload)
    fb = forecast(_as_profile(baseline).with_(decode_tps=tps), w)
    fi = forecast(_as_profile(ideal).with_(decode_tps=tps), w)
    gap = fb.e2e_s - fi.e2e_s
    if gap <= 0:
        raise ValueError("ideal: is not faster than the baseline, so there is no gap to close")
    rows = []
    for p in presets:
        f = forecast(_as_profile(p).with_(decode_tps=tps), w)
        rows.append(
            {
                "scenario": f.profile,
                "tps": tps,
                "workload": w.name,
                "e2e_s": f.e2e_s,
                "gain_s": fb.e2e_s - f.e2e_s,
                "gap_s": gap,
                "gap_closed": (fb.e2e_s - f.e2e_s) / gap,
                "baseline_e2e_s": fb.e2e_s,
                "ideal_e2e_s": fi.e2e_s,
            }
        )
    return pd.DataFrame(rows)


def kept_share(
    candidate: str | Profile = "websocket",
    reference: str | Profile = "websocket_prototype",
    *,
    baseline: str | Profile = "http_baseline",
    tps: float = 1000.0,
    workload: str | Workload = "codex_bugfix",
) -> float:
    """The fraction of ``reference``'s end-to-end gain over the baseline that ``candidate`` keeps."""
    df = gap_to_ideal([candidate], baseline=baseline, ideal=reference, tps=tps, workload=workload)
    return float(df["gap_closed"].iloc[0])


__all__ = [
    "MAX_MECHANISMS",
    "Attribution",
    "attribute",
    "attribution_over_tps",
    "gap_to_ideal",
    "kept_share",
    "shapley",
]
