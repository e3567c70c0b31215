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
    #: When the server holds the conversation (``chaining`` store, or a connection-cache hit), the client
    #: sends only the new input items. Off: it sends the whole conversation anyway (the baseline's habit).
    incremental_input: bool = True
    #: The prototype of OpenAI's engineering post: the sampling loop stays alive across tool calls
    #: (``response.done`` / ``response.append``). After the first turn a request skips every pre-inference
    #: stage (validate, load_state, render, config, safety_in, hops) and inference admission (queue), its KV
    #: state is still resident (only the new items are prefilled), and post-inference work (safety_out,
    #: persist, postprocess) runs once, on the final turn.
    sampling_loop: bool = False
    #: Every request of a conversation reaches the same inference engine, so its prefix (KV) cache holds
    #: ``pinned_prefix_cache_hit_share`` of the earlier conversation instead of ``prefix_cache_hit_share``.
    engine_pinning: bool = False
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
    pinned_prefix_cache_hit_share: float = 1.0
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
        for name in ("prefix_cache_hit_share", "pinned_prefix_cache_hit_share"):
            _check(0.0 <= getattr(self, name) <= 1.0, name, "must be within [0, 1]")

    def kv_hit_share(self) -> float:
        """Share of the earlier conversation found in the inference prefix (KV) cache."""
        return self.pinned_prefix_cache_hit_share if self.engine_pinning else self.prefix_cache_hit_share

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


# -- mechanisms ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mechanism:
    """One mechanism of a strategy: a named group of :class:`Profile` fields that switch it on.

    A strategy (a preset) is a set of mechanisms; two profiles differ by the mechanisms whose fields differ.
    The groups partition the fields they name, so each field belongs to at most one mechanism.
    """

    name: str
    label: str
    fields: tuple[str, ...]
    doc: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The mechanisms of OpenAI's engineering post, in the order the story adds them.
MECHANISMS: tuple[Mechanism, ...] = (
    Mechanism(
        "persistent_connection",
        "persistent connection",
        ("keep_alive",),
        "no TCP+TLS connect per request (HTTP keep-alive; a WebSocket is persistent by construction)",
    ),
    Mechanism(
        "rendered_token_cache",
        "rendered-token cache",
        ("rendered_token_cache",),
        "the conversation prefix is not re-rendered into tokens when the replica holds it",
    ),
    Mechanism("config_cache", "config cache", ("config_cache",), "model configuration held in memory"),
    Mechanism("fewer_hops", "fewer hops", ("hops", "hop_latency_s"), "internal service hops removed"),
    Mechanism(
        "faster_safety",
        "faster safety",
        ("safety_in_s", "safety_in_per_1k_s", "safety_out_s", "safety_out_per_1k_s"),
        "faster input and output safety classifiers",
    ),
    Mechanism(
        "incremental_input",
        "incremental input",
        ("incremental_input",),
        "only the new input items travel and are validated when the server holds the conversation",
    ),
    Mechanism(
        "connection_cache",
        "connection-scoped cache",
        ("transport", "chaining", "incremental_safety"),
        "the server holds the conversation: WebSocket mode's connection cache (render and classify only the "
        "new items, no state load) or, with chaining='store', previous_response_id with a store load",
    ),
    Mechanism(
        "post_off_critical_path",
        "post-inference off the critical path",
        ("post_off_critical_path",),
        "persistence and billing after response.completed",
    ),
    Mechanism(
        "engine_pinning",
        "engine pinning",
        ("engine_pinning", "pinned_prefix_cache_hit_share"),
        "one inference engine per conversation: more of the prefix found in the KV cache",
    ),
    Mechanism(
        "sampling_loop",
        "persistent sampling loop",
        ("sampling_loop",),
        "the prototype: pre- and post-inference work once per rollout, KV state kept between turns",
    ),
    Mechanism(
        "service_costs",
        "leaner service",
        (
            "validate_s",
            "validate_per_1k_s",
            "state_load_s",
            "state_load_per_1k_s",
            "render_per_1k_s",
            "config_load_s",
            "config_cached_s",
            "persist_s",
            "postprocess_s",
        ),
        "cheaper per-request service work (validation, rendering, config, state, persistence, billing)",
    ),
)
MECHANISM_NAMES: tuple[str, ...] = tuple(m.name for m in MECHANISMS)
#: Differing fields that belong to no mechanism are grouped under this name.
OTHER = "other"


def mechanism(name: str) -> Mechanism:
    for m in MECHANISMS:
        if m.name == name:
            return m
    raise ValueError(f"mechanism: unknown {name!r}; known: {', '.join(MECHANISM_NAMES)}")


def differing_mechanisms(a: Profile, b: Profile) -> dict[str, tuple[str, ...]]:
    """The mechanisms whose fields differ between two profiles, ``{name: fields}`` in :data:`MECHANISMS` order;
    differing fields of no mechanism come last under :data:`OTHER` (``name`` is never compared)."""
    da, db = a.to_dict(), b.to_dict()
    differ = {k for k in da if k != "name" and da[k] != db[k]}
    out: dict[str, tuple[str, ...]] = {}
    for m in MECHANISMS:
        if differ & set(m.fields):
            out[m.name] = m.fields
    grouped = {f for m in MECHANISMS for f in m.fields}
    rest = tuple(sorted(differ - grouped))
    if rest:
        out[OTHER] = rest
    return out
