"""``labkit record``: a proxy that records an agent's session against a Responses API, for replay offline."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from labkit.live.proxy import RecordingProxy

NAME = "record"
HELP = (
    "Record an agent's session: a proxy the agent points at forwards to --upstream (WebSocket mode or HTTP/SSE) and "
    "writes every request and event with its time to --out (never the API key); replay it with "
    "'labkit serve --replay DIR', read its spans with 'labkit replay DIR' or 'labkit fit DIR'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", required=True, help="the API root to forward to, e.g. https://api.openai.com/v1")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the recording")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port (0 picks a free one; default 8766)")


def run(args: argparse.Namespace) -> int:
    proxy = RecordingProxy(args.upstream, args.out, host=args.host, port=args.port)
    try:
        asyncio.run(_record(proxy))
    except OSError as exc:
        print(f"labkit record: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _record(proxy: RecordingProxy) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with proxy:
        print(
            f"labkit record: point your agent at {proxy.base_url} (forwarding to {proxy.upstream}; "
            f"recording into {proxy.out}; Ctrl-C stops)",
            flush=True,
        )
        await stop.wait()
    n = len(proxy.recording.exchanges)
    print(f"labkit record: {n} exchanges recorded in {proxy.out}", file=sys.stderr, flush=True)
