"""Presets and calibration, read from the data files shipped inside the package.

``labkit/data/calibration.toml`` holds the published facts (with sources), every default parameter (value,
unit, provenance) and the presets; ``labkit/data/workloads.toml`` the workload presets. They are read with
:mod:`importlib.resources`, so they load from a wheel, a zip or a cluster worker as well as from a checkout.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from labkit.model.profile import Profile, _check
from labkit.model.workload import Workload

CALIBRATION_FILE = "calibration.toml"
WORKLOADS_FILE = "workloads.toml"


@cache
def _load_toml(name: str) -> dict[str, Any]:
    with resources.files("labkit").joinpath("data", name).open("rb") as fh:
        return tomllib.load(fh)


def calibration() -> dict[str, Any]:
    """The parsed ``data/calibration.toml``: published facts, parameters with provenance, presets."""
    return _load_toml(CALIBRATION_FILE)


def parameter_table() -> list[dict[str, Any]]:
    """One row per default parameter: name, value, unit, provenance, source, note."""
    rows = []
    for name, entry in calibration()["parameters"].items():
        rows.append({"parameter": name, **entry})
    return rows


def published_facts() -> dict[str, dict[str, Any]]:
    return dict(calibration()["published"])


def preset_names() -> tuple[str, ...]:
    return tuple(calibration()["presets"])


def workload_names() -> tuple[str, ...]:
    return tuple(_load_toml(WORKLOADS_FILE)["workloads"])


def _preset_values(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    presets = calibration()["presets"]
    _check(name in presets, "profile", f"unknown preset {name!r}; known: {', '.join(presets)}")
    _check(name not in seen, "profile", f"preset {name!r} inherits from itself")
    entry = dict(presets[name])
    base = entry.pop("base", None)
    entry.pop("description", None)
    if base is None:
        values = {k: v["value"] for k, v in calibration()["parameters"].items()}
    else:
        values = _preset_values(base, (*seen, name))
    values.update(entry)
    return values


def load_profile(name: str | os.PathLike[str] | Profile, **overrides: Any) -> Profile:
    """A preset from ``data/calibration.toml`` (``http_baseline``, ``http_optimized``, ``http_chained``,
    ``websocket``, ...) or a profile file (see :func:`load_profile_file`), with optional overrides such as
    ``decode_tps=1000``. Wherever labkit takes a preset name, a path to a profile file works too; a
    :class:`Profile` is taken as it is, so every function that accepts "a profile" resolves it with this one call."""
    if isinstance(name, Profile):
        profile = name
    elif isinstance(name, os.PathLike) or (name not in calibration()["presets"] and _looks_like_path(name)):
        profile = load_profile_file(name)
    else:
        values = _numbers(_preset_values(name))
        profile = Profile(name=name, **values)
    return profile.with_(**overrides) if overrides else profile


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name or "/" in name or Path(name).is_file()


def _numbers(values: dict[str, Any]) -> dict[str, Any]:
    # TOML has no infinity literal that reads well in a table; the data files write "inf".
    return {k: (math.inf if v == "inf" else v) for k, v in values.items()}


def load_profile_file(path: str | os.PathLike[str]) -> Profile:
    """A profile from a TOML file: the format ``labkit fit --out`` writes and a person can write by hand.

    ``[profile]`` holds ``name`` (default: the file's stem), an optional ``base`` preset whose values fill in
    what the file does not set (default: the calibrated defaults), an optional ``description``, and any
    :class:`Profile` fields. A value may be a number or a table with a ``value`` key and anything else beside it
    (``lo``, ``hi``, ``provenance``, ``source``: what ``labkit fit`` records). Without a ``[profile]`` table,
    the top-level keys are read the same way.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"profile: no preset or file named {str(path)!r}; presets: {', '.join(preset_names())}")
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"profile: {p}: not valid TOML ({exc})") from exc
    table = doc.get("profile", doc)
    if not isinstance(table, dict):
        raise ValueError(f"profile: {p}: [profile] must be a table")
    table = dict(table)
    name = str(table.pop("name", p.stem))
    base = table.pop("base", None)
    table.pop("description", None)
    values = (
        _preset_values(str(base))
        if base is not None
        else {k: v["value"] for k, v in calibration()["parameters"].items()}
    )
    for key, v in table.items():
        if isinstance(v, dict):
            if "value" not in v:
                raise ValueError(f"{key}: {p}: a parameter table needs a 'value' key")
            v = v["value"]
        values[key] = v
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    for key in values:
        _check(key in fields, key, f"{p}: unknown parameter of Profile")
    return Profile(name=name, **_numbers(values))


def preset_description(name: str) -> str:
    _preset_values(name)
    return str(calibration()["presets"][name].get("description", ""))


def load_workload(name: str | Workload, **overrides: Any) -> Workload:
    """A workload preset from ``data/workloads.toml`` (e.g. ``codex_bugfix``), with overrides; a
    :class:`Workload` (a trace's too) is taken as it is."""
    if isinstance(name, Workload):
        return name.with_(**overrides) if overrides else name
    table = _load_toml(WORKLOADS_FILE)["workloads"]
    _check(name in table, "workload", f"unknown workload {name!r}; known: {', '.join(table)}")
    w = Workload(name=name, **table[name])
    return w.with_(**overrides) if overrides else w
