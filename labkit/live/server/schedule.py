"""The pacing of one response as a pure schedule: when each batch of events is due (no event loop, no clock).

:class:`Pacer` turns a response's :class:`~labkit.live.server.output.OutputPlan` and its stage times into
batches of events. The caller owns the clock: it reads :attr:`Pacer.deadline`, waits until then, and calls
:meth:`Pacer.advance` with the time it woke; every event due by then comes back as one batch, which the
server writes at once (one SSE write, or back-to-back WebSocket frames). Because the caller passes the time
in, tests drive the schedule with made-up clocks.

Times (all from the turn's ``t0``, on the caller's clock), from :func:`labkit.model.plan_turn`:

- ``response.created`` / ``in_progress`` at ``t0``;
- after the pre-inference stages (``validate`` ... ``prefill``, plus an injected stall): a failure
  (``response.failed``), a warm-up's ``response.completed``, or the ``reasoning`` item, whose summary
  deltas are spread over the ``reasoning`` stage;
- the first visible delta at ``t_first`` (after reasoning); visible token ``k`` at ``t_first + k / tps``.
  At a wake-up, every token whose deadline has passed goes out as one delta (coalescing: asyncio cannot
  sleep much under ~1 ms); items open and close at their first and last token;
- the terminal event when the post stages (``safety_out``, ``persist``, ``postprocess``) end after the
  last token: ``response.completed``, or ``response.incomplete`` when ``max_output_tokens`` cut the output.

A non-streaming answer is not driven through the batches: :attr:`Pacer.end` is when the plan's last stage
ends (the answer goes out then) and :meth:`Pacer.assemble` builds the final Response at once, without a
single stream event (the same bytes as ``response.completed``'s ``response``).

Steering (:meth:`Pacer.steer`) stops decoding at the next wake-up: the open item closes ``incomplete``, the
response ends ``incomplete`` with ``reason: steered``, and the rest of the output is never decoded.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import NamedTuple

from labkit.live.server.assembly import assemble_response
from labkit.live.server.output import ItemPlan, OutputPlan
from labkit.wire.protocol import ResponseEvents, ServerEvent

Event = ServerEvent
#: An injected 5xx's ``error.message`` in the Response (streamed or answered whole).
_FAILED_MESSAGE = "The server had an error while processing your request."


class Timing(NamedTuple):
    """A response's server-side stage times (seconds) and decode rate; ``tps = inf`` sends at once."""

    t0: float
    #: Pre-inference stages up to the end of prefill (plus an injected stall).
    pre_s: float
    reasoning_s: float
    post_s: float
    tps: float


class Pacer:
    """The batches of one response's events, due at absolute deadlines on the caller's clock.

    ``paced=False`` puts every delta in one batch at the last token's deadline; ``per_token=True`` (instant
    mode) sends one delta per token instead of coalescing. A non-streaming answer uses :attr:`end` and
    :meth:`assemble` instead of the batches.
    """

    # A pacer is built per response: slots make that, and every attribute read of a paced stream, cheaper.
    __slots__ = (
        "_batch",
        "_interruptible",
        "_steps",
        "cached_tokens",
        "deadline",
        "decoded",
        "events",
        "fail",
        "frames",
        "generate",
        "input_tokens",
        "output",
        "paced",
        "per_token",
        "planned_last",
        "reasoning_decoded",
        "spin",
        "stop_reason",
        "t_first",
        "t_last",
        "timing",
    )

    def __init__(
        self,
        events: ResponseEvents,
        output: OutputPlan,
        timing: Timing,
        *,
        generate: bool = True,
        fail: bool = False,
        paced: bool = True,
        per_token: bool = False,
        input_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> None:
        self.events = events
        self.output = output
        self.timing = timing
        self.generate = generate
        self.fail = fail
        self.paced = paced
        self.per_token = per_token
        self.input_tokens = input_tokens
        self.cached_tokens = cached_tokens
        #: Whether the wait before the next deadline bounds TTFT or the end (worth a precise wake-up).
        self.spin = False
        #: Visible tokens and reasoning tokens decoded so far; delta events of visible output sent.
        self.decoded = 0
        self.reasoning_decoded = 0
        self.frames = 0
        #: When the first and the last visible delta went out (the caller's clock).
        self.t_first: float | None = None
        self.t_last: float | None = None
        #: When the plan has the last visible delta go out (set once decoding starts).
        self.planned_last: float | None = None
        self.stop_reason: str | None = None
        self._interruptible = True
        self._batch: list[Event] = []
        # The steps start at the first advance (an answer assembled whole never runs them); the first is
        # due at t0.
        self._steps: Generator[float, float, None] | None = None
        self.deadline: float | None = timing.t0

    @property
    def done(self) -> bool:
        return self.deadline is None

    def steer(self) -> bool:
        """Stop decoding at the next :meth:`advance`; ``False`` once the output is fully decoded."""
        if not self._interruptible or self.done:
            return False
        self.stop_reason = "steered"
        return True

    @property
    def end(self) -> float:
        """When the plan's last stage ends: a failure or a warm-up after the pre-inference stages, else after
        reasoning, the decode of every visible token and the post stages (the terminal event's deadline)."""
        t = self.timing
        t_pre = t.t0 + t.pre_s
        if self.fail or not self.generate:
            return t_pre
        n = self.output.visible_tokens
        decode_s = max(0, n - 1) / t.tps if math.isfinite(t.tps) else 0.0
        return t_pre + t.reasoning_s + decode_s + t.post_s

    def assemble(self) -> None:
        """The whole response at once, without its stream events (a non-streaming answer, at :attr:`end`).

        Leaves :attr:`events` terminal with the output, usage and status the streamed batches would leave
        (:func:`~labkit.live.server.assembly.assemble_response`); nothing counts as a delta frame (none went out).
        """
        ev, out = self.events, self.output
        self.deadline = None
        self._interruptible = False
        ev.assemble()
        if self.fail:
            ev.conclude("failed", error=("server_error", _FAILED_MESSAGE))
            return
        response = assemble_response(
            ev.request,
            out,
            response_id=ev.id,
            created_at=ev.created_at,
            ids=ev.ids,
            input_tokens=self.input_tokens,
            cached_tokens=self.cached_tokens,
        )
        ev.adopt(response)
        if self.generate:
            self.decoded = out.visible_tokens
            self.reasoning_decoded = out.reasoning_tokens if out.reasoning is not None else 0

    def advance(self, now: float) -> list[Event]:
        """Every event due at ``now`` (empty if nothing is), as one batch."""
        batch = self._batch = []
        steps = self._steps
        if steps is None:
            steps = self._steps = self._run()
            next(steps)  # to the first step's yield (t0)
        while self.deadline is not None and (now >= self.deadline or self.stop_reason is not None):
            try:
                self.deadline = steps.send(now)
            except StopIteration:
                self.deadline = None
        return batch

    # -- the steps ----------------------------------------------------------------------------------

    def _run(self) -> Generator[float, float, None]:
        ev, out, t = self.events, self.output, self.timing
        yield t.t0
        self._batch.extend(ev.start())
        t_pre = t.t0 + t.pre_s
        self.spin = not (self.generate and out.reasoning is not None) and not self.fail
        yield t_pre
        if self.stop_reason is not None:
            return self._halt()
        if self.fail:
            self._batch.append(ev.failed("server_error", _FAILED_MESSAGE))
            return None
        if not self.generate:
            # A warm-up stops after the pre-inference work: the state is ready, nothing is sampled.
            ev.set_usage(self.input_tokens, 0, self.cached_tokens)
            self._batch.append(ev.completed())
            return None
        if out.reasoning is not None:
            yield from self._reason(out.reasoning, t_pre, t.reasoning_s)
            if self.stop_reason is not None:
                return self._halt()
        t_first = t_pre + t.reasoning_s
        yield from self._decode(t_first)
        if self.stop_reason is not None:
            return self._halt()
        self._interruptible = False
        self.spin = True
        n = out.visible_tokens
        decode_end = t_first + (max(0, n - 1) / t.tps if math.isfinite(t.tps) else 0.0)
        yield decode_end + t.post_s
        self._set_usage()
        self._batch.append(ev.incomplete("max_output_tokens") if out.truncated else ev.completed())
        return None

    def _reason(self, item: ItemPlan, start: float, duration: float) -> Generator[float, float, None]:
        ev = self.events
        self._batch.extend(ev.open_item("reasoning", summary=item.summary, encrypted_content=item.encrypted_content))
        n = len(item.tokens)
        k = 0
        while k < n:
            # Summary token k is due when the share (k+1)/n of the reasoning stage has passed.
            now = yield start + (k + 1) / n * duration
            if self.stop_reason is not None:
                self._reasoned(now, start, duration)
                self._close_open()
                return
            last = (
                n - 1
                if duration <= 0 or not self.paced
                else min(n - 1, max(k, math.floor((now - start) / duration * n - 1 + 1e-9)))
            )
            self._deltas(item.tokens[k : last + 1], visible=False)
            k = last + 1
        self.spin = True
        now = yield start + duration
        self._reasoned(now, start, duration)
        if self.stop_reason is not None:
            self._close_open()
            return
        self._batch.extend(ev.close_item("incomplete" if item.truncated else "completed"))

    def _reasoned(self, now: float, start: float, duration: float) -> None:
        # Steered mid-reasoning: only the share of the stage that passed was decoded (and is billed).
        r = self.output.reasoning_tokens
        share = 1.0 if duration <= 0 or now >= start + duration - 1e-9 else max(0.0, (now - start) / duration)
        self.reasoning_decoded = r if share >= 1.0 else int(r * share)

    def _decode(self, t_first: float) -> Generator[float, float, None]:
        ev, items, tps = self.events, self.output.items, self.timing.tps
        # Token k is found by walking item boundaries, not through a per-token list: a list of (item, token)
        # pairs per response was hundreds of objects that lived for the whole decode, and under many
        # concurrent streams the garbage collector spent a large share of the server's CPU walking them.
        sizes = [len(item.tokens) for item in items]
        n = sum(sizes)
        finite = math.isfinite(tps)
        if n:
            self.planned_last = t_first + ((n - 1) / tps if finite else 0.0)
        k = 0
        i = 0  # the item holding token k
        base = 0  # global index of items[i]'s first token
        while k < n:
            self.spin = k == 0
            now = yield (t_first + k / tps) if finite else t_first
            if self.stop_reason is not None:
                self._close_open()
                return
            if not finite or not self.paced:
                last = n - 1
            else:
                # Every token whose deadline has passed goes out now, in one frame.
                last = min(n - 1, max(k, math.floor((now - t_first) * tps + 1e-9)))
            if self.t_first is None:
                self.t_first = now
            self.t_last = now
            # Walk the due tokens item by item: open, one delta (or one per token), close at its last token.
            while k <= last:
                while k >= base + sizes[i]:  # past this item (or it is empty): the next one
                    base += sizes[i]
                    i += 1
                item = items[i]
                if not ev.has_open_item:
                    self._batch.extend(ev.open_item(item.kind, name=item.name))
                item_last = base + sizes[i] - 1
                end = min(last, item_last)
                self._deltas(item.tokens[k - base : end - base + 1])
                if end == item_last:
                    self._batch.extend(ev.close_item("incomplete" if item.truncated else "completed"))
                k = end + 1
            self.decoded = k

    def _deltas(self, tokens: list[str] | tuple[str, ...], visible: bool = True) -> None:
        ev = self.events
        if self.per_token:
            self._batch.extend(ev.delta(tok) for tok in tokens)
            frames = len(tokens)
        else:
            self._batch.append(ev.delta("".join(tokens)))
            frames = 1
        if visible:
            self.frames += frames

    def _close_open(self) -> None:
        if self.events.has_open_item:
            self._batch.extend(self.events.close_item("incomplete"))

    def _halt(self) -> None:
        """Steered: what was decoded stays, the response ends ``incomplete`` (``reason: steered``)."""
        self._close_open()
        self._set_usage()
        self._batch.append(self.events.incomplete(self.stop_reason or "steered"))

    def _set_usage(self) -> None:
        r = self.reasoning_decoded
        self.events.set_usage(self.input_tokens, self.decoded + r, self.cached_tokens, r)
