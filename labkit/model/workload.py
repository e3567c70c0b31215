"""A :class:`Workload`: an agent rollout's shape, and the seeded :class:`TurnSpec` of each model call."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from labkit.model.profile import _check, _replace

_new = tuple.__new__


class TurnSpec(NamedTuple):
    """One model call of a rollout, as the latency model needs it."""

    # Shadows tuple.index on purpose: the turn's position is what every consumer reads as ``spec.index``.
    index: int  # type: ignore[assignment]
    #: Tokens of conversation that precede this request (instructions, earlier items, earlier outputs).
    context_tokens: int
    #: Tokens of the items this request adds (the user task on turn 0, a tool output afterwards).
    new_input_tokens: int
    #: Tokens the model generates in this turn (function-call arguments or the final message).
    output_tokens: int
    #: Client-side tool time after this turn (0 for the final turn).
    tool_s: float
    #: The last turn answers with a message instead of calling a tool.
    final: bool
    #: Reasoning tokens the model decodes before its first visible output delta (billed as output).
    reasoning_tokens: int = 0
    #: Tool calls this turn issues in one response and the client runs in parallel (0 on the final turn);
    #: ``tool_s`` is the longest of them, ``new_input_tokens`` of the next turn the sum of their outputs.
    tool_calls: int = 1
    #: The user steered this response mid-stream: it ended after ``output_tokens`` (the rest was never
    #: decoded) and its successor starts at once with the steering input, without a tool call.
    steered: bool = False

    @property
    def conversation_tokens(self) -> int:
        return self.context_tokens + self.new_input_tokens


@dataclass(frozen=True, slots=True)
class Workload:
    """An agent rollout: ``turns`` model calls, each but the last followed by a client-side tool call."""

    name: str
    turns: int = 25
    #: Instructions, tool definitions and the task: the first request's input.
    initial_context_tokens: int = 12_000
    #: Tokens a tool output adds to the conversation (the next request's new input), mean.
    tool_output_tokens: int = 900
    #: Tokens generated per tool-calling turn, mean; and for the final answer.
    output_tokens: int = 300
    final_output_tokens: int = 600
    #: Relative spread (lognormal sigma) of token counts; 0 makes them exact.
    token_sigma: float = 0.3
    #: Tool time: lognormal with this median and sigma, capped at ``tool_time_max_s``.
    tool_time_median_s: float = 0.2
    tool_time_sigma: float = 0.8
    tool_time_max_s: float = 30.0
    #: Reasoning tokens per model call, mean (0: a model without reasoning, as the presets of the first
    #: version). Decoded before the first visible delta, so they count in TTFT.
    reasoning_tokens: int = 0
    #: Tool calls per tool-calling turn, mean (1: one call a turn). A turn issues 1 + Poisson(mean - 1) calls
    #: in one response; the client runs them in parallel, so the turn waits for the longest.
    parallel_tool_calls: float = 1.0
    #: Share of tool-calling turns the user steers (``response.steer``) while they stream, and how far into
    #: the output the steering arrives (a fraction of the output tokens). Steering saves the rest of the output.
    steer_rate: float = 0.0
    steer_at: float = 0.5
    seed: int = 0
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check(isinstance(self.turns, int) and self.turns >= 1, "turns", f"must be an integer >= 1, got {self.turns!r}")
        for name in ("initial_context_tokens", "tool_output_tokens", "output_tokens", "final_output_tokens"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 0, name, f"must be an integer >= 0, got {v!r}")
        _check(self.output_tokens >= 1 and self.final_output_tokens >= 1, "output_tokens", "must be >= 1")
        for name in ("token_sigma", "tool_time_median_s", "tool_time_sigma", "tool_time_max_s"):
            v = getattr(self, name)
            _check(isinstance(v, int | float) and not math.isnan(v) and v >= 0, name, f"must be >= 0, got {v!r}")
        _check(
            isinstance(self.reasoning_tokens, int) and self.reasoning_tokens >= 0,
            "reasoning_tokens",
            f"must be an integer >= 0, got {self.reasoning_tokens!r}",
        )
        ptc = self.parallel_tool_calls
        _check(
            isinstance(ptc, int | float) and math.isfinite(ptc) and ptc >= 1,
            "parallel_tool_calls",
            f"must be a number >= 1, got {ptc!r}",
        )
        for name in ("steer_rate", "steer_at"):
            v = getattr(self, name)
            _check(isinstance(v, int | float) and 0 <= v <= 1, name, f"must be within [0, 1], got {v!r}")

    def with_(self, **changes: Any) -> Workload:
        return _replace(self, changes)

    @property
    def tool_calls(self) -> int:
        return self.turns - 1

    def turn_specs(self, seed: int | None = None) -> tuple[TurnSpec, ...]:
        """The rollout's turns, deterministic for ``seed`` (default: the workload's own)."""
        return _turn_specs(self, self.seed if seed is None else seed)

    def mean_tool_time_s(self) -> float:
        """Expected tool time per call (lognormal mean, ignoring the cap)."""
        return self.tool_time_median_s * math.exp(self.tool_time_sigma**2 / 2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Bounded: the DES asks for one seed per simulated rollout, so an unbounded cache would grow with every run.
@lru_cache(maxsize=4096)
def _turn_specs(w: Workload, seed: int) -> tuple[TurnSpec, ...]:
    # default_rng's own construction, without its argument dispatch (the DES makes one per rollout).
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0x7A5C])))
    n = w.turns

    def tokens(mean: int, size: int) -> np.ndarray:
        if w.token_sigma == 0:
            return np.full(size, mean, dtype=np.int64)
        # Lognormal with the requested mean: mu = ln(mean) - sigma^2/2.
        mu = math.log(max(mean, 1)) - w.token_sigma**2 / 2
        return np.maximum(1, np.rint(rng.lognormal(mu, w.token_sigma, size))).astype(np.int64)

    def tool_times(size: int) -> np.ndarray:
        if w.tool_time_sigma == 0:
            times = np.full(size, w.tool_time_median_s)
        else:
            times = rng.lognormal(math.log(max(w.tool_time_median_s, 1e-12)), w.tool_time_sigma, size)
        return np.minimum(times, w.tool_time_max_s)

    outs = tokens(w.output_tokens, n)
    outs[-1] = tokens(w.final_output_tokens, 1)[0]
    tool_outs = tokens(w.tool_output_tokens, n) if w.tool_output_tokens else np.zeros(n, dtype=np.int64)
    tools = tool_times(n)
    # Draws that the first version's workloads did not make come after its draws and only when asked for,
    # so a workload without reasoning, parallel calls or steering keeps its turn specs exactly.
    reasoning = tokens(w.reasoning_tokens, n) if w.reasoning_tokens else np.zeros(n, dtype=np.int64)
    calls = np.ones(n, dtype=np.int64)
    if w.parallel_tool_calls > 1:
        calls += rng.poisson(w.parallel_tool_calls - 1, n)
        # One lognormal tool time and output per extra call: the turn waits for the longest, and the next
        # request carries every output.
        for j in map(int, np.flatnonzero(calls > 1)):
            extra = int(calls[j]) - 1
            tools[j] = max(float(tools[j]), float(tool_times(extra).max()))
            if w.tool_output_tokens:
                tool_outs[j] += int(tokens(w.tool_output_tokens, extra).sum())
    steered = rng.random(n) < w.steer_rate if w.steer_rate > 0 else np.zeros(n, dtype=bool)
    # Python numbers in one call per column (tolist), not one numpy scalar conversion per field and turn.
    outs_l, tools_l, tool_outs_l = outs.tolist(), tools.tolist(), tool_outs.tolist()
    reasoning_l, calls_l, steered_l = reasoning.tolist(), calls.tolist(), steered.tolist()
    specs: list[TurnSpec] = []
    context = 0
    new: int = w.initial_context_tokens
    steer_at = w.steer_at
    last = n - 1
    for i in range(n):
        final = i == last
        steer = steered_l[i] and not final
        out = max(1, round(outs_l[i] * steer_at)) if steer else outs_l[i]
        skip = final or steer
        # tuple.__new__: the same TurnSpec without NamedTuple's Python-level __new__.
        specs.append(
            _new(
                TurnSpec,
                (
                    i,
                    context,
                    new,
                    out,
                    0.0 if skip else tools_l[i],
                    final,
                    reasoning_l[i],
                    0 if skip else calls_l[i],
                    steer,
                ),
            )
        )
        context += new + out
        # A steered turn's successor carries the user's steering message (sized like a tool output).
        new = tool_outs_l[i]
    return tuple(specs)
