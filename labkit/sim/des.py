"""The SimPy discrete-event model of agent rollouts.

Each agent is a SimPy process that runs rollouts turn by turn: it asks :func:`labkit.model.plan_turn`
for the stages of its request (with the cache state its connection, replica and store give it), holds an
API worker of its replica through the pre-inference stages, an inference slot through queue/prefill/decode,
the API worker again through post-processing, then runs its tool. Without finite resources the stages of a
phase are laid out arithmetically and one timeout covers the phase: processes only interact at resource
boundaries, so extra events would cost time without changing a single span.

Randomness uses common random numbers: every (seed, rollout) gets its own stream, drawn in a fixed layout
(per turn: one multiplier per stage, then the drop and eviction draws), so two transports compared with the
same seed see the same tool times, token counts, jitter and faults.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from labkit.model import STAGES, CacheState, Profile, TurnSpec, Workload, plan_turn
from labkit.model.spans import SpanColumns
from labkit.sim.analytic import cache_state
from labkit.util.gctools import paused_gc

_N_STAGES = len(STAGES)
_PRE = frozenset({"connect", "upload", "validate", "load_state", "render", "config", "safety_in", "hops"})
_INFERENCE = frozenset({"queue", "prefill", "reasoning", "download", "decode"})
# Column layout of the per-turn random draws (common random numbers across compared transports).
_COL_DROP = _N_STAGES
_COL_DROP_AT = _N_STAGES + 1
_COL_EVICT = _N_STAGES + 2
_COL_REPLICA = _N_STAGES + 3
_N_DRAWS = _N_STAGES + 4
#: Multipliers are clamped so one draw never stretches or shrinks a stage absurdly (as llm-d-inference-sim).
JITTER_CLAMP = (0.3, 3.0)


@dataclass(frozen=True)
class Faults:
    """Per-turn fault probabilities, drawn from the rollout's own random stream."""

    #: The connection drops while the request is in flight; the client reconnects and re-sends.
    drop_rate: float = 0.0
    #: The server no longer holds the parent (``previous_response_not_found``): a full-context fallback.
    evict_rate: float = 0.0
    #: The server closes a connection older than this (WebSocket mode's 60-minute limit).
    connection_limit_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("drop_rate", "evict_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}: must be within [0, 1], got {v!r}")
        if not self.connection_limit_s > 0:
            raise ValueError(f"connection_limit_s: must be > 0, got {self.connection_limit_s!r}")


@dataclass(frozen=True)
class Fleet:
    """Shared finite resources. ``None`` means unlimited (no queueing beyond the profile's ``queue_s``)."""

    #: Concurrent requests one API replica works on (pre- and post-inference stages).
    api_workers: int | None = None
    #: Concurrent requests the inference fleet serves (queue..decode).
    inference_slots: int | None = None

    def __post_init__(self) -> None:
        for name in ("api_workers", "inference_slots"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: must be an integer >= 1 or None, got {v!r}")


class Pool:
    """A ``simpy.Resource`` that also integrates the number of requests in it (waiting + served) over time.

    The integral gives the time-average number in system L independently of the spans, so Little's law
    (L = lambda * W) can be checked against sojourn times measured from the spans.
    """

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.resource = simpy.Resource(env, capacity)
        self.in_system = 0
        self._last_t = 0.0
        self.area = 0.0
        self.arrivals = 0

    def _tick(self, delta: int) -> None:
        now = self.env.now
        self.area += self.in_system * (now - self._last_t)
        self._last_t = now
        self.in_system += delta

    def enter(self) -> simpy.Event:
        self._tick(+1)
        self.arrivals += 1
        return self.resource.request()

    def leave(self, req: simpy.Event) -> None:
        self.resource.release(req)
        self._tick(-1)

    def time_average(self, until: float) -> float:
        return (self.area + self.in_system * (until - self._last_t)) / until if until > 0 else 0.0


def _rollout_specs(workload: Workload, seed: int, rollout: int) -> tuple[TurnSpec, ...]:
    return workload.turn_specs(seed * 1_000_003 + rollout + workload.seed)


def _draws(seed: int, rollout: int, turns: int, jitter: float) -> np.ndarray:
    """Per-turn random draws: clamped mean-one lognormal stage multipliers, then uniforms for the faults.

    The layout is fixed whatever ``jitter`` is, so the same (seed, rollout) gives the same fault draws
    with and without jitter, and every transport sees the same multiplier for the same stage.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, rollout, 0x51D]))
    z = rng.standard_normal((turns, _N_STAGES))
    u = rng.random((turns, _N_DRAWS - _N_STAGES))
    mult = np.clip(np.exp(jitter * z - jitter**2 / 2), *JITTER_CLAMP) if jitter > 0 else np.ones_like(z)
    return np.hstack([mult, u])


class _Run:
    """One simulation: environment, shared pools, parameters and the span buffer."""

    def __init__(
        self,
        profile: Profile,
        workload: Workload,
        *,
        seed: int,
        jitter: float,
        faults: Faults,
        fleet: Fleet,
        scenario: str,
        source: str,
    ) -> None:
        self.env = simpy.Environment()
        self.profile = profile
        self.workload = workload
        self.seed = seed
        self.jitter = jitter
        self.faults = faults
        self.scenario = scenario
        self.source = source
        self.spans = SpanColumns()
        self.api = [Pool(self.env, fleet.api_workers) for _ in range(profile.replicas)] if fleet.api_workers else None
        self.inference = Pool(self.env, fleet.inference_slots) if fleet.inference_slots else None
        self.persistent = profile.transport == "websocket" or profile.keep_alive

    # -- recording ---------------------------------------------------------------------------------

    def _lay_out(self, stages, mult, start: float, rollout: int, turn: int, attempt: int, upto: float = math.inf):
        """Record ``stages`` back to back from ``start`` (cut at ``upto``); returns the end time."""
        t = start
        append = self.spans.rows.append
        src, scen = self.source, self.scenario
        for name, duration, tokens, nbytes, hit in stages:
            d = duration * mult[_STAGE_COL[name]]
            if d <= 0.0 and name != "decode" and name != "prefill":
                continue
            end = t + d
            if end >= upto:  # the connection dropped inside this stage
                append((src, scen, rollout, turn, name, t, upto, tokens, nbytes, hit, attempt))
                return upto
            append((src, scen, rollout, turn, name, t, end, tokens, nbytes, hit, attempt))
            t = end
        return t

    # -- processes ---------------------------------------------------------------------------------

    def agent(self, rollouts: list[int], start_delay: float = 0.0) -> Generator[simpy.Event, None, None]:
        if start_delay > 0:
            yield self.env.timeout(start_delay)
        for rollout in rollouts:
            yield from self.rollout(rollout)

    def rollout(self, rollout: int) -> Generator[simpy.Event, None, None]:
        env = self.env
        p = self.profile
        specs = _rollout_specs(self.workload, self.seed, rollout)
        # Python floats: numpy scalar arithmetic in the per-stage loop costs more than the rest of it.
        draws = _draws(self.seed, rollout, len(specs), self.jitter).tolist()
        replicas = p.replicas
        # The replica that holds this conversation's replica-local caches (none before the first turn).
        holder = -1
        connected_at = -math.inf
        connected = False
        sticky_replica = rollout % replicas
        conn_replica = sticky_replica
        for spec in specs:
            d = draws[spec.index]
            mult = d
            attempt = 0
            # WebSocket mode's lifetime limit: the server closed the socket after the last response.
            if connected and env.now - connected_at >= self.faults.connection_limit_s:
                connected = False
            fresh = not connected
            while True:
                if p.transport == "websocket":
                    if fresh:
                        conn_replica = int(d[_COL_REPLICA] * replicas) if p.routing == "random" else sticky_replica
                    replica = conn_replica
                else:
                    replica = int(d[_COL_REPLICA] * replicas) if p.routing == "random" else sticky_replica
                    if attempt:
                        # A retry is a new request: route it again with a fresh draw from the same stream.
                        replica = (replica + attempt) % replicas if p.routing == "random" else replica
                # A retry on turn 0 always follows a drop (nothing is cached to evict yet), so `fresh`
                # says all that the attempt number would.
                cache = cache_state(p, spec, replica_hit=(replica == holder), reconnected=fresh)
                evicted = attempt == 0 and cache.connection_cache_hit and d[_COL_EVICT] < self.faults.evict_rate
                dropped = attempt == 0 and not evicted and d[_COL_DROP] < self.faults.drop_rate
                plan = plan_turn(p, spec, cache)
                if fresh:
                    connected_at = env.now
                if evicted:
                    # previous_response_not_found arrives after the server looked the parent up: the client
                    # lost the upload and validation, then re-sends the full history on the same socket.
                    cut = [s for s in plan if s.name in ("connect", "upload", "validate")]
                    end = self._lay_out(cut, mult, env.now, rollout, spec.index, attempt)
                    yield env.timeout(end - env.now)
                    attempt += 1
                    fresh = False
                    holder = -1
                    # Re-plan with the cache gone (the connection stays open).
                    connected = True
                    plan = plan_turn(p, spec, CacheState(True, False, False))
                    yield from self._serve(plan, mult, rollout, spec, attempt, replica)
                    holder = replica
                    break
                if dropped:
                    total = sum(s.duration_s * mult[_STAGE_COL[s.name]] for s in plan)
                    cut_at = env.now + d[_COL_DROP_AT] * total
                    end = self._lay_out(plan, mult, env.now, rollout, spec.index, attempt, upto=cut_at)
                    yield env.timeout(end - env.now)
                    attempt += 1
                    fresh = True
                    connected = False
                    if p.transport == "websocket":
                        holder = -1  # the connection-scoped cache died with the socket
                    continue
                yield from self._serve(plan, mult, rollout, spec, attempt, replica)
                connected = self.persistent
                holder = replica
                break
            if not spec.final and spec.tool_s > 0:
                t = env.now
                self.spans.add(self.source, self.scenario, rollout, spec.index, "tool", t, t + spec.tool_s)
                yield env.timeout(spec.tool_s)

    def _serve(self, plan, mult, rollout: int, spec: TurnSpec, attempt: int, replica: int):
        """Run one request's stages, holding shared resources where the fleet has them."""
        env = self.env
        if self.api is None and self.inference is None:
            end = self._lay_out(plan, mult, env.now, rollout, spec.index, attempt)
            yield env.timeout(end - env.now)
            return
        pre = [s for s in plan if s.name in _PRE]
        inf = [s for s in plan if s.name in _INFERENCE]
        post = [s for s in plan if s.name not in _PRE and s.name not in _INFERENCE]
        yield from self._phase(self.api[replica] if self.api else None, "api_queue", pre, mult, rollout, spec, attempt)
        yield from self._phase(self.inference, "queue", inf, mult, rollout, spec, attempt)
        yield from self._phase(self.api[replica] if self.api else None, "api_queue", post, mult, rollout, spec, attempt)

    def _phase(self, pool: Pool | None, wait_stage: str, stages, mult, rollout, spec, attempt):
        env = self.env
        if pool is None:
            end = self._lay_out(stages, mult, env.now, rollout, spec.index, attempt)
            yield env.timeout(end - env.now)
            return
        t0 = env.now
        req = pool.enter()
        yield req
        if env.now > t0:
            self.spans.add(
                self.source, self.scenario, rollout, spec.index, wait_stage, t0, env.now, 0, 0, False, attempt
            )
        end = self._lay_out(stages, mult, env.now, rollout, spec.index, attempt)
        yield env.timeout(end - env.now)
        pool.leave(req)


_STAGE_COL = {name: i for i, name in enumerate(STAGES)}


@dataclass
class SimResult:
    """The spans of a run plus the pools' own occupancy integrals (for Little's law)."""

    spans: pd.DataFrame
    until: float
    inference_time_average: float | None
    inference_arrivals: int | None


def run(
    profile: Profile,
    workload: Workload,
    *,
    rollouts: int = 1,
    agents: int | None = None,
    seed: int = 0,
    jitter: float = 0.0,
    faults: Faults | None = None,
    fleet: Fleet | None = None,
    stagger_s: float = 0.0,
    scenario: str | None = None,
    source: str = "sim",
    as_frame: bool = True,
) -> SimResult | SpanColumns:
    """Simulate ``rollouts`` rollouts run by ``agents`` concurrent agents (default: all at once).

    Agent ``i`` runs rollouts ``i, i + agents, ...`` back to back (a closed system) and starts after
    ``i * stagger_s``. Returns a :class:`SimResult`, or the raw :class:`SpanColumns` with ``as_frame=False``.
    """
    if not isinstance(rollouts, int) or rollouts < 1:
        raise ValueError(f"rollouts: must be an integer >= 1, got {rollouts!r}")
    agents = rollouts if agents is None else agents
    if not isinstance(agents, int) or agents < 1:
        raise ValueError(f"agents: must be an integer >= 1, got {agents!r}")
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise ValueError(f"jitter: must be >= 0, got {jitter!r}")
    if stagger_s < 0:
        raise ValueError(f"stagger_s: must be >= 0, got {stagger_s!r}")
    sim = _Run(
        profile,
        workload,
        seed=seed,
        jitter=jitter,
        faults=faults or Faults(),
        fleet=fleet or Fleet(),
        scenario=scenario or profile.name,
        source=source,
    )
    for i in range(min(agents, rollouts)):
        sim.env.process(sim.agent(list(range(i, rollouts, agents)), i * stagger_s))
    with paused_gc(collect=False):
        sim.env.run()
    if not as_frame:
        return sim.spans
    until = sim.env.now
    pool = sim.inference
    return SimResult(
        spans=sim.spans.frame(),
        until=until,
        inference_time_average=pool.time_average(until) if pool else None,
        inference_arrivals=pool.arrivals if pool else None,
    )


def simulate(profile: Profile, workload: Workload, **kwargs) -> pd.DataFrame:
    """Spans of simulated rollouts (see :func:`run` for the keyword arguments)."""
    result = run(profile, workload, **kwargs)
    assert isinstance(result, SimResult)
    return result.spans
