"""Cache economics: the bytes WebSocket mode's connection-scoped cache holds, and the policy that bounds them.

A connection's cache keeps the previous response of its conversation so the next ``response.create`` with
``previous_response_id`` needs to send only the new items. One entry holds (per component, see
:class:`CacheModel`):

- **prior response** (``text_bytes_per_token``): the conversation's items as text, instructions, earlier
  inputs and outputs and the response's own output, about 4 bytes a token;
- **rendered tokens** (``rendered_bytes_per_token``): the token ids the conversation renders to, kept so a
  continuation renders only its new items (4 bytes per int32 id);
- **tool definitions** (``tool_definition_bytes``): parsed tool schemas, once per entry (the workloads count
  their tokens in the first request's context; this is the parsed, in-memory form);
- **sampling artifacts** (``sampling_bytes``): per-response sampler state (seed, stop and penalty state,
  logit biases), once per entry.

:func:`entry_bytes` is the one formula: the DES (:mod:`labkit.sim.des`) sizes its entries with it, so a byte
budget means the same in both. The live server's budget counts ``conversation_tokens x bytes_per_token``,
which is :meth:`CacheModel.text_only`; use that model to compare the DES with the server.

:class:`CachePolicy` is a per-replica byte budget with an eviction policy: ``lru`` evicts the least recently
used entries when a new one would exceed the budget (as the live server's ``max_cached_bytes``); ``ttl`` also
drops an entry idle for ``ttl_s`` seconds, budget or not (memory is freed sooner, long tool calls miss).
A miss costs a full-context resend, as WebSocket mode does after ``previous_response_not_found``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from labkit.model.profile import BYTES_PER_TOKEN_TEXT, Profile

Policy = Literal["lru", "ttl"]
#: int32 token ids.
RENDERED_BYTES_PER_TOKEN = 4
#: Parsed tool schemas of a typical coding agent (a dozen tools, ~300 tokens each as JSON objects).
TOOL_DEFINITION_BYTES = 16 * 1024
#: Sampler state of one response.
SAMPLING_BYTES = 1024


@dataclass(frozen=True)
class CacheModel:
    """Bytes of one connection-cache entry, per component (see the module docstring)."""

    text_bytes_per_token: float = BYTES_PER_TOKEN_TEXT
    rendered_bytes_per_token: float = RENDERED_BYTES_PER_TOKEN
    tool_definition_bytes: int = TOOL_DEFINITION_BYTES
    sampling_bytes: int = SAMPLING_BYTES

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{f.name}: must be a finite number >= 0, got {v!r}")

    @classmethod
    def for_profile(cls, profile: Profile) -> CacheModel:
        """Every component, with the profile's text bytes per token."""
        return cls(text_bytes_per_token=profile.bytes_per_token)

    @classmethod
    def text_only(cls, bytes_per_token: float = BYTES_PER_TOKEN_TEXT) -> CacheModel:
        """The conversation text only: how the live server's ``max_cached_bytes`` budget counts."""
        return cls(
            text_bytes_per_token=bytes_per_token, rendered_bytes_per_token=0, tool_definition_bytes=0, sampling_bytes=0
        )

    @property
    def bytes_per_token(self) -> float:
        return self.text_bytes_per_token + self.rendered_bytes_per_token

    def components(self, conversation_tokens: int) -> dict[str, int]:
        """Bytes of one entry holding ``conversation_tokens``, per component (they sum to :func:`entry_bytes`
        up to rounding)."""
        return {
            "prior_response": int(conversation_tokens * self.text_bytes_per_token),
            "rendered_tokens": int(conversation_tokens * self.rendered_bytes_per_token),
            "tool_definitions": int(self.tool_definition_bytes),
            "sampling_artifacts": int(self.sampling_bytes),
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def entry_bytes(conversation_tokens: int, model: CacheModel) -> int:
    """Bytes one cache entry takes: the conversation up to and including the cached response's output
    (``conversation_tokens``), rendered and as text, plus the per-entry components."""
    return int(conversation_tokens * model.bytes_per_token) + int(model.tool_definition_bytes + model.sampling_bytes)


def turn_entry_tokens(context_tokens: int, new_input_tokens: int, output_tokens: int) -> int:
    """Tokens a response's cache entry covers: everything before it, its new items and its output."""
    return context_tokens + new_input_tokens + output_tokens


@dataclass(frozen=True)
class CachePolicy:
    """A byte budget per replica for all its connections' caches, and how entries leave it."""

    #: Bytes one replica gives to connection caches; ``None`` is unlimited.
    budget_bytes: int | None = None
    policy: Policy = "lru"
    #: ``ttl`` only: an entry not used for this long is dropped.
    ttl_s: float = 60.0
    model: CacheModel = CacheModel()

    def __post_init__(self) -> None:
        b = self.budget_bytes
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ValueError(f"budget_bytes: must be an integer >= 0 or None, got {b!r}")
        if self.policy not in ("lru", "ttl"):
            raise ValueError(f"policy: must be 'lru' or 'ttl', got {self.policy!r}")
        if not (isinstance(self.ttl_s, int | float) and self.ttl_s > 0 and math.isfinite(self.ttl_s)):
            raise ValueError(f"ttl_s: must be a finite number > 0, got {self.ttl_s!r}")
        if not isinstance(self.model, CacheModel):
            raise ValueError(f"model: must be a CacheModel, got {type(self.model).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_bytes": self.budget_bytes,
            "policy": self.policy,
            "ttl_s": self.ttl_s,
            "model": self.model.to_dict(),
        }


_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str | int, field: str = "budget") -> int:
    """``"512MiB"``, ``"4GB"``, ``"1.5GiB"`` or a plain integer, as bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{field}: must be >= 0, got {text!r}")
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{field}: not a byte size like 512MiB or 4GB: {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
