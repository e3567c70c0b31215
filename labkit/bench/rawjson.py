"""A hand-written aiohttp JSON handler: the baseline of the ``json`` part of ``labkit bench server``.

``POST /v1/responses`` reads and parses the request body, then answers with the Response object it was
started with (the simulator's own answer to the benchmark's request, captured by the parent), under a fresh
response id and ``created_at``, serialised per request by ``web.json_response`` as the simulator's is. So the
baseline does the same HTTP, parsing and JSON work as labkit's non-streaming path and no logic at all.

Run as ``python -m labkit.bench.rawjson JSON-CONFIG`` (``{"body": {...}}``): pins itself to its first usable
core, prints ``URLS <url>`` and serves until its stdin closes. :class:`labkit.bench.server.RawJsonProcess`
does that from Python (kept out of this module so the baseline process imports nothing but what it serves with).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from typing import Any

from aiohttp import web


def handler(template: dict[str, Any]) -> Any:
    async def handle(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        answer = dict(template)
        answer["id"] = f"resp_{secrets.token_hex(24)}"
        answer["created_at"] = int(time.time())
        answer["model"] = body["model"]
        return web.json_response(answer)

    return handle


async def _serve(config: dict[str, Any]) -> tuple[str, Any]:
    app = web.Application()
    app.router.add_post("/v1/responses", handler(config["body"]))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}/v1/responses", runner.cleanup


async def _main(config: dict[str, Any]) -> None:
    url, stop = await _serve(config)
    print(f"URLS {url}", flush=True)
    # Serve until the parent closes our stdin (or dies).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await stop()


if __name__ == "__main__":
    from labkit.bench.pinning import pin_self

    pin_self(0)
    asyncio.run(_main(json.loads(sys.argv[1])))
