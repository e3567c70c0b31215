"""The process's open-file limit, and the connection cap that keeps the server inside it.

Every connection holds a descriptor. When a server accepts until the limit, ``accept()`` fails with EMFILE
for everyone, a well-behaved client's request included, and asyncio retries and logs on every loop
iteration. So the server (1) raises its soft limit to the hard limit at start, as nginx's
``worker_rlimit_nofile`` and most servers do (the soft limit is often 1,024 while the hard limit is far
higher), and (2) caps concurrent connections below that limit, keeping a reserve for the descriptors the
process needs for itself (the event loop, log files, the cache's files, a client it runs in the same
process): past the cap it answers at once and closes, instead of leaving the client in the accept queue.
"""

from __future__ import annotations

#: Descriptors kept back from the connection cap for the process's own use.
RESERVED_DESCRIPTORS = 64
#: Used where the platform has no ``resource`` module (Windows): no limit to read or raise.
UNKNOWN_LIMIT = 8192
# A hard limit of RLIM_INFINITY is raised to this, not to "infinity": some kernels refuse larger values.
_INFINITE_CAP = 1 << 20


def raise_open_files_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit where allowed; return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return UNKNOWN_LIMIT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _INFINITE_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # e.g. a container that forbids it: keep the soft limit and cap below it
    return _INFINITE_CAP if soft == resource.RLIM_INFINITY else int(soft)


def default_max_connections(open_files_limit: int, reserve: int = RESERVED_DESCRIPTORS) -> int:
    """The connection cap for a process whose soft descriptor limit is ``open_files_limit``.

    The limit less ``reserve``, never below 1: under ``ulimit -n 1024`` this allows 960 connections.
    """
    if open_files_limit < 1:
        raise ValueError(f"open_files_limit: must be >= 1, got {open_files_limit!r}")
    if reserve < 0:
        raise ValueError(f"reserve: must be >= 0, got {reserve!r}")
    return max(1, open_files_limit - reserve)
