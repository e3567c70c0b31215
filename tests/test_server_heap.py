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
