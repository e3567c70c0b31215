"""Every public number labkit is held against, typed: the ``[published.*]`` tables of ``data/calibration.toml``.

Each entry is a :class:`PublishedNumber`: the value with its unit, what the source says, the conditions it was
measured under (workload, decode speed, tool calls, prompt size...), where it was read (source, title, URL and
whether at the source or in a secondary report), whether it is a best case ("up to") or approximate, and its
role: ``fitted`` (the defaults and the ensemble are solved or bounded by it), ``checked`` (only compared) or
``input`` (a condition the model takes as given). Numbers from another system (``system = "other"``) are kept
beside OpenAI's and never fitted. :func:`load_registry` reads and validates them; a bad entry raises
``ValueError`` naming ``published.<key>.<field>``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, cast

from labkit.model import published_facts

Qualifier = Literal["about", "up to", "exact"]
Role = Literal["fitted", "checked", "input"]
System = Literal["openai", "other"]
Verified = Literal["primary", "2nd", "measured"]

QUALIFIERS: tuple[str, ...] = ("about", "up to", "exact")
ROLES: tuple[str, ...] = ("fitted", "checked", "input")
SYSTEMS: tuple[str, ...] = ("openai", "other")
VERIFIED: tuple[str, ...] = ("primary", "2nd", "measured")
_TEXT_FIELDS = ("unit", "claim", "source", "title")

Condition = str | int | float | bool


@dataclass(frozen=True, slots=True)
class PublishedNumber:
    """One public number with its conditions and provenance (one ``[published.<key>]`` table)."""

    key: str
    value: float
    unit: str
    claim: str
    qualifier: Qualifier
    role: Role
    system: System
    verified: Verified
    source: str
    title: str
    url: str
    conditions: tuple[tuple[str, Condition], ...] = ()

    def condition(self, name: str, default: Condition | None = None) -> Condition | None:
        return dict(self.conditions).get(name, default)

    @property
    def conditions_text(self) -> str:
        """The conditions as one line: ``name: value; ...`` (numbers with thousands separators)."""
        return "; ".join(f"{k.replace('_', ' ')}: {_fmt_condition(v)}" for k, v in self.conditions)

    @property
    def published_text(self) -> str:
        """The value as the source states it: ``~40%``, ``up to 30%``, ``0.13 s``."""
        prefix = {"about": "~", "up to": "up to ", "exact": ""}[self.qualifier]
        if self.unit == "fraction":
            return f"{prefix}{self.value:.0%}"
        return f"{prefix}{self.value:,g} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["conditions"] = dict(self.conditions)
        return d


def _fmt_condition(v: Condition) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        return f"{v:,g}"
    return str(v)


def _fail(key: str, field: str, message: str) -> ValueError:
    return ValueError(f"published.{key}.{field}: {message}")


def _choice(key: str, entry: Mapping[str, Any], field: str, allowed: tuple[str, ...]) -> str:
    v = entry.get(field)
    if v not in allowed:
        raise _fail(key, field, f"must be one of {', '.join(map(repr, allowed))}, got {v!r}")
    return cast(str, v)


def parse_entry(key: str, entry: Any) -> PublishedNumber:
    """One ``[published.<key>]`` table as a :class:`PublishedNumber` (``ValueError`` naming the bad field)."""
    if not isinstance(entry, Mapping):
        raise _fail(key, "*", "must be a table")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(key, "value", f"must be a finite number, got {value!r}")
    texts = {}
    for field in _TEXT_FIELDS:
        v = entry.get(field)
        if not isinstance(v, str) or not v.strip():
            raise _fail(key, field, f"must be a non-empty string, got {v!r}")
        texts[field] = v
    url = entry.get("url", "")
    if not isinstance(url, str) or (url and not url.startswith(("https://", "http://"))):
        raise _fail(key, "url", f"must be an http(s) URL or empty, got {url!r}")
    conditions = entry.get("conditions", {})
    if not isinstance(conditions, Mapping):
        raise _fail(key, "conditions", "must be a table")
    for name, v in conditions.items():
        if not isinstance(v, str | int | float | bool):
            raise _fail(key, f"conditions.{name}", f"must be a string, number or boolean, got {v!r}")
    known = {"value", "url", "conditions", "qualifier", "role", "system", "verified", *_TEXT_FIELDS}
    if unknown := sorted(set(entry) - known):
        raise _fail(key, unknown[0], f"unknown field (known: {', '.join(sorted(known))})")
    return PublishedNumber(
        key=key,
        value=float(value),
        unit=texts["unit"],
        claim=texts["claim"],
        qualifier=cast(Qualifier, _choice(key, entry, "qualifier", QUALIFIERS)),
        role=cast(Role, _choice(key, entry, "role", ROLES)),
        system=cast(System, _choice(key, entry, "system", SYSTEMS)),
        verified=cast(Verified, _choice(key, entry, "verified", VERIFIED)),
        source=texts["source"],
        title=texts["title"],
        url=url,
        conditions=tuple((str(k), v) for k, v in conditions.items()),
    )


def load_registry(table: Mapping[str, Any] | None = None) -> tuple[PublishedNumber, ...]:
    """Every ``[published.*]`` entry, in file order (``table``: another parsed ``published`` table)."""
    if table is None:
        return _registry()
    return tuple(parse_entry(k, v) for k, v in table.items())


@cache
def _registry() -> tuple[PublishedNumber, ...]:
    return tuple(parse_entry(k, v) for k, v in published_facts().items())


def published(key: str) -> PublishedNumber:
    """The registry entry ``key`` (``ValueError`` naming the known keys otherwise)."""
    for entry in load_registry():
        if entry.key == key:
            return entry
    raise ValueError(f"published: unknown key {key!r}; known: {', '.join(e.key for e in load_registry())}")


__all__ = [
    "QUALIFIERS",
    "ROLES",
    "SYSTEMS",
    "VERIFIED",
    "PublishedNumber",
    "load_registry",
    "parse_entry",
    "published",
]
