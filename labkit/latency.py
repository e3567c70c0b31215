"""The one latency model: what one turn of an agent rollout costs, stage by stage.

Pure Python, no I/O beyond reading the calibration files in ``data/``. Both clocks consume it:
``labkit.sim`` runs plans on SimPy's simulated clock, ``labkit.server`` on the wall clock.

A *turn* is one model call: the client sends a request, the API service validates, renders and
classifies it, inference prefills and decodes, post-processing runs, and (for every turn but the last)
the client then runs a tool. ``plan_turn`` returns the ordered critical-path stages of the request; the
tool time is added by the rollout, since the server never sees it.

Stage order and the TTFT convention: the ``download`` stage (one-way network latency) sits between
``prefill`` and ``decode``. Shifting the whole output stream by a constant one-way delay gives the same
client-side times as overlapping it with decoding, so the first output delta reaches the client at the
start of ``decode``: TTFT = sum of the stages before ``decode``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CALIBRATION_FILE = DATA_DIR / "calibration.toml"
WORKLOADS_FILE = DATA_DIR / "workloads.toml"

#: Bytes of request JSON per token of conversation (text is ~4 bytes a token; JSON adds a little).
BYTES_PER_TOKEN_TEXT = 4

# Stage names, in critical-path order. Categories follow the seed's three-way split (API services,
# inference, client tools) with the network carved out of "API services" so it can be shown apart.
STAGES: tuple[str, ...] = (
    "connect",
    "upload",
    "validate",
    "load_state",
    "render",
    "config",
    "safety_in",
    "hops",
    "queue",
    "prefill",
    "download",
    "decode",
    "safety_out",
    "persist",
    "postprocess",
    "tool",
)
NETWORK_STAGES = frozenset({"connect", "upload", "download"})
API_STAGES = frozenset(
    {"validate", "load_state", "render", "config", "safety_in", "hops", "safety_out", "persist", "postprocess"}
)
INFERENCE_STAGES = frozenset({"queue", "prefill", "decode"})
CLIENT_STAGES = frozenset({"tool"})
#: Stages the server emulates with a clock (the network stages are real on a live socket).
SERVER_STAGES = tuple(s for s in STAGES if s not in NETWORK_STAGES and s not in CLIENT_STAGES)


def stage_category(stage: str) -> str:
    """``network`` | ``api`` | ``inference`` | ``client`` | ``other`` (live-only coarse stages)."""
    if stage in NETWORK_STAGES:
        return "network"
    if stage in API_STAGES:
        return "api"
    if stage in INFERENCE_STAGES:
        return "inference"
    if stage in CLIENT_STAGES:
        return "client"
    return "other"


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


class TurnSpec(NamedTuple):
    """One model call of a rollout, as the latency model needs it."""

    index: int
    #: Tokens of conversation that precede this request (instructions, earlier items, earlier outputs).
    context_tokens: int
    #: Tokens of the items this request adds (the user task on turn 0, a tool output afterwards).
    new_input_tokens: int
    #: Tokens the model generates in this turn (function-call arguments or the final message).
    output_tokens: int
    #: Client-side tool time after this turn (0 for the final turn).
    tool_s: float
    #: The last turn answers with a message instead of calling a tool.
    final: bool

    @property
    def conversation_tokens(self) -> int:
        return self.context_tokens + self.new_input_tokens


class CacheState(NamedTuple):
    """What the serving side already holds when a turn's request arrives."""

    #: A transport connection is already open (keep-alive pool or WebSocket).
    connection_open: bool = False
    #: WebSocket mode: previous_response_id matches the connection-scoped cache.
    connection_cache_hit: bool = False
    #: HTTP: the request landed on the replica holding this conversation's rendered tokens.
    replica_hit: bool = False


class Stage(NamedTuple):
    name: str
    duration_s: float
    tokens: int
    bytes: int
    cache_hit: bool


TurnPlan = tuple[Stage, ...]
_new = tuple.__new__


def request_tokens(profile: Profile, turn: TurnSpec, cache: CacheState) -> int:
    """Tokens the client sends: only new items when the server already holds the conversation."""
    if turn.index > 0 and (
        (profile.chaining == "connection" and cache.connection_cache_hit) or profile.chaining == "store"
    ):
        return turn.new_input_tokens
    return turn.conversation_tokens


def plan_turn(profile: Profile, turn: TurnSpec, cache: CacheState) -> TurnPlan:
    """The ordered critical-path stages of one request, with durations in seconds.

    Zero-duration stages are kept so every plan has the same shape; consumers may skip them.
    """
    p = profile
    conv = turn.conversation_tokens
    new = turn.new_input_tokens
    continuing = turn.index > 0
    ws_hit = p.chaining == "connection" and cache.connection_cache_hit and continuing
    sent = request_tokens(p, turn, cache)
    sent_bytes = int(sent * p.bytes_per_token)

    connect = 0.0 if cache.connection_open else p.connect_s
    upload = p.rtt_s / 2 + (sent_bytes / p.upload_bytes_per_s if math.isfinite(p.upload_bytes_per_s) else 0.0)
    validate = p.validate_s + p.validate_per_1k_s * sent / 1000
    # Over HTTP, chaining loads the parent from the store; a WebSocket hit has it in memory already.
    stored = p.chaining == "store" and continuing
    load_state = p.state_load_s + p.state_load_per_1k_s * turn.context_tokens / 1000 if stored else 0.0
    render_hit = ws_hit or (p.rendered_token_cache and continuing and cache.replica_hit)
    rendered = new if render_hit else conv
    render = p.render_per_1k_s * rendered / 1000
    config = p.config_cached_s if p.config_cache else p.config_load_s
    classified = new if (p.incremental_safety and ws_hit) else conv
    safety_in = p.safety_in_s + p.safety_in_per_1k_s * classified / 1000
    hops = p.hops * p.hop_latency_s
    kv_cached = int(p.prefix_cache_hit_share * turn.context_tokens)
    uncached = conv - kv_cached
    prefill = p.prefill_overhead_s + (uncached / p.prefill_tokens_per_s if math.isfinite(p.prefill_tokens_per_s) else 0)
    out = max(1, turn.output_tokens)
    decode = (out - 1) / p.decode_tps
    safety_out = p.safety_out_s + p.safety_out_per_1k_s * out / 1000
    persist = 0.0 if p.post_off_critical_path else p.persist_s
    postprocess = 0.0 if p.post_off_critical_path else p.postprocess_s
    out_bytes = int(out * p.bytes_per_token)

    # tuple.__new__ builds the same Stage objects without NamedTuple's Python-level __new__: plan_turn
    # runs once per simulated turn and this is most of its cost.
    return (
        _new(Stage, ("connect", connect, 0, 0, cache.connection_open)),
        _new(Stage, ("upload", upload, sent, sent_bytes, sent < conv)),
        _new(Stage, ("validate", validate, sent, 0, sent < conv)),
        _new(Stage, ("load_state", load_state, turn.context_tokens if stored else 0, 0, False)),
        _new(Stage, ("render", render, rendered, 0, render_hit)),
        _new(Stage, ("config", config, 0, 0, p.config_cache)),
        _new(Stage, ("safety_in", safety_in, classified, 0, classified < conv)),
        _new(Stage, ("hops", hops, 0, 0, False)),
        _new(Stage, ("queue", p.queue_s, 0, 0, False)),
        _new(Stage, ("prefill", prefill, uncached, 0, kv_cached > 0)),
        _new(Stage, ("download", p.rtt_s / 2, 1, 0, False)),
        _new(Stage, ("decode", decode, out - 1, out_bytes, False)),
        _new(Stage, ("safety_out", safety_out, out, 0, False)),
        _new(Stage, ("persist", persist, 0, 0, False)),
        _new(Stage, ("postprocess", postprocess, 0, 0, False)),
    )


def plan_ttft_s(plan: TurnPlan) -> float:
    """Time from the start of the turn to the first output delta at the client."""
    total = 0.0
    for stage in plan:
        if stage.name == "decode":
            return total
        total += stage.duration_s
    raise ValueError("plan: has no decode stage")


def plan_total_s(plan: TurnPlan) -> float:
    return sum(s.duration_s for s in plan)


def hit_probability(profile: Profile) -> float:
    """Chance that an HTTP continuation lands on the replica that holds its conversation's caches."""
    return 1.0 if profile.routing == "sticky" else 1.0 / profile.replicas


# -- workloads --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """An agent rollout: ``turns`` model calls, each but the last followed by a client-side tool call."""

    name: str
    turns: int = 25
    #: Instructions, tool definitions and the task: the first request's input.
    initial_context_tokens: int = 12_000
    #: Tokens a tool output adds to the conversation (the next request's new input), mean.
    tool_output_tokens: int = 900
    #: Tokens generated per tool-calling turn, mean; and for the final answer.
    output_tokens: int = 300
    final_output_tokens: int = 600
    #: Relative spread (lognormal sigma) of token counts; 0 makes them exact.
    token_sigma: float = 0.3
    #: Tool time: lognormal with this median and sigma, capped at ``tool_time_max_s``.
    tool_time_median_s: float = 0.2
    tool_time_sigma: float = 0.8
    tool_time_max_s: float = 30.0
    seed: int = 0
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _check(isinstance(self.turns, int) and self.turns >= 1, "turns", f"must be an integer >= 1, got {self.turns!r}")
        for name in ("initial_context_tokens", "tool_output_tokens", "output_tokens", "final_output_tokens"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 0, name, f"must be an integer >= 0, got {v!r}")
        _check(self.output_tokens >= 1 and self.final_output_tokens >= 1, "output_tokens", "must be >= 1")
        for name in ("token_sigma", "tool_time_median_s", "tool_time_sigma", "tool_time_max_s"):
            v = getattr(self, name)
            _check(isinstance(v, int | float) and not math.isnan(v) and v >= 0, name, f"must be >= 0, got {v!r}")

    def with_(self, **changes: Any) -> Workload:
        return _replace(self, changes)

    @property
    def tool_calls(self) -> int:
        return self.turns - 1

    def turn_specs(self, seed: int | None = None) -> tuple[TurnSpec, ...]:
        """The rollout's turns, deterministic for ``seed`` (default: the workload's own)."""
        return _turn_specs(self, self.seed if seed is None else seed)

    def mean_tool_time_s(self) -> float:
        """Expected tool time per call (lognormal mean, ignoring the cap)."""
        return self.tool_time_median_s * math.exp(self.tool_time_sigma**2 / 2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Bounded: the DES asks for one seed per simulated rollout, so an unbounded cache would grow with every run.
@lru_cache(maxsize=4096)
def _turn_specs(w: Workload, seed: int) -> tuple[TurnSpec, ...]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A5C]))
    n = w.turns

    def tokens(mean: int, size: int) -> np.ndarray:
        if w.token_sigma == 0:
            return np.full(size, mean, dtype=np.int64)
        # Lognormal with the requested mean: mu = ln(mean) - sigma^2/2.
        mu = math.log(max(mean, 1)) - w.token_sigma**2 / 2
        return np.maximum(1, np.rint(rng.lognormal(mu, w.token_sigma, size))).astype(np.int64)

    outs = tokens(w.output_tokens, n)
    outs[-1] = tokens(w.final_output_tokens, 1)[0]
    tool_outs = tokens(w.tool_output_tokens, n) if w.tool_output_tokens else np.zeros(n, dtype=np.int64)
    if w.tool_time_sigma == 0:
        tools = np.full(n, w.tool_time_median_s)
    else:
        tools = rng.lognormal(math.log(max(w.tool_time_median_s, 1e-12)), w.tool_time_sigma, n)
    tools = np.minimum(tools, w.tool_time_max_s)
    specs: list[TurnSpec] = []
    context = 0
    new = w.initial_context_tokens
    for i in range(n):
        final = i == n - 1
        specs.append(TurnSpec(i, context, int(new), int(outs[i]), 0.0 if final else float(tools[i]), final))
        context += int(new) + int(outs[i])
        new = tool_outs[i]
    return tuple(specs)


# -- loading presets from data/ ---------------------------------------------------------------------


@cache
def _load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def calibration() -> dict[str, Any]:
    """The parsed ``data/calibration.toml``: published facts, parameters with provenance, presets."""
    return _load_toml(CALIBRATION_FILE)


def parameter_table() -> list[dict[str, Any]]:
    """One row per default parameter: name, value, unit, provenance, source, note."""
    rows = []
    for name, entry in calibration()["parameters"].items():
        rows.append({"parameter": name, **entry})
    return rows


def published_facts() -> dict[str, dict[str, Any]]:
    return dict(calibration()["published"])


def preset_names() -> tuple[str, ...]:
    return tuple(calibration()["presets"])


def workload_names() -> tuple[str, ...]:
    return tuple(_load_toml(WORKLOADS_FILE)["workloads"])


def _preset_values(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    presets = calibration()["presets"]
    _check(name in presets, "profile", f"unknown preset {name!r}; known: {', '.join(presets)}")
    _check(name not in seen, "profile", f"preset {name!r} inherits from itself")
    entry = dict(presets[name])
    base = entry.pop("base", None)
    entry.pop("description", None)
    if base is None:
        values = {k: v["value"] for k, v in calibration()["parameters"].items()}
    else:
        values = _preset_values(base, (*seen, name))
    values.update(entry)
    return values


def load_profile(name: str, **overrides: Any) -> Profile:
    """A preset from ``data/calibration.toml`` (``http_baseline``, ``http_optimized``, ``http_chained``,
    ``websocket``), with optional overrides such as ``decode_tps=1000``."""
    values = _preset_values(name)
    values = {k: (math.inf if v == "inf" else v) for k, v in values.items()}
    profile = Profile(name=name, **values)
    return profile.with_(**overrides) if overrides else profile


def preset_description(name: str) -> str:
    _preset_values(name)
    return str(calibration()["presets"][name].get("description", ""))


def load_workload(name: str, **overrides: Any) -> Workload:
    """A workload preset from ``data/workloads.toml`` (e.g. ``codex_bugfix``), with overrides."""
    table = _load_toml(WORKLOADS_FILE)["workloads"]
    _check(name in table, "workload", f"unknown workload {name!r}; known: {', '.join(table)}")
    w = Workload(name=name, **table[name])
    return w.with_(**overrides) if overrides else w


# -- token estimates shared by the live server and the clients ------------------------------------


def estimate_tokens(text: str) -> int:
    """Tokens in a text, estimated as one per 4 UTF-8 bytes (rounded up).

    The live server counts conversation tokens with this, and the agent runner builds payloads whose
    estimate equals the workload's token counts, so a live run and a simulation see the same sizes.
    """
    return -(-len(text.encode()) // BYTES_PER_TOKEN_TEXT)


def filler_text(n_tokens: int, salt: int = 0) -> str:
    """A deterministic text of exactly ``n_tokens`` estimated tokens (4-byte words)."""
    if n_tokens <= 0:
        return ""
    words = ("tok ", "abc ", "xyz ", "foo ", "bar ", "qux ", "lab ", "kit ")
    return "".join(words[(i + salt) % len(words)] for i in range(n_tokens))
