"""Profiles given by name, path or object, as every analysis function takes them."""

from __future__ import annotations

from collections.abc import Iterable

from labkit.model import Profile, load_profile


def as_profiles(profiles: Iterable[str | Profile]) -> list[Profile]:
    return [p if isinstance(p, Profile) else load_profile(p) for p in profiles]
