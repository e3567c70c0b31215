"""Attacks on a running server, each bounded in count and time, loopback only: every one ends in a bounded
state, a well-behaved canary is still served, and no key reaches the server's output.

The server runs as `labkit serve` in its own process where the attack is about the process (its descriptor
limit, its log); in-process otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from labkit.live.server import SimServer

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-abuse-canary-0123456789abcdefXYZ"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(args: list[str], *, env_key: str | None = None, nofile: int | None = None) -> Iterator[tuple[str, Path]]:
    """`labkit serve` in a child process; yields (base URL, the file its stdout and stderr go to)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_SERVER_API_KEY")}
    env["PYTHONPATH"] = str(ROOT)
    if env_key:
        env["LABKIT_SERVER_API_KEY"] = env_key

    def limit() -> None:  # the child's own descriptor limit, soft and hard: it cannot raise it further
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"labkit-abuse-{port}.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "labkit", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=limit,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"labkit serve did not start:\n{out.read_text()}") from None
                time.sleep(0.05)
        yield base, out
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _canary(base: str, key: str | None = None, *, retry_until: float | None = None) -> float:
    """Seconds until GET /v1/models answers 200 (retrying a 503 until ``retry_until``, as a client would)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"{base}/v1/models", headers=headers, timeout=aiohttp.ClientTimeout(20)) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
                    assert r.status == 503, r.status
            except aiohttp.ClientConnectionError:
                pass
            if retry_until is None or time.monotonic() > retry_until:
                raise AssertionError("the canary was not served")
            await asyncio.sleep(0.05)


async def test_no_key_reaches_the_output_wherever_a_client_offers_it() -> None:
    with _serve(["--instant", "--workload", "fast_test"], env_key=KEY) as (base, out):
        ws_url = "ws" + base[len("http") :] + "/v1/responses"
        async with aiohttp.ClientSession() as session:
            # The right key as a bearer token, in a WebSocket subprotocol (browser clients), in an api-key header,
            # a wrong key that looks like one, and an Authorization header over aiohttp's 8,190-byte line limit.
            async with session.post(
                f"{base}/v1/responses", json={"model": "m", "input": "hi"}, headers={"Authorization": f"Bearer {KEY}"}
            ) as r:
                assert r.status == 200
            for protocols in ([f"openai-insecure-api-key.{KEY}", "realtime"], [f"openai-insecure-api-key.{KEY}"]):
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    async with session.ws_connect(ws_url, protocols=protocols):
                        pass
            async with session.ws_connect(
                ws_url, protocols=[f"openai-insecure-api-key.{KEY}"], headers={"Authorization": f"Bearer {KEY}"}
            ) as ws:
                await ws.send_str(json.dumps({"type": "response.create", "model": "m", "input": "hi"}))
                await ws.receive(timeout=10)
            async with session.get(f"{base}/v1/models", headers={"api-key": KEY}) as r:
                assert r.status == 401
            async with session.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {KEY}x"}) as r:
                assert r.status == 401
        reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() * 300 + b"\r\n\r\n")
        await writer.drain()
        assert b" 400 " in (await asyncio.wait_for(reader.read(), 10)).split(b"\r\n", 1)[0]
        writer.close()
        await asyncio.sleep(0.2)
    text = out.read_text(errors="replace")
    out.unlink()
    assert KEY not in text and KEY[3:20] not in text, text[-2000:]
    assert "Traceback" not in text, text[-2000:]


async def test_slow_connections_under_a_low_descriptor_limit_leave_room_for_a_canary() -> None:
    # The case: `ulimit -n 1024` and 1,100 connections that never finish their headers.
    header_timeout = 2.0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1300:
        pytest.skip(f"this process may open at most {hard} files; the test needs 1,300")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1300) if hard == resource.RLIM_INFINITY else hard, hard))
    try:
        with _serve(["--instant", "--header-timeout", str(header_timeout)], nofile=1024) as (base, out):
            port = int(base.rsplit(":", 1)[1])
            slow = []
            for _ in range(1100):
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
                except (OSError, TimeoutError):
                    continue
                writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")  # never finished
                slow.append(writer)
            t0 = time.monotonic()
            waited = await _canary(base, retry_until=t0 + header_timeout + 1.0)
            assert waited <= header_timeout + 1.0
            for writer in slow:
                writer.close()
            await asyncio.sleep(0.2)
            assert await _canary(base) < 1.0
        text = out.read_text(errors="replace")
        out.unlink()
        # Accept errors, if any, are rate-limited: a handful of lines, not tens of thousands.
        assert text.count("Too many open files") <= 20, text.count("Too many open files")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_idle_connections_are_closed_and_pings_keep_a_websocket() -> None:
    async with SimServer(instant=True, http_idle_timeout_s=0.5, ws_idle_timeout_s=0.6) as server:
        port = server.port
        # HTTP: a kept-alive connection left idle is closed at the idle timeout.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        await asyncio.wait_for(reader.read(), 5)  # drains the body, then EOF when the server closes
        assert 0.3 < time.monotonic() - t0 < 3.0
        writer.close()
        async with aiohttp.ClientSession() as session:
            # WebSocket: no client frame and nothing in flight -> closed with 1000 "idle timeout".
            async with session.ws_connect(server.ws_url, autoping=True) as ws:
                msg = await ws.receive(timeout=5)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
                assert ws.close_code == 1000
            # Pings count as activity: a client pinging every 0.2 s is still open after 1.5 s.
            async with session.ws_connect(server.ws_url, heartbeat=0.2) as ws:
                await asyncio.sleep(1.5)
                assert not ws.closed
                await ws.send_str(json.dumps({"type": "response.create", "model": "m", "input": "hi"}))
                msg = await ws.receive(timeout=5)
                assert json.loads(msg.data)["type"].startswith("response.")


async def test_connection_cap_answers_with_the_api_error_shape() -> None:
    async with SimServer(instant=True, max_connections=5, header_timeout_s=30) as server:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
        await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session, session.get(server.base_url + "/models") as r:
            assert r.status == 503
            body = await r.json()
            assert body["error"]["type"] == "server_error"
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.1)
        assert await _canary(server.root_url) < 1.0
        assert server.metrics["refused_connections"] >= 1


def test_bounds_reject_nonsense() -> None:
    for field in ("header_timeout_s", "http_idle_timeout_s", "ws_idle_timeout_s"):
        with pytest.raises(ValueError, match=field):
            SimServer(**{field: 0})
    with pytest.raises(ValueError, match="max_connections"):
        SimServer(max_connections=0)
