"""The server's id source and clock for the events it builds (the wire layer takes both as arguments)."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """An id like the API's: ``resp_``, ``msg_``, ``fc_``, ``call_``, ``rs_`` followed by 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


#: A Response's ``created_at``: the wall clock, in seconds since the epoch.
wall_clock = time.time
