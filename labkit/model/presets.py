"""Presets and calibration, read from the data files shipped inside the package.

``labkit/data/calibration.toml`` holds the published facts (with sources), every default parameter (value,
unit, provenance) and the presets; ``labkit/data/workloads.toml`` the workload presets. They are read with
:mod:`importlib.resources`, so they load from a wheel, a zip or a cluster worker as well as from a checkout.
"""

from __future__ import annotations

import math
import tomllib
from functools import cache
from importlib import resources
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


def load_profile(name: str, **overrides: Any) -> Profile:
    """A preset from ``data/calibration.toml`` (``http_baseline``, ``http_optimized``, ``http_chained``,
    ``websocket``), with optional overrides such as ``decode_tps=1000``."""
    values = _preset_values(name)
    values = {k: (math.inf if v == "inf" else v) for k, v in values.items()}
    profile = Profile(name=name, **values)
    return profile.with_(**overrides) if overrides else profile


def preset_description(name: str) -> str:
    _preset_values(name)
    return str(calibration()["presets"][name].get("description", ""))


def load_workload(name: str, **overrides: Any) -> Workload:
    """A workload preset from ``data/workloads.toml`` (e.g. ``codex_bugfix``), with overrides."""
    table = _load_toml(WORKLOADS_FILE)["workloads"]
    _check(name in table, "workload", f"unknown workload {name!r}; known: {', '.join(table)}")
    w = Workload(name=name, **table[name])
    return w.with_(**overrides) if overrides else w
