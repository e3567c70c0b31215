"""The model: one pure description of what an agent rollout costs, stage by stage.

``Profile`` (API service + network + inference parameters) and ``Workload`` (turns, tokens, tool times)
go into :func:`plan_turn`, which returns the ordered stages of one request with their durations. Both
clocks consume these plans: :mod:`labkit.sim` on SimPy's simulated clock, :mod:`labkit.live` on the wall
clock. Presets and calibration are data files inside the package (:mod:`labkit.model.presets`).

This layer imports numpy and pandas only; nothing else in labkit.
"""

from labkit.model.plan import (
    CacheState,
    Stage,
    TurnPlan,
    hit_probability,
    plan_total_s,
    plan_ttft_s,
    plan_turn,
    request_tokens,
)
from labkit.model.presets import (
    calibration,
    load_profile,
    load_profile_file,
    load_workload,
    parameter_table,
    preset_description,
    preset_names,
    published_facts,
    workload_names,
)
from labkit.model.profile import BYTES_PER_TOKEN_TEXT, Chaining, Profile, Routing, Transport
from labkit.model.stages import (
    API_STAGES,
    CLIENT_STAGES,
    INFERENCE_STAGES,
    NETWORK_STAGES,
    SERVER_STAGES,
    STAGES,
    stage_category,
)
from labkit.model.workload import TurnSpec, Workload

__all__ = [
    "API_STAGES",
    "BYTES_PER_TOKEN_TEXT",
    "CLIENT_STAGES",
    "INFERENCE_STAGES",
    "NETWORK_STAGES",
    "SERVER_STAGES",
    "STAGES",
    "CacheState",
    "Chaining",
    "Profile",
    "Routing",
    "Stage",
    "Transport",
    "TurnPlan",
    "TurnSpec",
    "Workload",
    "calibration",
    "hit_probability",
    "load_profile",
    "load_profile_file",
    "load_workload",
    "parameter_table",
    "plan_total_s",
    "plan_ttft_s",
    "plan_turn",
    "preset_description",
    "preset_names",
    "published_facts",
    "request_tokens",
    "stage_category",
    "workload_names",
]
