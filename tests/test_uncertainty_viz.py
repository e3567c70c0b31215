"""Band figures over the ensemble: one band, median and defaults line per scenario, units on every axis."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.analysis.ensemble import bands, build_ensemble, ensemble_sweep
from labkit.viz.uncertainty import band_figure, gain_band, overhead_share_band, speedup_band


@pytest.fixture(scope="module")
def sweep_frame():
    ens = build_ensemble(12, seed=5)
    return ensemble_sweep(ens, ["http_baseline", "websocket"], "codex_bugfix", tps=[65, 1000], turns=[5, 25])


def test_bands_hold_the_defaults_inside_a_quantile_range(sweep_frame):
    b = bands(sweep_frame[sweep_frame.turns == 25], "tps", "overhead_share")
    assert set(b.columns) == {"scenario", "tps", "lo", "median", "hi", "default"}
    assert (b.lo <= b["median"]).all() and (b["median"] <= b.hi).all()
    assert b.attrs["members"] == 12 and b.attrs["x"] == "tps"
    # The defaults' row is the closed form of the presets.
    ws = sweep_frame[(sweep_frame.member == -1) & (sweep_frame.scenario == "websocket") & (sweep_frame.turns == 25)]
    assert b[(b.scenario == "websocket") & (b.tps == 1000)]["default"].iloc[0] == pytest.approx(
        ws[ws.tps == 1000].overhead_share.iloc[0]
    )
    with pytest.raises(ValueError, match="^df: missing"):
        bands(sweep_frame, "tps", "nope")
    with pytest.raises(ValueError, match="^df: no ensemble members"):
        bands(sweep_frame[sweep_frame.member < 0], "tps", "reduction")


def test_band_figures_draw_three_traces_per_scenario(sweep_frame):
    share = bands(sweep_frame[sweep_frame.turns == 25], "tps", "overhead_share")
    fig = overhead_share_band(share)
    assert len(fig.data) == 3 * 2
    # A band is a filled outline without markers at its vertices.
    assert {t.mode for t in fig.data if t.fill == "toself"} == {"lines"}
    assert fig.layout.xaxis.type == "log" and "(%)" in fig.layout.yaxis.title.text
    ws = sweep_frame[sweep_frame.scenario == "websocket"]
    assert "(×)" in speedup_band(bands(ws, "turns", "speedup")).layout.yaxis.title.text
    assert gain_band(bands(ws, "tps", "reduction")).layout.title.text
    with pytest.raises(ValueError, match="^band:"):
        band_figure(pd.DataFrame({"tps": [1.0]}), title="x", y_title="y (%)")
