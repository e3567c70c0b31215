"""CPU pinning for benchmarks: measure on one core, keep the client on another (Linux only; else a no-op).

Benchmark processes also ask for a higher scheduling priority (nice -10) where they may: on a shared
machine, other work pinned to the same core would otherwise take turns with the server under test and
show up as labkit's overhead. Without the permission, nothing changes and the run says so.
"""

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


BOOST_NICE = -10


def boost() -> int | None:
    """Raise this process's priority; returns the previous niceness to restore, or None if not allowed."""
    try:
        before = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, min(before, BOOST_NICE))
    except (AttributeError, PermissionError, OSError):
        return None
    return before


def restore(before: int | None) -> None:
    if before is not None:
        # Lowering priority again never needs a permission.
        os.setpriority(os.PRIO_PROCESS, 0, before)


def boosted() -> bool:
    """Whether this process runs at the boosted priority."""
    return hasattr(os, "getpriority") and os.getpriority(os.PRIO_PROCESS, 0) <= BOOST_NICE


def pin_self(index: int) -> None:
    """Pin this process to its ``index``-th usable core for good, at a boosted priority (server
    subprocesses)."""
    core = pick(index)
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    boost()


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
    nice = boost()
    try:
        yield core
    finally:
        restore(nice)
        os.sched_setaffinity(0, before)
