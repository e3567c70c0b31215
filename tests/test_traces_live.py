"""A real session replayed live: the trace workload drives the simulator and labkit's runner end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from labkit.analysis.metrics import rollout_metrics
from labkit.live.runner import rollouts_spans, run_rollouts
from labkit.live.server import SimServer
from labkit.model import load_profile
from labkit.sim.analytic import forecast
from labkit.traces import load_trace, trace_workload
from labkit.traces.spansio import sessions_from_spans

pytestmark = pytest.mark.live

FIX = Path(__file__).parent / "fixtures" / "traces"


def test_codex_session_runs_live_as_the_closed_form_predicts():
    (session,) = load_trace(FIX / "codex_rollout.jsonl")
    w = trace_workload(session)
    prof = load_profile("websocket")

    async def go():
        async with SimServer(prof, w) as server:
            return await run_rollouts("ws", w, base_url=server.base_url, rollouts=1)

    spans = rollouts_spans(asyncio.run(go()))
    measured = float(rollout_metrics(spans)["e2e_s"].iloc[0])
    # Loopback: the prediction leaves out the network the profile carries for a real deployment.
    assert measured == pytest.approx(forecast(prof.loopback(), w).e2e_s, rel=0.05)
    (back,) = sessions_from_spans(spans)
    assert len(back.calls) == len(session.calls)
    assert [c.reasoning_tokens for c in back.calls] == [c.reasoning_tokens for c in session.calls]
    assert [c.output_tokens for c in back.calls] == [c.output_tokens for c in session.calls]
    assert back.calls[0].input_tokens == session.calls[0].input_tokens
