"""Attribution: exact Shapley shares over the mechanisms two profiles differ by, and the ``labkit attribute`` CLI."""

from __future__ import annotations

import itertools
import json
import math

import pytest

from labkit.analysis.attribution import attribute, attribution_over_tps, gap_to_ideal, kept_share, shapley
from labkit.cli import main
from labkit.model import load_profile, load_workload
from labkit.model.profile import MECHANISMS, OTHER, differing_mechanisms
from labkit.sim.analytic import forecast

KEYS = {"baseline", "candidate", "workload", "tps", "total_gain_s", "shares_s", "ttft_total_gain_s", "ttft_shares_s"}


def test_mechanism_groups_partition_their_fields():
    fields = [f for m in MECHANISMS for f in m.fields]
    assert len(fields) == len(set(fields))
    assert set(fields) <= set(load_profile("http_baseline").to_dict())


@pytest.mark.parametrize("tps", [65.0, 1000.0])
@pytest.mark.parametrize("candidate", ["http_optimized", "http_chained", "websocket", "websocket_prototype", "ideal"])
def test_shares_sum_to_the_gain(candidate, tps):
    a = attribute(candidate, tps=tps)
    w = load_workload("codex_bugfix")
    fb = forecast(load_profile("http_baseline", decode_tps=tps), w)
    fc = forecast(load_profile(candidate, decode_tps=tps), w)
    assert a.total_gain_s == pytest.approx(fb.e2e_s - fc.e2e_s, rel=1e-12)
    assert sum(a.shares_s.values()) == pytest.approx(a.total_gain_s, rel=1e-9)
    assert sum(a.ttft_shares_s.values()) == pytest.approx(a.ttft_total_gain_s, rel=1e-9)
    assert set(a.shares_s) == set(differing_mechanisms(load_profile("http_baseline"), load_profile(candidate)))


def test_shapley_matches_the_average_over_orders():
    # A game with an interaction: b is worth something only after a.
    players = ["a", "b", "c"]
    worth = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 0.0, frozenset("c"): 2.0}

    def v(s: frozenset) -> float:
        base = sum(worth.get(frozenset(x), 0.0) for x in s)
        return base + (3.0 if {"a", "b"} <= s else 0.0)

    value = {m: v(frozenset(p for i, p in enumerate(players) if m >> i & 1)) for m in range(8)}
    orders = list(itertools.permutations(players))
    expect = {p: 0.0 for p in players}
    for order in orders:
        seen: set[str] = set()
        for p in order:
            expect[p] += (v(frozenset(seen | {p})) - v(frozenset(seen))) / len(orders)
            seen.add(p)
    got = shapley(players, value)
    assert got == pytest.approx(expect)
    assert got["a"] == pytest.approx(2.5) and got["b"] == pytest.approx(1.5)


def test_a_single_mechanism_takes_the_whole_gain():
    base = load_profile("http_baseline")
    cand = base.with_(name="just_config", config_cache=True)
    a = attribute(cand, base, tps=1000)
    assert list(a.shares_s) == ["config_cache"]
    assert a.shares_s["config_cache"] == pytest.approx(a.total_gain_s) and a.total_gain_s > 0


def test_fields_outside_every_mechanism_are_other():
    base = load_profile("http_baseline")
    a = attribute(base.with_(name="closer", rtt_s=0.01), base, tps=1000)
    assert list(a.shares_s) == [OTHER] and a.total_gain_s > 0


def test_sampling_loop_is_most_of_the_prototypes_extra_gain():
    a = attribute("websocket_prototype", "websocket", tps=1000)
    assert list(a.shares_s) == ["sampling_loop"]
    assert 0 < kept_share() < 1


def test_gap_to_ideal_and_over_tps():
    df = gap_to_ideal(["http_baseline", "websocket", "ideal"], tps=1000)
    assert df["gap_closed"].tolist()[0] == 0 and df["gap_closed"].tolist()[2] == pytest.approx(1.0)
    assert 0 < df["gap_closed"].tolist()[1] < 1
    over = attribution_over_tps("websocket", [65, 1000])
    # Seconds saved do not depend on the decode speed; their share of end to end does.
    by = over.pivot(index="mechanism", columns="tps", values="share_s")
    assert by[65.0].to_numpy() == pytest.approx(by[1000.0].to_numpy())
    frac = over.groupby("tps")["share_of_baseline"].sum()
    assert frac[1000.0] > frac[65.0]


def test_cli_json_contract(capsys):
    assert main(["attribute", "websocket", "--tps", "1000", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) >= KEYS
    assert math.isclose(sum(d["shares_s"].values()), d["total_gain_s"], rel_tol=1e-9)
    assert main(["attribute", "websocket", "--tps", "65"]) == 0
    out = capsys.readouterr().out
    assert "connection-scoped cache" in out and "total" in out
    assert main(["attribute", "carrier_pigeon"]) == 2
