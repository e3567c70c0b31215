"""The critical path: what each change of the critical-path sprint buys, alone and in sequence."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from labkit.model import Profile, Workload, load_profile
from labkit.model.profile import MECHANISMS
from labkit.sim.analytic import RolloutForecast, forecast

#: The four changes of the critical-path sprint, as the ``Profile`` fields each one touches: the sprint's
#: mechanisms of :data:`labkit.model.profile.MECHANISMS` (one source for both).
SPRINT = ("rendered_token_cache", "config_cache", "fewer_hops", "faster_safety")
OPTIMISATIONS: dict[str, tuple[str, ...]] = {m.label: m.fields for m in MECHANISMS if m.name in SPRINT}


def _sprint_fields(baseline: Profile, optimized: Profile, groups: Mapping[str, tuple[str, ...]]) -> None:
    grouped = {f for fields in groups.values() for f in fields}
    differ = {k for k, v in baseline.to_dict().items() if k != "name" and optimized.to_dict()[k] != v}
    stray = sorted(differ - grouped)
    if stray:
        raise ValueError(f"groups: fields {', '.join(stray)} differ between the profiles but are in no group")


def optimisation_effects(
    workload: Workload,
    baseline: str | Profile = "http_baseline",
    optimized: str | Profile = "http_optimized",
    groups: Mapping[str, tuple[str, ...]] = OPTIMISATIONS,
) -> pd.DataFrame:
    """How much each optimisation of the sprint cuts mean TTFT, measured two ways.

    ``alone``: the baseline with only this optimisation applied; ``leave_one_out``: the optimized profile
    with only this one reverted. When the effects simply add up the two columns agree; their gap measures
    how much the optimisations interact. Reductions are fractions of the baseline's mean TTFT.
    """
    b, o = load_profile(baseline), load_profile(optimized)
    _sprint_fields(b, o, groups)
    t_base = forecast(b, workload).ttft_mean_s
    t_opt = forecast(o, workload).ttft_mean_s
    rows = []
    for name, fields in groups.items():
        alone = b.with_(**{f: getattr(o, f) for f in fields})
        loo = o.with_(**{f: getattr(b, f) for f in fields})
        t_alone = forecast(alone, workload).ttft_mean_s
        t_loo = forecast(loo, workload).ttft_mean_s
        rows.append(
            {
                "optimisation": name,
                "alone_ttft_s": t_alone,
                "alone_reduction": (t_base - t_alone) / t_base,
                "leave_one_out_ttft_s": t_loo,
                "leave_one_out_reduction": (t_loo - t_opt) / t_base,
            }
        )
    df = pd.DataFrame(rows).set_index("optimisation")
    df.attrs.update(baseline_ttft_s=t_base, optimized_ttft_s=t_opt, total_reduction=(t_base - t_opt) / t_base)
    return df


def sprint_steps(
    workload: Workload,
    baseline: str | Profile = "http_baseline",
    optimized: str | Profile = "http_optimized",
    groups: Mapping[str, tuple[str, ...]] = OPTIMISATIONS,
) -> list[tuple[str, RolloutForecast]]:
    """The sprint applied one optimisation after another: ``[(name, forecast after it), ...]``.

    The input of :func:`labkit.viz.ttft_waterfall` ``steps=``; the last step is the optimized profile.
    """
    b, o = load_profile(baseline), load_profile(optimized)
    _sprint_fields(b, o, groups)
    steps = []
    cur = b
    for name, fields in groups.items():
        cur = cur.with_(**{f: getattr(o, f) for f in fields})
        steps.append((name, forecast(cur, workload)))
    return steps
