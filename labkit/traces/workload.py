"""A trace-driven workload: a session's real model calls as the latency model's turns, instead of random draws.

:class:`TraceWorkload` is a :class:`~labkit.model.Workload` (so the closed form, the DES, the simulator and the
live runner take it as they take a preset) whose :meth:`turn_specs` returns the session's calls, the same for
every seed. How a call maps onto a :class:`~labkit.model.TurnSpec`:

- ``context_tokens`` is the conversation the API had already seen: the previous call's input plus its output
  when this call's input grew from it (the conversation is append-only), capped at this call's input; 0 for the
  first call and after the history was rewritten (compaction, a new task: the input shrank). ``new_input_tokens``
  is the rest of the input (the user message or the tool outputs this call added). That is exactly what a
  WebSocket connection cache or ``previous_response_id`` spares the client from sending;
- the provider's prompt (prefix) cache is the profile's ``prefix_cache_hit_share`` of the context. The trace
  measures it: :attr:`TraceWorkload.prefix_cache_share` is the session's cached input over its context tokens
  (capped at 1), which :func:`labkit.traces.replay.replay` puts into the profile by default. Cached tokens of a
  first call (a system prompt cached across sessions) are not modelled: the first call is all new;
- ``output_tokens`` are the visible output (output minus reasoning, at least 1), ``reasoning_tokens`` the
  reasoning tokens (decoded before the first visible delta);
- ``tool_calls`` is the number of tool calls the call issued, ``tool_s`` the longest of them (the client runs
  them in parallel); a call without tool calls that is not the last is a hand-back to the user (its successor's
  new input is the user's next message, the user's think time is not part of the rollout);
- the last call is ``final``; nothing is ``steered`` (no format records steering).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from labkit.model import TurnSpec, Workload
from labkit.traces.model import Session


@dataclass(frozen=True, slots=True)
class TraceWorkload(Workload):
    """A :class:`Workload` replaying one session's calls (see the module docstring for the mapping)."""

    specs: tuple[TurnSpec, ...] = ()
    session_id: str = ""
    #: The session's cached input over its context tokens (None: the trace records no cached tokens).
    prefix_cache_share: float | None = None

    def __post_init__(self) -> None:
        Workload.__post_init__(self)
        if len(self.specs) != self.turns:
            raise ValueError(f"specs: {len(self.specs)} turn specs for turns={self.turns}")

    def turn_specs(self, seed: int | None = None) -> tuple[TurnSpec, ...]:
        """The session's calls, whatever the seed (a trace has one realisation)."""
        return self.specs

    @property
    def tool_calls(self) -> int:
        return sum(s.tool_calls for s in self.specs)


def turn_specs_from_session(session: Session) -> tuple[TurnSpec, ...]:
    specs: list[TurnSpec] = []
    prev_in = prev_out = 0
    n = len(session.calls)
    for i, call in enumerate(session.calls):
        grown = i > 0 and call.input_tokens >= prev_in
        context = min(call.input_tokens, prev_in + prev_out) if grown else 0
        new = call.input_tokens - context
        final = i == n - 1
        visible = max(1, call.output_tokens - call.reasoning_tokens)
        n_tools = 0 if final else len(call.tool_calls)
        specs.append(
            TurnSpec(
                index=i,
                context_tokens=context,
                new_input_tokens=new,
                output_tokens=visible,
                tool_s=0.0 if final else float(call.tool_s),
                final=final,
                reasoning_tokens=call.reasoning_tokens,
                tool_calls=n_tools,
                steered=False,
            )
        )
        prev_in, prev_out = call.input_tokens, call.output_tokens
    return tuple(specs)


def trace_workload(session: Session) -> TraceWorkload:
    """The :class:`TraceWorkload` of one session."""
    if not session.calls:
        raise ValueError(f"session: {session.id!r} has no model calls")
    specs = turn_specs_from_session(session)
    context = sum(s.context_tokens for s in specs)
    cached = sum(c.cached_input_tokens for c, s in zip(session.calls, specs, strict=True) if s.context_tokens)
    share = min(1.0, cached / context) if context and any(c.cached_input_tokens for c in session.calls) else None
    tool_times = [t for c in session.calls for t in (tc.seconds for tc in c.tool_calls) if t is not None]
    tooled = [s.tool_calls for s in specs if s.tool_calls]
    outs = [s.output_tokens for s in specs]
    news = [s.new_input_tokens for s in specs[1:]]
    return TraceWorkload(
        name=f"trace:{session.id}",
        turns=len(specs),
        initial_context_tokens=specs[0].new_input_tokens,
        tool_output_tokens=round(statistics.fmean(news)) if news else 0,
        output_tokens=max(1, round(statistics.fmean(outs[:-1] or outs))),
        final_output_tokens=max(1, outs[-1]),
        token_sigma=0.0,
        tool_time_median_s=statistics.median(tool_times) if tool_times else 0.0,
        tool_time_sigma=0.0,
        tool_time_max_s=max(tool_times, default=0.0),
        reasoning_tokens=round(statistics.fmean(s.reasoning_tokens for s in specs)),
        parallel_tool_calls=statistics.fmean(tooled) if tooled else 1.0,
        seed=0,
        description=f"{session.format} session {session.id} ({len(specs)} model calls)",
        specs=specs,
        session_id=session.id,
        prefix_cache_share=share,
    )
