"""What the dashboard sends to the page per change: one message with every figure's edit; a pure data step
redraws traces only (no layout, no new category), anything else the whole figure."""

from __future__ import annotations

from typing import Any

import pytest

from labkit.viz.dashboard import AXIS_SLACK, Dashboard, SharedFigureWidget, what_if


@pytest.fixture
def dash(tmp_path) -> tuple[Dashboard, list[dict[str, Any]]]:
    d = what_if(workload="fast_test", export_dir=tmp_path, export_formats=("html",))
    sent: list[dict[str, Any]] = []
    d.plotly_module.send = sent.append  # type: ignore[method-assign]
    return d, sent


def _edits(d: Dashboard, message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The message's edits by figure name."""
    assert message["kind"] == "labkit.plot-edits"
    by_key = {fig._lk_key: name for name, fig in d.figures.items()}
    out = {}
    for key, payload in message["edits"]:
        assert set(payload) == {"traces", "styles", "layout", "redraw"}
        assert len(payload["styles"]) == len(payload["traces"])
        out[by_key[key]] = payload
    return out


def test_every_figure_has_its_own_page_key(dash):
    d, _ = dash
    keys = [fig.get_state()["_lk_key"] for fig in d.figures.values()]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)


def test_a_decode_speed_step_is_one_message_of_trace_only_redraws(dash):
    d, sent = dash
    d.set(tps=1100.0)
    assert len(sent) == 1
    edits = _edits(d, sent[0])
    assert set(edits) == {"speedup", "breakdown", "e2e"}
    for name, e in edits.items():
        assert e["redraw"] is False, name
        assert e["layout"] == {}, name
    # plotly.js stacks only the bars it is given: the stacked figure gets all of its traces.
    assert edits["breakdown"]["traces"] == list(range(len(d.figures["breakdown"].data)))
    assert all(set(s) == {"x", "y"} for s in edits["breakdown"]["styles"])
    # The messages carry what the figures hold in Python.
    e2e = edits["e2e"]["styles"][0]
    assert "x" in e2e and set(e2e) <= {"x", "y", "text"}
    for prop, value in e2e.items():
        assert value == list(d.figures["e2e"].data[0][prop]), prop
    speedup = edits["speedup"]
    index = list(d._uids["speedup"]).index("current_tps")
    assert speedup["styles"][speedup["traces"].index(index)]["x"] == [1100.0, 1100.0]


def test_a_strategy_change_redraws_whole_figures(dash):
    d, sent = dash
    d.set(strategy="http_optimized")
    edits = _edits(d, sent[-1])
    # Line widths, new bar categories and the highlighted bar's outline change: full redraws.
    assert all(e["redraw"] is True for e in edits.values())


def test_axes_keep_their_range_until_the_data_leave_it(dash):
    d, sent = dash
    top = d.figures["e2e"].layout.xaxis.range[1]
    need = max(d.figures["e2e"].data[0].x) * 1.45
    assert need <= top <= need * AXIS_SLACK
    d.set(tps=1100.0)
    assert d.figures["e2e"].layout.xaxis.range[1] == top
    # Twenty tokens/s makes every rollout far longer: the axes grow, and that step redraws whole figures.
    d.set(tps=20.0)
    assert d.figures["e2e"].layout.xaxis.range[1] > top
    edits = _edits(d, sent[-1])
    assert edits["e2e"]["layout"] == {"xaxis.range": list(d.figures["e2e"].layout.xaxis.range)}
    assert edits["e2e"]["redraw"] is True
    for name, axis in (("speedup", "yaxis"), ("breakdown", "yaxis"), ("e2e", "xaxis")):
        lo, hi = d.figures[name].layout[axis].range
        assert lo == 0 and hi > 0, name
    # The current-TPS line spans the speedup plot's height.
    line = d._uids["speedup"]["current_tps"]
    assert list(line.y) == [0.0, d.figures["speedup"].layout.yaxis.range[1]]


def test_edits_made_outside_the_dashboard_use_plotlys_own_messages(dash):
    d, sent = dash
    fig: SharedFigureWidget = d.figures["e2e"]
    before = fig._last_trace_edit_id
    fig.data[0].x = [1.0] * len(fig.data[0].x)
    assert sent == [] and fig._last_trace_edit_id == before + 1
