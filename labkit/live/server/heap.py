"""The heap of a process that only serves: what start-up made, out of the garbage collector's sight.

A full collection walks every tracked object. In a server process most of them are start-up's (modules, classes,
the workload's tables): ~51,000 objects, 17-25 ms a walk on this machine (``tools/gc_after_load.py``), repeated
whenever serving has made a quarter as many new survivors again, and the request that triggers one waits for it.
Start-up's objects live as long as the process, so collecting them can find nothing: :func:`freeze_start_up`
collects once, then moves everything left into the permanent generation (:func:`gc.freeze`), and full collections
walk only what serving made (~2,000 objects after the benchmark's load: what a server keeps per response is flat
tuples of plain values, which the first collection that sees them stops tracking; ``tools/gc_per_request.py``).

Only for a process of its own (``labkit serve``, the benchmark's servers): in a notebook's kernel it would freeze
the user's objects too, and cycles among them would never be collected.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_start_up"]


def freeze_start_up() -> int:
    """Collect, then freeze what is left; returns the number of objects frozen (all frozen so far)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
