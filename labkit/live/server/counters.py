"""The server's counters (``SimServer.metrics``, ``GET /v1/labkit/metrics``) as one typed object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(slots=True)
class ServerCounters:
    """Counts since the server started; ``to_dict()`` is the JSON the metrics endpoint serves (same keys)."""

    connections: int = 0
    connections_open: int = 0
    http_requests: int = 0
    requests: int = 0
    responses: int = 0
    warmups: int = 0
    responses_failed: int = 0
    responses_incomplete: int = 0
    steers_accepted: int = 0
    #: ``error`` events and HTTP error responses sent.
    errors: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    store_hits: int = 0
    previous_response_not_found: int = 0
    parents_evicted: int = 0
    replica_hits: int = 0
    replica_misses: int = 0
    events_sent: int = 0
    delta_frames: int = 0
    output_tokens: int = 0
    #: Tokens that shared a delta frame with an earlier token (the pacer coalesces when it falls behind).
    coalesced_tokens: int = 0
    #: The latest a response's last delta went out against its plan, seconds.
    pacing_lag_max_s: float = 0.0
    faults_dropped: int = 0
    faults_stalled: int = 0
    faults_evicted: int = 0
    faults_failed: int = 0
    cache_evictions: int = 0

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)
