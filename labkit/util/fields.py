"""Named tuples built from the tuple of all their fields, in C.

A named tuple's own ``__new__`` is a Python function: building one costs a Python frame more than building a plain
tuple. The server builds several per request (the request, its position, its spec, the resolved turn, the record),
so those are made by :func:`from_fields`, which calls ``tuple.__new__`` directly: the same object, no frame.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

__all__ = ["from_fields"]

T = TypeVar("T", bound=tuple[Any, ...])


def from_fields(cls: type[T]) -> Callable[[Iterable[Any]], T]:
    """A constructor of ``cls`` (a named tuple) taking the tuple of all its fields, in order; no defaults applied."""
    return functools.partial(tuple.__new__, cls)
