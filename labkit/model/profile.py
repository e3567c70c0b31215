"""A :class:`Profile`: every parameter of one API configuration (service, network, inference, caches)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: Bytes of request JSON per token of conversation (text is ~4 bytes a token; JSON adds a little).
BYTES_PER_TOKEN_TEXT = 4

Transport = Literal["http", "websocket"]
Chaining = Literal["none", "store", "connection"]
Routing = Literal["sticky", "random"]


def _check(cond: bool, field_name: str, message: str) -> None:
    if not cond:
        raise ValueError(f"{field_name}: {message}")


@dataclass(frozen=True, slots=True)
class Profile:
    """Every parameter of one API configuration: service, network, inference, transport and caches.

    Times are seconds; ``*_per_1k_s`` are seconds per 1,000 tokens. Build one with :func:`load_profile`.
    """

    name: str
    # -- transport and caches ------------------------------------------------------------------
    transport: Transport = "http"
    #: HTTP only: reuse one TCP+TLS connection across requests (the SDK's default pool).
    keep_alive: bool = True
    #: none: full conversation every turn; store: previous_response_id with store=true;
    #: connection: WebSocket mode's connection-scoped cache.
    chaining: Chaining = "none"
    #: API-side cache of rendered tokens for a conversation prefix (replica-local over HTTP).
    rendered_token_cache: bool = False
    #: In-memory model configuration instead of a config-service fetch per request.
    config_cache: bool = False
    #: With a connection-cache hit, classify only the new input items.
    incremental_safety: bool = False
    #: Persistence and billing run after response.completed is sent instead of before.
    post_off_critical_path: bool = False
    #: API replicas behind the load balancer, and how requests of one conversation are routed.
    replicas: int = 1
    routing: Routing = "sticky"
    # -- API service -----------------------------------------------------------------------------
    validate_s: float = 0.0
    validate_per_1k_s: float = 0.0
    state_load_s: float = 0.0
    state_load_per_1k_s: float = 0.0
    render_per_1k_s: float = 0.0
    config_load_s: float = 0.0
    config_cached_s: float = 0.0
    safety_in_s: float = 0.0
    safety_in_per_1k_s: float = 0.0
    safety_out_s: float = 0.0
    safety_out_per_1k_s: float = 0.0
    hops: int = 0
    hop_latency_s: float = 0.0
    persist_s: float = 0.0
    postprocess_s: float = 0.0
    # -- network ---------------------------------------------------------------------------------
    rtt_s: float = 0.0
    connect_s: float = 0.0
    upload_bytes_per_s: float = math.inf
    bytes_per_token: float = BYTES_PER_TOKEN_TEXT
    # -- inference -------------------------------------------------------------------------------
    queue_s: float = 0.0
    prefill_overhead_s: float = 0.0
    prefill_tokens_per_s: float = math.inf
    prefix_cache_hit_share: float = 0.0
    decode_tps: float = 1000.0

    def __post_init__(self) -> None:
        _check(self.transport in ("http", "websocket"), "transport", f"unknown transport {self.transport!r}")
        _check(self.chaining in ("none", "store", "connection"), "chaining", f"unknown {self.chaining!r}")
        _check(self.routing in ("sticky", "random"), "routing", f"unknown routing {self.routing!r}")
        _check(
            self.chaining != "connection" or self.transport == "websocket",
            "chaining",
            "the connection-scoped cache needs transport='websocket'",
        )
        _check(isinstance(self.replicas, int) and self.replicas >= 1, "replicas", "must be an integer >= 1")
        _check(isinstance(self.hops, int) and self.hops >= 0, "hops", "must be an integer >= 0")
        _check(
            isinstance(self.decode_tps, int | float) and self.decode_tps > 0 and math.isfinite(self.decode_tps),
            "decode_tps",
            f"must be a finite number > 0, got {self.decode_tps!r}",
        )
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("float", float) or (isinstance(v, float) and not isinstance(v, bool)):
                _check(isinstance(v, int | float) and not isinstance(v, bool), f.name, "must be a number")
                _check(not math.isnan(v) and v >= 0, f.name, f"must be >= 0, got {v!r}")
        _check(self.upload_bytes_per_s > 0, "upload_bytes_per_s", "must be > 0")
        _check(self.prefill_tokens_per_s > 0, "prefill_tokens_per_s", "must be > 0")
        _check(self.bytes_per_token > 0, "bytes_per_token", "must be > 0")
        _check(0.0 <= self.prefix_cache_hit_share <= 1.0, "prefix_cache_hit_share", "must be within [0, 1]")

    def with_(self, **changes: Any) -> Profile:
        """A copy with some parameters changed (validated; unknown names raise ``ValueError``)."""
        return _replace(self, changes)

    def loopback(self) -> Profile:
        """The same service on loopback: no RTT, no handshake cost, unlimited upload bandwidth.

        The live simulator's network is a real socket, so predictions that are compared with live
        measurements on this machine use this variant.
        """
        return self.with_(rtt_s=0.0, connect_s=0.0, upload_bytes_per_s=math.inf)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _replace(obj: Any, changes: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    for key in changes:
        _check(key in names, key, f"unknown parameter of {type(obj).__name__}")
    return dataclasses.replace(obj, **changes)
