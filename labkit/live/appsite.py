"""A small aiohttp app on one host and port, started and stopped: the edge of the recording proxy and of the
replay server, which answer every path under ``/v1/`` with one handler.

The bound port (port 0 picks one) is read from aiohttp's public ``runner.addresses``; on stop, open WebSockets
are closed with 1001 (going away) first, since aiohttp's cleanup does not close them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

#: The largest request body either app takes (a long conversation resent whole stays well under it).
MAX_BODY_BYTES = 64 * 1024 * 1024


async def start_app(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], host: str, port: int
) -> tuple[web.AppRunner, int]:
    """Serve ``handler`` on every method and path under ``/v1/``; returns the runner and the bound port."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", "/v1/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


async def stop_app(runner: web.AppRunner, sockets: Iterable[web.WebSocketResponse], reason: bytes) -> None:
    """Close ``sockets`` (1001, ``reason``; at most 1 s each), then the runner."""
    for ws in list(sockets):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=1001, message=reason), 1.0)
    await runner.cleanup()
