"""Async Responses API clients that timestamp every event: WebSocket mode and HTTP (SSE or JSON).

Both work against the simulator (``labkit.live.server``) and the real API: the base URL and key come from the
arguments or ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``. Each request yields an :class:`Exchange` with the raw
event timestamps and the live coarse spans; :mod:`labkit.live.runner` drives whole agent rollouts with them.
"""

from labkit.live.client.config import DEFAULT_BASE_URL, websocket_url
from labkit.live.client.http import HttpClient
from labkit.live.client.record import DELTA_TYPES, STEER_TYPES, TERMINAL_TYPES, Exchange, events_frame
from labkit.live.client.transport import Steer, Transport
from labkit.live.client.ws import WebSocketClient

__all__ = [
    "DEFAULT_BASE_URL",
    "DELTA_TYPES",
    "STEER_TYPES",
    "TERMINAL_TYPES",
    "Exchange",
    "HttpClient",
    "Steer",
    "Transport",
    "WebSocketClient",
    "events_frame",
    "websocket_url",
]
