"""The des benchmark's per-part measurement on tiny sizes (shape only, no speed checks)."""

from __future__ import annotations

import pytest

from labkit.bench import des as des_bench


@pytest.mark.parametrize("mode", des_bench.MODES)
def test_measure_part_pairs_labkit_and_raw(mode: str) -> None:
    part = des_bench.measure_part(mode, rollouts=4, repeats=2, with_model=mode == "stream")
    assert part.mode == mode
    assert len(part.labkit_us) == len(part.raw_us) == len(part.ratios) == 2
    assert part.stages > 0
    assert all(r > 0 for r in part.ratios)
    # The latency model is timed only where asked (the stream part).
    assert len(part.model_us) == (2 if mode == "stream" else 0)
    assert part.to_dict()["mode"] == mode
