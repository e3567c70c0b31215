"""CPU pinning for benchmarks: measure on one core, keep the client on another (Linux only; else a no-op)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def cores() -> list[int]:
    """The cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def pick(index: int) -> int | None:
    """The ``index``-th usable core, or None when there are not that many (then nothing is pinned)."""
    usable = cores()
    return usable[index] if index < len(usable) else None


def pin_self(index: int) -> None:
    """Pin this process to its ``index``-th usable core for good (used by server subprocesses)."""
    core = pick(index)
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


@contextmanager
def pinned(index: int) -> Iterator[int | None]:
    """Run the block on the ``index``-th usable core, then restore the previous affinity."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    core = pick(index)
    if core is not None:
        os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        os.sched_setaffinity(0, before)
