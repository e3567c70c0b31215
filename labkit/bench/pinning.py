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
    return cores_of(0)


def cores_of(pid: int) -> list[int]:
    """The cores process ``pid`` may run on (all of this machine's where Linux's affinity calls are missing)."""
    try:
        return sorted(os.sched_getaffinity(pid))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def apart(servers: dict[str, list[int]], client: list[int]) -> dict[str, list[int]]:
    """Where a benchmark's servers and its client run, checked: every server on the same cores, and none on the
    client's when there are cores to keep them apart. A child process inherits its parent's cores, so a server
    started while the client is pinned pins itself to the client's core; its CPU per request is then measured
    under another arrangement than the others' (a ping-pong on one core costs no cross-core wake-ups), and a
    ratio between them compares unlike setups. Returns ``{"servers": cores, "client": cores}``."""
    placements = {tuple(c) for c in servers.values()}
    if len(placements) > 1:
        raise RuntimeError(f"bench: the servers run on different cores: {servers}")
    (shared,) = placements
    if set(shared) & set(client) and len(set(shared) | set(client)) > 1:
        raise RuntimeError(f"bench: a server shares the client's cores {client}: {servers}")
    return {"servers": list(shared), "client": client}


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


#: How many :func:`pinned` blocks this process is in (a server started inside one would share the client's core).
_pinned_depth = 0


def client_pinned() -> bool:
    """Whether this process runs inside :func:`pinned` (the client's core)."""
    return _pinned_depth > 0


@contextmanager
def pinned(index: int) -> Iterator[int | None]:
    """Run the block on the ``index``-th usable core, then restore the previous affinity. Start servers before:
    a child inherits the block's core."""
    global _pinned_depth
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    core = pick(index)
    if core is not None:
        os.sched_setaffinity(0, {core})
    nice = boost()
    _pinned_depth += 1
    try:
        yield core
    finally:
        _pinned_depth -= 1
        restore(nice)
        os.sched_setaffinity(0, before)
