"""The per-turn plan: the ordered critical-path stages of one request, with durations.

A *turn* is one model call: the client sends a request, the API service validates, renders and
classifies it, inference prefills and decodes, post-processing runs, and (for every turn but the last)
the client then runs a tool. :func:`plan_turn` returns the ordered critical-path stages of the request;
the tool time is added by the rollout, since the server never sees it.

Stage order and the TTFT convention: the ``download`` stage (one-way network latency) sits between
``prefill`` and ``decode``. Shifting the whole output stream by a constant one-way delay gives the same
client-side times as overlapping it with decoding, so the first output delta reaches the client at the
start of ``decode``: TTFT = sum of the stages before ``decode``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import chain
from typing import NamedTuple

import numpy as np

from labkit.model.profile import Profile
from labkit.model.workload import TurnSpec


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
_SPEC_FIELDS = len(TurnSpec._fields)


def in_sampling_loop(profile: Profile, turn: TurnSpec, cache: CacheState) -> bool:
    """The prototype's live sampling loop carries this turn: a continuation on the open connection whose state
    survived (with a connection cache, only on a hit: an eviction or a reconnect ends the loop)."""
    return (
        profile.sampling_loop
        and turn.index > 0
        and cache.connection_open
        and (profile.chaining != "connection" or cache.connection_cache_hit)
    )


def request_tokens(profile: Profile, turn: TurnSpec, cache: CacheState) -> int:
    """Tokens the client sends: only new items when the server already holds the conversation."""
    if turn.index > 0 and (
        in_sampling_loop(profile, turn, cache)
        or (
            profile.incremental_input
            and ((profile.chaining == "connection" and cache.connection_cache_hit) or profile.chaining == "store")
        )
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
    # The prototype's live sampling loop: after the first turn there is no per-turn API work at all, and the
    # post-inference work waits for the rollout's last response.
    looping = in_sampling_loop(p, turn, cache)
    pre = 0.0 if looping else 1.0
    post = 0.0 if p.sampling_loop and not turn.final else 1.0
    ws_hit = p.chaining == "connection" and cache.connection_cache_hit and continuing
    sent = request_tokens(p, turn, cache)
    sent_bytes = int(sent * p.bytes_per_token)

    connect = 0.0 if cache.connection_open else p.connect_s
    upload = p.rtt_s / 2 + (sent_bytes / p.upload_bytes_per_s if math.isfinite(p.upload_bytes_per_s) else 0.0)
    validate = pre * (p.validate_s + p.validate_per_1k_s * sent / 1000)
    # Over HTTP, chaining loads the parent from the store; a WebSocket hit has it in memory already.
    stored = p.chaining == "store" and continuing and not looping
    load_state = p.state_load_s + p.state_load_per_1k_s * turn.context_tokens / 1000 if stored else 0.0
    render_hit = ws_hit or (p.rendered_token_cache and continuing and cache.replica_hit)
    rendered = 0 if looping else new if render_hit else conv
    render = p.render_per_1k_s * rendered / 1000
    config = pre * (p.config_cached_s if p.config_cache else p.config_load_s)
    classified = 0 if looping else new if (p.incremental_safety and ws_hit) else conv
    safety_in = pre * (p.safety_in_s + p.safety_in_per_1k_s * classified / 1000)
    hops = pre * p.hops * p.hop_latency_s
    queue = pre * p.queue_s
    # A live sampling loop keeps the conversation's KV state: only the new items are prefilled.
    kv_cached = turn.context_tokens if looping else int(p.kv_hit_share() * turn.context_tokens)
    uncached = conv - kv_cached
    prefill = p.prefill_overhead_s + (uncached / p.prefill_tokens_per_s if math.isfinite(p.prefill_tokens_per_s) else 0)
    out = max(1, turn.output_tokens)
    # Reasoning tokens are decoded before the first visible delta, at the same rate as the output.
    reasoning = turn.reasoning_tokens / p.decode_tps
    decode = (out - 1) / p.decode_tps
    safety_out = post * (p.safety_out_s + p.safety_out_per_1k_s * out / 1000)
    persist = 0.0 if p.post_off_critical_path else post * p.persist_s
    postprocess = 0.0 if p.post_off_critical_path else post * p.postprocess_s
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
        _new(Stage, ("queue", queue, 0, 0, False)),
        _new(Stage, ("prefill", prefill, uncached, 0, kv_cached > 0)),
        _new(Stage, ("reasoning", reasoning, turn.reasoning_tokens, 0, False)),
        _new(Stage, ("download", p.rtt_s / 2, 1, 0, False)),
        _new(Stage, ("decode", decode, out - 1, out_bytes, False)),
        _new(Stage, ("safety_out", safety_out, out, 0, False)),
        _new(Stage, ("persist", persist, 0, 0, False)),
        _new(Stage, ("postprocess", postprocess, 0, 0, False)),
    )


def plan_rollout(
    profile: Profile, specs: Sequence[TurnSpec], cache_states: Sequence[CacheState] | np.ndarray
) -> np.ndarray:
    """The stage durations of :func:`plan_turn` for every turn of a rollout at once: a (turn x stage) array.

    Row ``i`` equals ``[s.duration_s for s in plan_turn(profile, specs[i], cache_states[i])]`` exactly (the same
    operations in the same order, on float64). ``cache_states`` is one :class:`CacheState` per turn, or an
    (turns x 3) boolean array in its field order. For simulators that need durations only: one numpy pass per
    rollout instead of sixteen ``Stage`` objects per turn.
    """
    return _plan_rollout(profile, specs, cache_states, counts=False)[0]


def plan_rollout_stages(
    profile: Profile, specs: Sequence[TurnSpec], cache_states: Sequence[CacheState] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every field of :func:`plan_turn`'s stages for a rollout at once, as (turn x stage) arrays: durations
    (float64), tokens and bytes (int64), cache hits (bool); see :func:`plan_rollout`."""
    d, tokens, nbytes, hits = _plan_rollout(profile, specs, cache_states, counts=True)
    assert tokens is not None and nbytes is not None and hits is not None
    return d, tokens, nbytes, hits


def _plan_rollout(
    profile: Profile, specs: Sequence[TurnSpec], cache_states: Sequence[CacheState] | np.ndarray, *, counts: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    # Mirrors plan_turn line by line; the stage columns are in plan order (connect = 0 .. postprocess = 15).
    p = profile
    n = len(specs)
    if n == 0:
        empty = np.zeros((0, 16), dtype=np.int64)
        return np.zeros((0, 16)), empty, empty, empty.astype(bool)
    # One C-level pass over the whole rollout (``fromiter`` over the flattened fields is several times cheaper
    # than ``np.array`` of the tuples). Token counts are integers far below 2**53: float64 holds them exactly,
    # and every product and quotient below rounds as Python's int-with-float arithmetic does.
    t = np.fromiter(chain.from_iterable(specs), np.float64, n * _SPEC_FIELDS).reshape(n, _SPEC_FIELDS)
    index, ctx, new, output, reasoning_tokens = t[:, 0], t[:, 1], t[:, 2], t[:, 3], t[:, 6]
    conv = ctx + new
    c = np.asarray(cache_states, dtype=bool).reshape(n, 3)
    conn_open, conn_hit, replica_hit = c[:, 0], c[:, 1], c[:, 2]
    continuing = index > 0
    chain_conn = p.chaining == "connection"
    looping = continuing & conn_open & (conn_hit | (not chain_conn)) if p.sampling_loop else np.zeros(n, dtype=bool)
    pre = np.where(looping, 0.0, 1.0)
    post = np.where(t[:, 5] > 0, 1.0, 0.0) if p.sampling_loop else np.ones(n)
    ws_hit = conn_hit & continuing if chain_conn else np.zeros(n, dtype=bool)
    incremental = p.incremental_input and (chain_conn or p.chaining == "store")
    incr_hit = (conn_hit if chain_conn else np.ones(n, dtype=bool)) if incremental else np.zeros(n, dtype=bool)
    sent = np.where(continuing & (looping | incr_hit), new, conv)
    sent_bytes = np.trunc(sent * p.bytes_per_token)

    d = np.empty((n, 16))
    d[:, 0] = np.where(conn_open, 0.0, p.connect_s)
    d[:, 1] = p.rtt_s / 2 + (sent_bytes / p.upload_bytes_per_s if math.isfinite(p.upload_bytes_per_s) else 0.0)
    d[:, 2] = pre * (p.validate_s + p.validate_per_1k_s * sent / 1000)
    stored = continuing & ~looping if p.chaining == "store" else np.zeros(n, dtype=bool)
    d[:, 3] = np.where(stored, p.state_load_s + p.state_load_per_1k_s * ctx / 1000, 0.0)
    render_hit = ws_hit | (continuing & replica_hit) if p.rendered_token_cache else ws_hit
    rendered = np.where(looping, 0.0, np.where(render_hit, new, conv))
    d[:, 4] = p.render_per_1k_s * rendered / 1000
    d[:, 5] = pre * (p.config_cached_s if p.config_cache else p.config_load_s)
    classified = np.where(looping, 0.0, np.where(ws_hit, new, conv) if p.incremental_safety else conv)
    d[:, 6] = pre * (p.safety_in_s + p.safety_in_per_1k_s * classified / 1000)
    d[:, 7] = pre * p.hops * p.hop_latency_s
    d[:, 8] = pre * p.queue_s
    kv_cached = np.where(looping, ctx, np.trunc(p.kv_hit_share() * ctx))
    uncached = conv - kv_cached
    d[:, 9] = p.prefill_overhead_s + (uncached / p.prefill_tokens_per_s if math.isfinite(p.prefill_tokens_per_s) else 0)
    out = np.maximum(1.0, output)
    d[:, 10] = reasoning_tokens / p.decode_tps
    d[:, 11] = p.rtt_s / 2
    d[:, 12] = (out - 1) / p.decode_tps
    d[:, 13] = post * (p.safety_out_s + p.safety_out_per_1k_s * out / 1000)
    d[:, 14] = 0.0 if p.post_off_critical_path else post * p.persist_s
    d[:, 15] = 0.0 if p.post_off_critical_path else post * p.postprocess_s
    if not counts:
        return d, None, None, None
    tokens = np.zeros((n, 16), dtype=np.int64)
    nbytes = np.zeros((n, 16), dtype=np.int64)
    hits = np.zeros((n, 16), dtype=bool)
    tokens[:, 1] = tokens[:, 2] = sent
    nbytes[:, 1] = sent_bytes
    hits[:, 0] = conn_open
    hits[:, 1] = hits[:, 2] = sent < conv
    tokens[:, 3] = np.where(stored, ctx, 0)
    tokens[:, 4] = rendered
    hits[:, 4] = render_hit
    hits[:, 5] = p.config_cache
    tokens[:, 6] = classified
    hits[:, 6] = classified < conv
    tokens[:, 9] = uncached
    hits[:, 9] = kv_cached > 0
    tokens[:, 10] = reasoning_tokens
    tokens[:, 11] = 1
    tokens[:, 12] = out - 1
    nbytes[:, 12] = np.trunc(out * p.bytes_per_token)
    tokens[:, 13] = out
    return d, tokens, nbytes, hits


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
