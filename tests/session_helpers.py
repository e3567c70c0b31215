"""Helpers for the WebSocket-session tests: a session with a counting id source and a fixed clock, and readers
of the actions it returns (shared by test_session.py and test_server_queue.py)."""

from __future__ import annotations

import itertools
import json
from typing import Any

from labkit.live.server.session import Send, Start, WebSocketSession, Work
from labkit.wire import protocol as P


def _session(**kw: Any) -> WebSocketSession:
    counter = itertools.count()
    return WebSocketSession(opened_at=0.0, ids=lambda p: f"{p}_{next(counter)}", wall_clock=lambda: 1.0, **kw)


def _create(**kw: Any) -> str:
    return json.dumps(P.build_create("m", "hi", **kw))


def _types(actions: list) -> list[str]:
    return [a.event["type"] if isinstance(a, Send) else type(a).__name__ for a in actions]


def _started(actions: list) -> list[Work]:
    return [a.work for a in actions if isinstance(a, Start)]
