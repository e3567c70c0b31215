"""plan_rollout (the vectorised plan) equals plan_turn stage by stage, and the fast turn specs equal the old ones."""

import itertools
import math

import numpy as np
import pytest

from labkit.model import CacheState, load_profile, load_workload, plan_turn, preset_names, workload_names
from labkit.model.plan import plan_rollout, plan_rollout_stages
from labkit.model.workload import Workload

ALL_STATES = [CacheState(*bits) for bits in itertools.product((False, True), repeat=3)]

# Variants that switch on the branches the presets may not reach: reasoning, steering, parallel calls, a
# sampling loop over each kind of chaining, incremental safety and input, finite and infinite rates.
PROFILE_VARIANTS = [
    {},
    {"sampling_loop": True},
    {"sampling_loop": True, "chaining": "store"},
    {"incremental_input": True, "incremental_safety": True, "rendered_token_cache": True},
    {"post_off_critical_path": True, "engine_pinning": True},
    {"upload_bytes_per_s": math.inf, "prefill_tokens_per_s": math.inf},
]
WORKLOADS = [
    load_workload("codex_bugfix"),
    load_workload("codex_realistic"),
    load_workload("fast_test"),
    Workload("mixed", turns=9, reasoning_tokens=500, parallel_tool_calls=2.5, steer_rate=0.4, token_sigma=0.5),
    Workload("exact", turns=4, token_sigma=0.0, tool_time_sigma=0.0),
]


def _profiles():
    for name in preset_names():
        base = load_profile(name)
        for changes in PROFILE_VARIANTS:
            try:
                yield f"{name}{changes}", base.with_(**changes)
            except ValueError:
                continue  # a variant the profile's own rules forbid


@pytest.mark.parametrize(("label", "profile"), list(_profiles()))
def test_plan_rollout_equals_plan_turn(label, profile):
    rng = np.random.default_rng(7)
    for w in WORKLOADS:
        for seed in (0, 1, 2):
            specs = w.turn_specs(seed)
            # Every cache state on every turn, and a random mix per turn.
            runs = [[s] * len(specs) for s in ALL_STATES]
            runs.append([ALL_STATES[int(i)] for i in rng.integers(0, len(ALL_STATES), len(specs))])
            for states in runs:
                got = plan_rollout(profile, specs, states)
                as_array = plan_rollout(profile, specs, np.array(states, dtype=bool))
                assert got.shape == (len(specs), 16)
                for spec, cache, row, row2 in zip(specs, states, got.tolist(), as_array.tolist(), strict=True):
                    want = [s.duration_s for s in plan_turn(profile, spec, cache)]
                    assert row == want, (label, w.name, seed, spec, cache)
                    assert row2 == want


def test_plan_rollout_empty():
    assert plan_rollout(load_profile("websocket"), (), ()).shape == (0, 16)


def _old_turn_specs(w: Workload, seed: int):
    """The turn specs as the first vectorised version drew them (numpy scalars converted one by one)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A5C]))
    n = w.turns

    def tokens(mean, size):
        if w.token_sigma == 0:
            return np.full(size, mean, dtype=np.int64)
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
    reasoning = tokens(w.reasoning_tokens, n) if w.reasoning_tokens else np.zeros(n, dtype=np.int64)
    calls = np.ones(n, dtype=np.int64)
    if w.parallel_tool_calls > 1:
        calls += rng.poisson(w.parallel_tool_calls - 1, n)
        for j in map(int, np.flatnonzero(calls > 1)):
            extra = int(calls[j]) - 1
            if w.tool_time_sigma == 0:
                more = np.full(extra, w.tool_time_median_s)
            else:
                more = rng.lognormal(math.log(max(w.tool_time_median_s, 1e-12)), w.tool_time_sigma, extra)
            tools[j] = max(float(tools[j]), float(np.minimum(more, w.tool_time_max_s).max()))
            if w.tool_output_tokens:
                tool_outs[j] += int(tokens(w.tool_output_tokens, extra).sum())
    steered = rng.random(n) < w.steer_rate if w.steer_rate > 0 else np.zeros(n, dtype=bool)
    specs = []
    context = 0
    new = w.initial_context_tokens
    for i in range(n):
        final = i == n - 1
        steer = bool(steered[i]) and not final
        out = max(1, round(int(outs[i]) * w.steer_at)) if steer else int(outs[i])
        tool_s = 0.0 if final or steer else float(tools[i])
        n_calls = 0 if final or steer else int(calls[i])
        specs.append((i, context, int(new), out, tool_s, final, int(reasoning[i]), n_calls, steer))
        context += int(new) + out
        new = int(tool_outs[i])
    return specs


@pytest.mark.parametrize("name", [*workload_names(), "mixed", "exact"])
def test_turn_specs_unchanged(name):
    w = next((x for x in WORKLOADS if x.name == name), None) or load_workload(name)
    for seed in [*range(40), 1_000_003 * 5 + 17, 2**40 + 3]:
        new = w.turn_specs(seed)
        old = _old_turn_specs(w, seed)
        assert [tuple(s) for s in new] == old
        # Same Python types as before: ints, floats and bools, not numpy scalars.
        assert all(type(a) is type(b) for s, o in zip(new, old, strict=True) for a, b in zip(s, o, strict=True))


@pytest.mark.parametrize(("label", "profile"), list(_profiles()))
def test_plan_rollout_stages_equal_plan_turn(label, profile):
    rng = np.random.default_rng(11)
    for w in WORKLOADS:
        specs = w.turn_specs(5)
        for states in [
            *([s] * len(specs) for s in ALL_STATES),
            [ALL_STATES[int(i)] for i in rng.integers(0, 8, len(specs))],
        ]:
            d, tokens, nbytes, hits = plan_rollout_stages(profile, specs, states)
            for i, (spec, cache) in enumerate(zip(specs, states, strict=True)):
                plan = plan_turn(profile, spec, cache)
                assert d[i].tolist() == [s.duration_s for s in plan]
                assert tokens[i].tolist() == [s.tokens for s in plan], (label, w.name, spec, cache)
                assert nbytes[i].tolist() == [s.bytes for s in plan]
                assert hits[i].tolist() == [bool(s.cache_hit) for s in plan]
