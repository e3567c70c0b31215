"""What a serving process's garbage collector does per non-streaming create, with the server alone driving it.

    PYTHONPATH=$PWD .venv/bin/python tools/gc_per_request.py [--creates N]

Starts the simulator as ``labkit bench server`` runs it (instant, start-up frozen) on an event loop in a thread of
this process and loads it from the main thread over one kept-alive loopback connection with a blocking socket, so
that nearly every allocation the collector counts is the server's (``tools/gc_after_load.py`` loads it with an
asyncio client in the same thread, whose own garbage triggers collections the server alone would not). After a
warm-up of 3,000 creates it serves N more and prints, per create: the collections of each generation and their
time (from ``gc.callbacks``), the longest one (the pause a request waits through), and how many more objects the
collector tracks (what its older generations' walks grow by), with the types that grew.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from labkit.bench import servers
from labkit.bench.server import _create


def _serve(box: dict[str, Any], ready: threading.Event) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    urls, _ = loop.run_until_complete(servers._serve_labkit({}))
    box["url"] = urls.split()[0]
    ready.set()
    loop.run_forever()


def _client(url: str) -> Any:
    parts = urlsplit(url)
    body = _create(websocket=False, stream=False).encode()
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sock = socket.create_connection((parts.hostname, parts.port))

    def create() -> None:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, rest = data.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += sock.recv(65536)

    return create


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=20_000)
    n = parser.parse_args().creates
    box: dict[str, Any] = {}
    ready = threading.Event()
    threading.Thread(target=_serve, args=(box, ready), daemon=True).start()
    ready.wait()
    create = _client(box["url"])
    for _ in range(3000):
        create()
    #: Per generation: collections, their seconds together, the longest one's.
    stats: dict[int, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    started: list[float] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            entry = stats[info["generation"]]
            took = time.perf_counter() - started.pop()
            entry[0] += 1
            entry[1] += took
            entry[2] = max(entry[2], took)

    before = collections.Counter(type(o).__name__ for o in gc.get_objects())
    gc.callbacks.append(watch)
    for _ in range(n):
        create()
    gc.callbacks.remove(watch)
    after = collections.Counter(type(o).__name__ for o in gc.get_objects())
    for generation in (0, 1, 2):
        count, seconds, longest = stats.get(generation, [0, 0.0, 0.0])
        print(
            f"generation {generation}: {count / n:.4f} collections and {seconds / n * 1e6:.2f} us per create, "
            f"the longest {longest * 1e3:.2f} ms"
        )
    grew = after - before
    kinds = ", ".join(f"{k} {v / n:.3f}" for k, v in grew.most_common(4)) or "none"
    print(f"tracked objects: {sum(after.values()) - sum(before.values()):+,} over {n:,} creates ({kinds} per create)")


if __name__ == "__main__":
    main()
