import itertools
import math

import pytest

from labkit.model import (
    STAGES,
    CacheState,
    Profile,
    TurnSpec,
    Workload,
    load_profile,
    load_workload,
    parameter_table,
    plan_total_s,
    plan_ttft_s,
    plan_turn,
    preset_names,
    published_facts,
    request_tokens,
    workload_names,
)
from labkit.wire.tokens import estimate_tokens, filler_text

TURN = TurnSpec(index=3, context_tokens=20_000, new_input_tokens=1_000, output_tokens=300, tool_s=0.2, final=False)
WARM = CacheState(connection_open=True, connection_cache_hit=True, replica_hit=True)


def test_presets_load_and_follow_the_story():
    assert set(preset_names()) >= {"http_baseline", "http_optimized", "http_chained", "websocket"}
    base, opt, chained, ws = (load_profile(n) for n in ("http_baseline", "http_optimized", "http_chained", "websocket"))
    assert not base.rendered_token_cache and not base.config_cache
    assert opt.rendered_token_cache and opt.config_cache and opt.hops < base.hops
    assert opt.safety_in_s < base.safety_in_s
    assert chained.chaining == "store" and chained.transport == "http"
    assert ws.transport == "websocket" and ws.chaining == "connection" and ws.post_off_critical_path


def test_plan_has_every_request_stage_in_order():
    plan = plan_turn(load_profile("http_baseline"), TURN, WARM)
    assert [s.name for s in plan] == [s for s in STAGES if s != "tool"]
    assert all(s.duration_s >= 0 for s in plan)
    assert plan_ttft_s(plan) < plan_total_s(plan)


def test_stateless_http_resends_and_rerenders_everything():
    base = load_profile("http_baseline")
    plan = {s.name: s for s in plan_turn(base, TURN, WARM)}
    assert plan["upload"].tokens == TURN.conversation_tokens
    assert plan["render"].tokens == TURN.conversation_tokens
    assert plan["safety_in"].tokens == TURN.conversation_tokens
    assert plan["load_state"].duration_s == 0


def test_websocket_hit_sends_only_new_items_and_is_incremental():
    ws = load_profile("websocket")
    plan = {s.name: s for s in plan_turn(ws, TURN, WARM)}
    assert plan["upload"].tokens == TURN.new_input_tokens
    assert plan["render"].tokens == TURN.new_input_tokens and plan["render"].cache_hit
    assert plan["safety_in"].tokens == TURN.new_input_tokens
    assert plan["persist"].duration_s == 0 and plan["postprocess"].duration_s == 0
    assert plan["connect"].duration_s == 0
    # A miss (after a reconnect) falls back to the full conversation.
    miss = {s.name: s for s in plan_turn(ws, TURN, CacheState(False, False, False))}
    assert miss["upload"].tokens == TURN.conversation_tokens
    assert miss["connect"].duration_s == ws.connect_s
    assert plan_total_s(tuple(miss.values())) > plan_total_s(tuple(plan.values()))


def test_http_chaining_loads_state_and_rendered_cache_needs_the_replica():
    chained = load_profile("http_chained")
    hit = {s.name: s for s in plan_turn(chained, TURN, WARM)}
    miss = {s.name: s for s in plan_turn(chained, TURN, WARM._replace(replica_hit=False))}
    assert hit["load_state"].duration_s > 0
    assert request_tokens(chained, TURN, WARM) == TURN.new_input_tokens
    assert hit["render"].tokens == TURN.new_input_tokens
    assert miss["render"].tokens == TURN.conversation_tokens
    assert miss["render"].duration_s > hit["render"].duration_s


def test_prefix_cache_shortens_prefill():
    p = load_profile("http_baseline")
    cold = {s.name: s for s in plan_turn(p.with_(prefix_cache_hit_share=0.0), TURN, WARM)}
    warm = {s.name: s for s in plan_turn(p.with_(prefix_cache_hit_share=0.9), TURN, WARM)}
    assert warm["prefill"].duration_s < cold["prefill"].duration_s
    assert warm["prefill"].tokens == TURN.conversation_tokens - int(0.9 * TURN.context_tokens)


def test_decode_time_follows_tps():
    p = load_profile("websocket")
    for tps in (65, 1000, 4000):
        plan = {s.name: s for s in plan_turn(p.with_(decode_tps=tps), TURN, WARM)}
        assert math.isclose(plan["decode"].duration_s, (TURN.output_tokens - 1) / tps)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"decode_tps": -1.0}, "decode_tps"),
        ({"decode_tps": 0}, "decode_tps"),
        ({"hops": -1}, "hops"),
        ({"replicas": 0}, "replicas"),
        ({"validate_s": -0.1}, "validate_s"),
        ({"prefix_cache_hit_share": 1.5}, "prefix_cache_hit_share"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"routing": "round-robin"}, "routing"),
        ({"no_such_param": 1}, "no_such_param"),
    ],
)
def test_bad_profile_parameters_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        load_profile("http_baseline").with_(**changes)


def test_connection_cache_needs_websocket():
    with pytest.raises(ValueError, match="^chaining"):
        Profile(name="x", transport="http", chaining="connection")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"turns": 0}, "turns"),
        ({"turns": 2.5}, "turns"),
        ({"output_tokens": 0}, "output_tokens"),
        ({"tool_time_median_s": -1}, "tool_time_median_s"),
    ],
)
def test_bad_workload_parameters_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        load_workload("codex_bugfix").with_(**changes)


def test_unknown_presets_name_the_field():
    with pytest.raises(ValueError, match="^profile"):
        load_profile("nope")
    with pytest.raises(ValueError, match="^workload"):
        load_workload("nope")


def test_workload_is_deterministic_for_a_seed_and_grows_the_context(codex):
    assert codex.turns >= 21 and codex.tool_calls >= 20
    a, b, c = codex.turn_specs(1), codex.turn_specs(1), codex.turn_specs(2)
    assert a == b and a != c
    for prev, cur in itertools.pairwise(a):
        assert cur.context_tokens == prev.context_tokens + prev.new_input_tokens + prev.output_tokens
    assert a[-1].final and a[-1].tool_s == 0 and all(not t.final and t.tool_s > 0 for t in a[:-1])
    assert a[0].new_input_tokens == codex.initial_context_tokens


def test_exact_workload_without_spread():
    w = Workload(name="w", turns=4, token_sigma=0.0, tool_time_sigma=0.0, tool_time_median_s=0.5)
    specs = w.turn_specs()
    assert [s.output_tokens for s in specs] == [w.output_tokens] * 3 + [w.final_output_tokens]
    assert [s.tool_s for s in specs] == [0.5, 0.5, 0.5, 0.0]


def test_calibration_data_has_provenance_for_every_parameter():
    rows = parameter_table()
    profile_fields = set(Profile.__dataclass_fields__) - {"name"}
    assert {r["parameter"] for r in rows} == profile_fields
    for r in rows:
        assert r["provenance"] in {"published", "derived", "assumed"}, r
        assert r["unit"] and "source" in r
    facts = published_facts()
    assert facts["tps_gpt5"]["value"] == 65 and facts["tps_codex_spark_burst"]["value"] == 4000
    assert facts["ttft_reduction_critical_path"]["value"] == 0.45
    assert facts["e2e_reduction_websocket"]["value"] == 0.40
    assert all(f["source"] for f in facts.values())
    assert set(workload_names()) >= {"codex_bugfix", "fast_test"}


def test_token_estimates_and_filler_agree():
    for n in (0, 1, 7, 1000):
        assert estimate_tokens(filler_text(n, salt=n)) == n
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("é") == 1


def test_profile_files_work_wherever_a_preset_name_does(tmp_path):
    from labkit.model import load_profile

    f = tmp_path / "mine.toml"
    f.write_text('[profile]\nbase = "websocket"\ndecode_tps = { value = 812.5, provenance = "fitted" }\nrtt_s = 0.03\n')
    p = load_profile(str(f), hops=1)
    assert (p.name, p.decode_tps, p.rtt_s, p.transport, p.hops) == ("mine", 812.5, 0.03, "websocket", 1)
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile]\nnot_a_field = 1\n")
    with pytest.raises(ValueError, match="not_a_field"):
        load_profile(str(bad))
    with pytest.raises(ValueError, match="no preset or file"):
        load_profile("missing/profile.toml")


def _stages(plan) -> dict[str, float]:
    return {s.name: s.duration_s for s in plan}


def test_incremental_input_only_where_the_server_holds_the_conversation():
    ws = load_profile("websocket")
    assert request_tokens(ws, TURN, WARM) == TURN.new_input_tokens
    full = ws.with_(incremental_input=False)
    assert request_tokens(full, TURN, WARM) == TURN.conversation_tokens
    # Without a server-held conversation the switch changes nothing.
    base = load_profile("http_baseline")
    assert request_tokens(base.with_(incremental_input=True), TURN, WARM) == TURN.conversation_tokens
    # Sending everything costs validation and upload, but render and safety still read only the new items.
    a, b = _stages(plan_turn(ws, TURN, WARM)), _stages(plan_turn(full, TURN, WARM))
    assert b["validate"] > a["validate"] and b["upload"] > a["upload"]
    assert b["render"] == a["render"] and b["safety_in"] == a["safety_in"]


def test_sampling_loop_skips_per_turn_api_work_and_keeps_the_kv_state():
    proto = load_profile("websocket_prototype")
    assert proto.sampling_loop and not load_profile("websocket").sampling_loop
    mid = _stages(plan_turn(proto, TURN, WARM))
    for stage in ("validate", "load_state", "render", "config", "safety_in", "hops", "queue", "safety_out"):
        assert mid[stage] == 0.0, stage
    # Only the new items are prefilled: the loop's KV state holds the context.
    assert mid["prefill"] == pytest.approx(
        proto.prefill_overhead_s + TURN.new_input_tokens / proto.prefill_tokens_per_s
    )
    # The first turn pays the pre-inference work, the final one the post-inference work.
    first = _stages(plan_turn(proto, TURN._replace(index=0, context_tokens=0), CacheState()))
    assert first["safety_in"] > 0 and first["config"] > 0
    last = _stages(plan_turn(proto, TURN._replace(final=True, tool_s=0.0), WARM))
    assert last["safety_out"] > 0
    assert mid["decode"] == pytest.approx(_stages(plan_turn(load_profile("websocket"), TURN, WARM))["decode"])


def test_engine_pinning_raises_prefix_cache_hits():
    base = load_profile("http_baseline")
    pinned = base.with_(engine_pinning=True)
    assert pinned.kv_hit_share() == base.pinned_prefix_cache_hit_share > base.prefix_cache_hit_share
    assert _stages(plan_turn(pinned, TURN, WARM))["prefill"] < _stages(plan_turn(base, TURN, WARM))["prefill"]
    with pytest.raises(ValueError, match="^pinned_prefix_cache_hit_share:"):
        base.with_(pinned_prefix_cache_hit_share=1.5)


def test_ideal_has_no_api_work_and_bounds_every_preset():
    ideal = load_profile("ideal")
    w = load_workload("codex_bugfix")
    from labkit.sim.analytic import forecast

    f = forecast(ideal, w)
    assert f.api_s == 0.0
    for name in preset_names():
        assert forecast(load_profile(name), w).e2e_s >= f.e2e_s - 1e-9, name


def test_sampling_loop_ends_with_the_connection_or_an_eviction():
    proto = load_profile("websocket_prototype")
    live = _stages(plan_turn(proto, TURN, WARM))
    evicted = _stages(plan_turn(proto, TURN, WARM._replace(connection_cache_hit=False)))
    reconnected = _stages(plan_turn(proto, TURN, CacheState()))
    assert live["safety_in"] == 0.0
    assert evicted["safety_in"] > 0 and reconnected["safety_in"] > 0
    assert request_tokens(proto, TURN, WARM._replace(connection_cache_hit=False)) == TURN.conversation_tokens


def test_load_profile_takes_a_profile_as_it_is():
    from labkit.model import load_profile

    p = load_profile("websocket")
    assert load_profile(p) is p
    assert load_profile(p, decode_tps=65) == p.with_(decode_tps=65)


def test_load_workload_takes_a_workload_as_it_is():
    from labkit.model import load_workload

    w = load_workload("codex_bugfix")
    assert load_workload(w) is w
    assert load_workload(w, turns=3) == w.with_(turns=3)
