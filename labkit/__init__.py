"""labkit: see, measure and explain an LLM API's own overhead in agent loops.

Layers (dependencies point down only): ``protocol`` and ``latency`` (pure), ``sim`` (SimPy),
``server`` and ``client`` (asyncio I/O), ``viz`` and ``widgets`` (plotly, ipywidgets), ``cli``.
"""

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

__version__ = "0.1.0"

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
