"""Where the bottleneck moves: the decode speed at which API overhead equals inference time.

One crossover for all of labkit: the root, in log decode speed, of (API service + network) - inference on
the closed form. Overhead does not depend on the decode rate and inference falls with it, so the root is
unique; bisection finds it to a relative 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.calibrate import bisect
from labkit.model import Profile, Workload, load_profile, load_workload
from labkit.sim.analytic import forecast


def crossover_tps(
    profile: str | Profile = "http_baseline", workload: str | Workload = "codex_bugfix", **overrides: Any
) -> float:
    """The decode rate (tokens/s) at which the rollout's API overhead (service + network) equals inference."""
    p = load_profile(profile, **overrides)
    w = load_workload(workload)

    def gap(log_tps: float) -> float:
        f = forecast(p.with_(decode_tps=math.exp(log_tps)), w)
        return (f.api_s + f.network_s) - f.inference_s

    return math.exp(bisect(gap, math.log(1.0), math.log(1e6), tol=1e-9))


def crossover_table(profiles: Iterable[str | Profile], workload: str | Workload) -> pd.DataFrame:
    """Per profile: the decode speed at which API + network overhead equals inference time."""
    rows = [
        {"profile": p if isinstance(p, str) else p.name, "crossover_tps": crossover_tps(p, workload)} for p in profiles
    ]
    return pd.DataFrame(rows).set_index("profile")


def tps_grid(lo: float = 20.0, hi: float = 4000.0, points: int = 25) -> np.ndarray:
    """Log-spaced decode speeds (tokens/s) from ``lo`` to ``hi`` inclusive."""
    if not (0 < lo < hi):
        raise ValueError(f"lo: need 0 < lo < hi, got lo={lo!r}, hi={hi!r}")
    if points < 2:
        raise ValueError(f"points: must be >= 2, got {points!r}")
    return np.geomspace(lo, hi, int(points))
