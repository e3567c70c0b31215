"""The in-process simulated Responses API server (WebSocket mode + HTTP/SSE on one port).

``server = await SimServer.start(profile="websocket", tps=1000)`` inside a running loop (a notebook
cell), or ``async with SimServer(...) as server:`` in a script; ``labkit serve`` from the shell.
"""

from labkit.live.server.app import SimServer
from labkit.live.server.engine import Engine, LaneCache, Turn, TurnFailed, TurnLog
from labkit.live.server.faults import DropConnection, Faults
from labkit.live.server.state import Replicas, ResponseRecord, Store

__all__ = [
    "DropConnection",
    "Engine",
    "Faults",
    "LaneCache",
    "Replicas",
    "ResponseRecord",
    "SimServer",
    "Store",
    "Turn",
    "TurnFailed",
    "TurnLog",
]
