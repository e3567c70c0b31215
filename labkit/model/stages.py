"""Stage names of one turn, in critical-path order, and the category each belongs to.

Categories follow OpenAI's engineering post's three-way split (API services, inference, client tools), with
the network carved out of "API services" so it can be shown apart.
"""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "connect",
    "upload",
    "validate",
    "load_state",
    "render",
    "config",
    "safety_in",
    "hops",
    "queue",
    "prefill",
    "reasoning",
    "download",
    "decode",
    "safety_out",
    "persist",
    "postprocess",
    "tool",
)
NETWORK_STAGES = frozenset({"connect", "upload", "download"})
API_STAGES = frozenset(
    {"validate", "load_state", "render", "config", "safety_in", "hops", "safety_out", "persist", "postprocess"}
)
#: ``reasoning``: reasoning tokens decoded before the first visible output delta (part of TTFT).
INFERENCE_STAGES = frozenset({"queue", "prefill", "reasoning", "decode"})
CLIENT_STAGES = frozenset({"tool"})
#: Stages the server emulates with a clock (the network stages are real on a live socket).
SERVER_STAGES = tuple(s for s in STAGES if s not in NETWORK_STAGES and s not in CLIENT_STAGES)


def stage_category(stage: str) -> str:
    """``network`` | ``api`` | ``inference`` | ``client`` | ``other`` (live-only coarse stages)."""
    if stage in NETWORK_STAGES:
        return "network"
    if stage in API_STAGES:
        return "api"
    if stage in INFERENCE_STAGES:
        return "inference"
    if stage in CLIENT_STAGES:
        return "client"
    return "other"
