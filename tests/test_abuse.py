"""Attacks on a running server, each bounded in count and time, loopback only: every one ends in a bounded
state, a well-behaved canary is still served, and no key reaches the server's output.

The server runs as `labkit serve` in its own process where the attack is about the process (its descriptor
limit, its log); in-process otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
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


# -- attacks with a canary agent, memory, pipelining, floods, big and deep bodies --------------------------

_ATTACK = r"""
import asyncio, json, sys, time
import aiohttp

async def main(ws_url, seconds):
    port = int(ws_url.split(":")[2].split("/")[0])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        # Held first: idle WebSockets and slowloris connections that never finish their headers.
        held = [await s.ws_connect(ws_url) for _ in range(100)]
        slow = []
        for _ in range(100):
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n")
            slow.append(w)
        flooded = await s.ws_connect(ws_url, autoping=True)
        piped = await s.ws_connect(ws_url, max_msg_size=0)
        stop = time.monotonic() + seconds
        print("attack ready", flush=True)

        async def pings():  # a ping flood: 100 pings every 10 ms (up to 10,000 a second) for the whole attack
            while time.monotonic() < stop:
                for _ in range(100):
                    await flooded.ping(b"x" * 16)
                await asyncio.sleep(0.01)

        async def pipelined():  # 1,000 creates sent at once without reading; the queue bounds answer the excess
            body = json.dumps({"type": "response.create", "model": "m", "input": "flood"})
            for _ in range(1000):
                await piped.send_str(body)
            while time.monotonic() < stop:
                await asyncio.sleep(0.1)

        async def drain(ws):
            async for _ in ws:
                pass

        readers = [asyncio.create_task(drain(flooded)), asyncio.create_task(drain(piped))]
        await asyncio.gather(pings(), pipelined(), return_exceptions=True)
        for task in readers:
            task.cancel()
        for ws in [*held, flooded, piped]:
            await ws.close()
        for w in slow:
            w.close()

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def _canary_turns(ws_url: str, n: int) -> list[float]:
    """Seconds from sending each create to its ``response.completed``, ``n`` creates one after another."""
    times = []
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        for i in range(n):
            t0 = time.monotonic()
            await ws.send_str(json.dumps({"type": "response.create", "model": "m", "input": f"canary {i}"}))
            while True:
                event = json.loads((await ws.receive(timeout=30)).data)
                if event["type"] in ("response.completed", "response.failed", "error"):
                    break
            assert event["type"] == "response.completed", event
            times.append(time.monotonic() - t0)
    return times


async def test_a_canary_agents_turns_stay_within_twice_quiet_under_attack() -> None:
    # fast_test at 200 tokens/s: each canary turn is about 0.56 s of planned waits, so the server's own
    # lateness under attack is what the comparison sees.
    serve = ["--profile", "websocket", "--workload", "fast_test", "--tps", "200", "--seed", "1"]
    with _serve(serve) as (base, out):
        ws_url = "ws" + base[len("http") :] + "/v1/responses"
        quiet = await _canary_turns(ws_url, 4)
        attacker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _ATTACK, ws_url, "12", stdout=asyncio.subprocess.PIPE
        )
        try:
            assert attacker.stdout is not None
            assert b"attack ready" in await asyncio.wait_for(attacker.stdout.readline(), 30)
            attacked = await _canary_turns(ws_url, 4)
        finally:
            await asyncio.wait_for(attacker.wait(), 60)
        after = await _canary_turns(ws_url, 2)
    quiet_med, attacked_med = sorted(quiet)[len(quiet) // 2], sorted(attacked)[len(attacked) // 2]
    print(f"canary turn, median s: quiet {quiet_med:.3f}, under attack {attacked_med:.3f}, after {max(after):.3f}")
    assert attacked_med <= 2 * quiet_med, (quiet, attacked)
    assert max(after) <= 2 * quiet_med, after
    out.unlink()


async def test_a_thousand_pipelined_creates_on_one_socket_are_bounded_by_the_queue() -> None:
    # Slow turns (20 tokens/s) so that nothing completes while the creates arrive.
    async with SimServer("websocket", "fast_test", tps=20, seed=1) as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url, max_msg_size=0) as ws:
            body = json.dumps({"type": "response.create", "model": "m", "input": "pipelined"})
            for _ in range(1000):
                await ws.send_str(body)
            # The first create starts at once; each other one is answered response.queued or error right away
            # (its response.created, if it waited, comes when it starts).
            answers: dict[str, int] = {"response.queued": 0, "error": 0}
            codes: set[str] = set()
            while answers["response.queued"] + answers["error"] < 999:
                event = json.loads((await ws.receive(timeout=30)).data)
                kind = event["type"]
                if kind in answers:
                    answers[kind] += 1
                    if kind == "error":
                        codes.add(event["error"]["code"])
            print("1,000 pipelined creates:", answers)
            assert answers["response.queued"] == server.max_queued_per_lane
            assert answers["error"] == 1000 - 1 - server.max_queued_per_lane
            assert codes == {"websocket_queue_limit_reached"}
            # Still usable on another lane.
            await ws.send_str(json.dumps({"type": "response.create", "model": "m", "input": "x", "stream_id": "b"}))
            while (event := json.loads((await ws.receive(timeout=30)).data))["type"] != "response.created":
                pass
        await asyncio.sleep(0.2)
        assert not server._connections  # the closed socket's queued creates are gone with it


async def test_a_ping_flood_is_answered_and_costs_the_server_nothing_lasting() -> None:
    async with SimServer(instant=True) as server, aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url, autoping=False) as ws:
            for _ in range(100):
                for _ in range(200):
                    await ws.ping(b"p")
                await asyncio.sleep(0)
            pongs = 0
            while pongs < 20_000:
                msg = await ws.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.PONG, msg
                pongs += 1
            # The flooded connection itself still serves a create.
            await ws.send_str(json.dumps({"type": "response.create", "model": "m", "input": "hi"}))
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "response.completed":
                    break
        assert await _canary(server.root_url) < 1.0


async def test_a_50_mb_body_gets_413_and_100k_deep_json_gets_400() -> None:
    async with SimServer(instant=True) as server:
        # 50 MB, streamed; the server answers once it has read past its 16 MiB limit.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        size = 50 * 1024 * 1024
        writer.write(
            f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n".encode()
        )
        chunk = b'{"model":"m","input":"' + b"x" * (1 << 20)

        async def send() -> None:
            with contextlib.suppress(ConnectionError):
                sent = 0
                while sent < size:
                    writer.write(chunk[: size - sent])
                    sent += len(chunk)
                    await writer.drain()

        sender = asyncio.create_task(send())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert head.split(b"\r\n", 1)[0].split()[1] == b"413", head[:80]
        sender.cancel()
        writer.close()
        async with aiohttp.ClientSession() as session:
            deep = b'{"model":"m","input":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
            async with session.post(
                server.base_url + "/responses", data=deep, headers={"Content-Type": "application/json"}
            ) as r:
                assert r.status == 400
                assert (await r.json())["error"]["code"] == "invalid_json"
        assert await _canary(server.root_url) < 1.0


async def test_memory_returns_near_baseline_after_load_with_a_store_cap() -> None:
    import psutil

    caps = ["--max-stored", "2000", "--max-stored-bodies", "500", "--max-stored-bytes", "2000000"]
    with _serve(["--instant", "--workload", "fast_test", *caps]) as (base, out):
        port = int(base.rsplit(":", 1)[1])
        proc = next(
            p
            for p in psutil.process_iter(["pid"])
            if any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in _inet(p))
        )

        async def load(n: int, workers: int = 8) -> int:
            async with aiohttp.ClientSession() as session:

                async def worker(k: int) -> int:
                    for i in range(k):
                        body = {"model": "m", "input": f"load {i} " + "text " * 200}
                        async with session.post(f"{base}/v1/responses", json=body) as r:
                            assert r.status == 200
                            await r.read()
                    return k

                return sum(await asyncio.gather(*(worker(n // workers) for _ in range(workers))))

        await load(400)  # warm-up: imports, caches, the allocator's arenas
        baseline = proc.memory_info().rss
        peak = baseline
        for _ in range(5):
            await load(800)
            peak = max(peak, proc.memory_info().rss)
        await asyncio.sleep(1.0)
        after = proc.memory_info().rss
    mib = 1024 * 1024
    print(f"labkit serve RSS, MiB: baseline {baseline / mib:.1f}, peak {peak / mib:.1f}, after {after / mib:.1f}")
    assert after - baseline < 40 * mib, (baseline, peak, after)
    out.unlink()


def _inet(proc: object) -> list:
    try:
        return proc.net_connections(kind="inet")  # type: ignore[attr-defined, no-any-return]
    except Exception:
        return []
