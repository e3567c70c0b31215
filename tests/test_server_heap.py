"""A serving process freezes what start-up made: collected once, then out of the collector's walks."""

from __future__ import annotations

import subprocess
import sys


def test_freeze_start_up_collects_then_freezes_in_its_own_process() -> None:
    # In a fresh interpreter: freezing is for the rest of a process's life (not the test runner's).
    code = (
        "import gc, weakref\n"
        "from labkit.live.server.heap import freeze_start_up\n"
        "class Cycle:\n"
        "    pass\n"
        "gc.disable()\n"  # the cycle below stays garbage until freeze_start_up collects
        "a, b = Cycle(), Cycle()\n"
        "a.other, b.other = b, a\n"
        "gone = weakref.ref(a)\n"
        "del a, b\n"
        "kept = [Cycle()]\n"
        "frozen = freeze_start_up()\n"
        "assert gone() is None, 'garbage was frozen, not collected'\n"
        "assert frozen == gc.get_freeze_count() > 1000, frozen\n"
        "assert not any(o is kept for o in gc.get_objects())\n"  # frozen: out of the collector's walks
        "gc.enable()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_what_a_server_keeps_per_response_leaves_the_collectors_walks() -> None:
    """Records, stored bodies and turn-log lines are flat tuples of plain values: untracked by the first collection
    that sees them (a named tuple never is, and a tuple holding a tuple only at a later, older generation's pass;
    a server keeps up to 100,000 records), and read back as what they were."""
    import gc
    import json

    from labkit.live.server.engine import Engine, TurnLog
    from labkit.live.server.state import ResponseRecord
    from labkit.model import load_profile, load_workload
    from labkit.wire.protocol import parse_create_body

    engine = Engine(load_profile("websocket"), load_workload("fast_test"), seed=1, instant=True, spin_s=0.0)
    tool = {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}
    plain = parse_create_body(json.dumps({"model": "m", "input": "hi"}))  # filled into a template
    calling = parse_create_body(json.dumps({"model": "m", "input": "hi", "tools": [tool]}))  # assembled, with calls
    answers, specs = [], []
    for request in (plain, calling):
        resolved = engine.resolve(request, transport="http", t0=0.0)
        answers.append(json.loads(engine.answer_at_once(resolved, 1.0)))
        specs.append(resolved)
    assert answers[1]["output"][-1]["type"] == "function_call"
    gc.collect()  # once
    ids = [answer["id"] for answer in answers]
    kept = [*(engine.store._records[i] for i in ids), *(engine.bodies._bodies[i] for i in ids), *engine._turn_log]
    assert len(kept) == 6
    assert not any(gc.is_tracked(fields) for fields in kept)
    records = [engine.store.get(i) for i in ids]
    assert all(type(record) is ResponseRecord for record in records)
    assert [record.id for record in records if record] == ids
    assert records[0] and records[0].call_ids == ()
    assert records[1] and records[1].call_ids == (answers[1]["output"][-1]["call_id"],)
    for answer in answers:
        assert engine.bodies.response_json(answer["id"]) == json.dumps(answer, separators=(",", ":")).encode()
    logs = engine.turn_log
    assert all(type(log) is TurnLog for log in logs)
    assert [log.response_id for log in logs] == ids
    for log, resolved in zip(logs, specs, strict=True):
        assert log.spec == resolved.spec and type(log.spec) is type(resolved.spec)
        assert log.cache is resolved.cache  # the shared cache state, not a copy
