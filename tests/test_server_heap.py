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
    """Records and turn-log lines are plain tuples of plain values: untracked by the collector while young (a named
    tuple never is, and a server keeps up to 100,000 records), and read back as the named tuples they were."""
    import gc
    import json

    from labkit.live.server.engine import Engine, TurnLog
    from labkit.live.server.state import ResponseRecord
    from labkit.model import load_profile, load_workload
    from labkit.wire.protocol import parse_create_body

    engine = Engine(load_profile("websocket"), load_workload("fast_test"), seed=1, instant=True, spin_s=0.0)
    request = parse_create_body(json.dumps({"model": "m", "input": "hi"}))
    resolved = engine.resolve(request, transport="http", t0=0.0)
    answer = json.loads(engine.answer_at_once(resolved, 1.0))
    gc.collect()
    gc.collect()  # a tuple holding tuples is untracked at the pass after theirs
    kept = [engine.store._records[answer["id"]], engine._turn_log[-1]]
    assert not any(gc.is_tracked(fields) for fields in kept)
    record = engine.store.get(answer["id"])
    assert type(record) is ResponseRecord and record.id == answer["id"]
    (log,) = engine.turn_log
    assert type(log) is TurnLog and log.response_id == answer["id"] and log.spec == resolved.spec
    assert log.cache is resolved.cache  # the shared cache state, not a copy
