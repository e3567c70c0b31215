"""The bounds and timeouts of a simulated server, as one validated value (:class:`ServerBounds`).

What a connection and the server may hold, and how long they wait (docs/guides/wire.md, "Bounds"), are checked
here once, each bad value a ``ValueError`` naming the field, so :class:`~labkit.live.server.app.SimServer`
takes them as keyword arguments and hands the WebSocket session, the store and the connection guard values
that are known to be good. ``SimServer(...).bounds`` is the record of what a server ran with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from labkit.live.server.session import MAX_QUEUED, MAX_QUEUED_PER_LANE
from labkit.live.server.state import DEFAULT_MAX_STORED_BYTES

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_HTTP_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_WS_IDLE_TIMEOUT_S",
    "MAX_ACTIVE_RESPONSES",
    "MAX_LANES",
    "ServerBounds",
]

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Bounds on what a connection may hold (docs/guides/wire.md, "Bounds"): the first request's headers must
#: arrive within this; a kept-alive HTTP connection may sit idle this long; a WebSocket with no client frame
#: (pings count) and no response in flight is closed after this.
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_HTTP_IDLE_TIMEOUT_S = 75.0
DEFAULT_WS_IDLE_TIMEOUT_S = 600.0
#: Documented WebSocket-mode limits: active responses per connection (more are queued) and named lanes.
MAX_ACTIVE_RESPONSES = 16
MAX_LANES = 32
#: WebSocket mode's documented connection limit: 60 minutes.
CONNECTION_LIFETIME_S = 3600.0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True, slots=True)
class ServerBounds:
    """What one simulated server and each of its connections may hold, and how long they wait.

    Every field is a keyword argument of :class:`~labkit.live.server.app.SimServer` of the same name and
    default; times are seconds (stored as ``float``).
    """

    #: WebSocket mode: a connection is closed this long after it opened (the API's 60-minute limit).
    connection_lifetime_s: float = CONNECTION_LIFETIME_S
    #: The largest request body or WebSocket message, bytes (at least 1 KiB).
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    #: WebSocket mode: responses running at once on one connection (more wait, ``response.queued``).
    max_active_responses: int = MAX_ACTIVE_RESPONSES
    #: WebSocket mode: named lanes (``stream_id``) on one connection.
    max_lanes: int = MAX_LANES
    #: WebSocket mode: creates waiting on one lane, and on one connection, at most.
    max_queued_per_lane: int = MAX_QUEUED_PER_LANE
    max_queued: int = MAX_QUEUED
    #: Stored responses that can be continued from (``previous_response_id``; the oldest are forgotten).
    max_stored: int = 100_000
    #: Stored responses readable with ``GET /v1/responses/{id}``, and their JSON bytes together (0: none).
    max_stored_bodies: int = 10_000
    max_stored_bytes: int = DEFAULT_MAX_STORED_BYTES
    #: Bytes the connection caches may hold together (``None``: unbounded).
    max_cached_bytes: int | None = None
    #: Open connections at most (``None``: the open-files limit, raised to its hard limit, less a reserve).
    max_connections: int | None = None
    #: A new connection's first request headers must arrive within this.
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    #: A kept-alive HTTP connection may sit idle this long.
    http_idle_timeout_s: float = DEFAULT_HTTP_IDLE_TIMEOUT_S
    #: A WebSocket with no client frame (pings count) and no response in flight is closed after this.
    ws_idle_timeout_s: float = DEFAULT_WS_IDLE_TIMEOUT_S
    #: On stop, open HTTP requests get this long to finish.
    shutdown_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        self._check_websocket_mode()
        self._check_storage()
        self._check_times()

    def _check_websocket_mode(self) -> None:
        if not _is_seconds(self.connection_lifetime_s):
            raise ValueError(f"connection_lifetime_s: must be > 0, got {self.connection_lifetime_s!r}")
        if not (_is_int(self.max_message_bytes) and self.max_message_bytes >= 1024):
            raise ValueError(f"max_message_bytes: must be an integer >= 1024, got {self.max_message_bytes!r}")
        for name in ("max_active_responses", "max_lanes", "max_queued_per_lane", "max_queued"):
            count = getattr(self, name)
            if not (_is_int(count) and count >= 1):
                raise ValueError(f"{name}: must be an integer >= 1, got {count!r}")
        if self.max_connections is not None and not (_is_int(self.max_connections) and self.max_connections >= 1):
            raise ValueError(f"max_connections: must be an integer >= 1 or None, got {self.max_connections!r}")

    def _check_storage(self) -> None:
        # The same rules as the store and the cache budget apply (labkit.live.server.state, .cache).
        if not (_is_int(self.max_stored) and self.max_stored >= 1):
            raise ValueError(f"max_stored: must be an integer >= 1, got {self.max_stored!r}")
        for name in ("max_stored_bodies", "max_stored_bytes"):
            count = getattr(self, name)
            if not (_is_int(count) and count >= 0):
                raise ValueError(f"{name}: must be an integer >= 0, got {count!r}")
        if self.max_cached_bytes is not None and not (_is_int(self.max_cached_bytes) and self.max_cached_bytes >= 0):
            raise ValueError(f"max_cached_bytes: must be an integer >= 0 or None, got {self.max_cached_bytes!r}")

    def _check_times(self) -> None:
        for name in ("header_timeout_s", "http_idle_timeout_s", "ws_idle_timeout_s"):
            if not _is_seconds(getattr(self, name)):
                raise ValueError(f"{name}: must be > 0 seconds, got {getattr(self, name)!r}")
        shutdown = self.shutdown_timeout_s
        if not (isinstance(shutdown, int | float) and not isinstance(shutdown, bool) and shutdown >= 0):
            raise ValueError(f"shutdown_timeout_s: must be >= 0 seconds, got {shutdown!r}")
        # Seconds as float, whatever number type came in.
        for name in ("connection_lifetime_s", "header_timeout_s", "http_idle_timeout_s", "ws_idle_timeout_s"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "shutdown_timeout_s", float(shutdown))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
