"""labkit: see, measure and explain an LLM API's own overhead in agent loops.

One home per layer (dependencies point down only; ``tests/test_layers.py`` checks it):

- ``labkit.model``: profiles, workloads, the per-turn plan, presets (numpy, pandas)
- ``labkit.wire``: the Responses API's events as plain data (stdlib only)
- ``labkit.sim``: the closed form, the SimPy model, the one sweep engine
- ``labkit.live``: the simulated server, the clients, the rollout runner
- ``labkit.experiments``: the server and a client together: measure, validate, fit recovery
- ``labkit.traces``: real sessions in, OTLP and Perfetto traces out
- ``labkit.analysis``: metrics and research tables by topic
- ``labkit.viz``: figure builders, export, dashboards
- ``labkit.report``, ``labkit.bench``, ``labkit.cli``: tooling

The names below are re-exported lazily, so ``import labkit.wire`` does not load the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_MODEL_NAMES = (
    "CacheState",
    "Profile",
    "Stage",
    "TurnSpec",
    "Workload",
    "load_profile",
    "load_workload",
    "plan_turn",
    "preset_names",
    "workload_names",
)

if TYPE_CHECKING:
    from labkit.model import (
        CacheState,
        Profile,
        Stage,
        TurnSpec,
        Workload,
        load_profile,
        load_workload,
        plan_turn,
        preset_names,
        workload_names,
    )


def __getattr__(name: str) -> Any:
    # PEP 562: load the model only when one of its names is asked for.
    if name in _MODEL_NAMES:
        import labkit.model

        return getattr(labkit.model, name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


__all__ = [
    "CacheState",
    "Profile",
    "Stage",
    "TurnSpec",
    "Workload",
    "__version__",
    "load_profile",
    "load_workload",
    "plan_turn",
    "preset_names",
    "workload_names",
]
