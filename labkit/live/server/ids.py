"""The server's id source and clock for the events it builds (the wire layer takes both as arguments)."""

from __future__ import annotations

import os
import threading
import time

#: Random bytes drawn per system call: 170 ids' worth. An id is as unguessable as ``secrets.token_hex``'s
#: (the same kernel source, ``os.urandom``); drawing them in bulk saves two ``getrandom`` calls a response,
#: whose kernel entry costs a busy server more than the call itself.
_POOL_BYTES = 24 * 170


class _RandomPool(threading.local):
    """``take()`` gives the next 48 hex digits (24 bytes) of one ``os.urandom`` draw, drawing again when it runs out.

    The draw is turned into hex text once and cut into ids once, not per id (an attribute of a thread-local object
    is a lookup by thread each time). One pool per thread (servers may run in several threads, e.g. the pytest
    plugin's), emptied in a forked child: no two ids ever come from the same bytes."""

    def __init__(self) -> None:
        self.empty()

    def empty(self) -> None:
        self._ids: list[str] = []

    def take(self) -> str:
        ids = self._ids
        if not ids:
            digits = os.urandom(_POOL_BYTES).hex()
            ids = self._ids = [digits[at : at + 48] for at in range(0, len(digits), 48)]
        return ids.pop()


_pool = _RandomPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.empty)


def new_id(prefix: str) -> str:
    """An id like the API's: ``resp_``, ``msg_``, ``fc_``, ``call_``, ``rs_`` followed by 48 hex digits."""
    return f"{prefix}_{_pool.take()}"


#: A Response's ``created_at``: the wall clock, in seconds since the epoch.
wall_clock = time.time
