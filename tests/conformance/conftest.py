"""Fixtures of the conformance suite: the simulator as the scenarios configure it, in this loop or a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from labkit.live.server import SimServer
from labkit.live.server.conformance import SIMULATOR_KEY, simulator, simulator_workload


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    async with simulator() as server:
        yield server


@contextmanager
def threaded_simulator(**options: Any) -> Iterator[SimServer]:
    """The simulator on its own loop in a thread, for the synchronous SDK clients (which block this thread)."""
    settings: dict[str, Any] = {"workload": simulator_workload(), "tps": 2000.0, "api_key": SIMULATOR_KEY, **options}
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            holder["server"] = loop.run_until_complete(SimServer.start("websocket", **settings))
        except BaseException as exc:  # reported to the test below
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(holder["server"].stop())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the simulator did not start"
    if "error" in holder:
        raise holder["error"]
    try:
        yield holder["server"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def sync_sim() -> Iterator[SimServer]:
    with threaded_simulator(instant=True) as server:
        yield server
