"""An M/M/c queue on the fleet model's own :class:`~labkit.sim.des.Pool`, to validate it against Erlang C."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import simpy

from labkit.sim.des import Pool


@dataclass(frozen=True)
class QueueRun:
    mean_wait_s: float
    mean_sojourn_s: float
    time_average_in_system: float
    arrival_rate: float
    customers: int


def simulate_mmc(
    lam: float, mu: float, c: int, customers: int = 20_000, seed: int = 0, warmup: int = 2_000
) -> QueueRun:
    """Poisson arrivals (rate ``lam``), exponential service (rate ``mu``), ``c`` servers of one ``Pool``.

    The first ``warmup`` customers are dropped from the wait averages (initialisation bias); the pool's own
    occupancy integral covers the whole run, with the arrival rate and sojourns measured over the same span,
    so Little's law L = lambda * W can be checked on it.
    """
    for name, v in (("lam", lam), ("mu", mu)):
        if not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name}: must be > 0, got {v!r}")
    if not isinstance(c, int) or c < 1:
        raise ValueError(f"c: must be an integer >= 1, got {c!r}")
    if customers <= warmup:
        raise ValueError("customers: must exceed warmup")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, customers)
    services = rng.exponential(1 / mu, customers)
    env = simpy.Environment()
    pool = Pool(env, c)
    waits = np.zeros(customers)
    sojourns = np.zeros(customers)

    def customer(i: int) -> Generator[simpy.Event, None, None]:
        t0 = env.now
        req = pool.enter()
        if req is not None:  # no server free: wait to be handed one
            yield req
        waits[i] = env.now - t0
        yield env.timeout(services[i])
        pool.leave()
        sojourns[i] = env.now - t0

    def source() -> Generator[simpy.Event, None, None]:
        for i in range(customers):
            yield env.timeout(gaps[i])
            env.process(customer(i))

    env.process(source())
    env.run()
    until = env.now
    return QueueRun(
        mean_wait_s=float(waits[warmup:].mean()),
        mean_sojourn_s=float(sojourns.mean()),
        time_average_in_system=pool.time_average(until),
        arrival_rate=customers / until,
        customers=customers,
    )
