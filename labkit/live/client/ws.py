"""WebSocket mode: ``response.create`` frames out, Responses API events back, on one persistent socket."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from labkit.live.client.config import (
    auth_headers,
    is_loopback,
    resolve_api_key,
    resolve_base_url,
    websocket_url,
)
from labkit.live.client.record import Exchange, dumps, request_input_tokens
from labkit.wire.protocol import parse_server_event

#: Handshake headers whose values never reach a log.
SECRET_HEADERS = frozenset({"authorization", "openai-organization", "openai-project", "cookie"})


class _RedactingLogger(logging.LoggerAdapter):
    """websockets logs every handshake header at DEBUG level: keep the key out of the logs."""

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in SECRET_HEADERS:
            args = (args[0], "[redacted]")
        super().log(level, msg, *args, **kwargs)  # type: ignore[arg-type]


_LOGGER = _RedactingLogger(logging.getLogger("websockets.client"), {})

#: Large enough for a full-context fallback of a long rollout (the real API's limit is not published).
DEFAULT_MAX_SIZE = 256 * 1024 * 1024


class WebSocketClient:
    """A WebSocket-mode client: one connection, one response in flight, every event timestamped.

    ``create`` opens the connection when none is open (so a reconnect after a drop is just the next
    ``create``) and records the handshake as that exchange's ``connect`` span. permessage-deflate is off:
    compression costs CPU per frame and would distort latency measurements.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        ping_interval: float | None = 20.0,
        max_size: int | None = DEFAULT_MAX_SIZE,
        open_timeout: float = 10.0,
        timeout: float | None = 300.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self.url = websocket_url(self.base_url)
        self._api_key = resolve_api_key(api_key)
        self.ping_interval = ping_interval
        self.max_size = max_size
        self.open_timeout = open_timeout
        #: Seconds to wait for a response's terminal event; the socket is closed when it runs out.
        self.timeout = timeout
        self._headers = {**auth_headers(self._api_key), **(headers or {})}
        self._ws: ClientConnection | None = None
        #: Connections opened so far (1 + reconnects).
        self.connections = 0
        # One response in flight per socket (the default lane's rule, and one reader per socket): concurrent
        # creates on one client take turns; each one's clock starts when its turn comes.
        self._turn = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> float:
        """Open the connection if it is not open; returns the handshake's seconds (0 when already open)."""
        if self._ws is not None:
            return 0.0
        t = time.perf_counter()
        await self._open()
        return time.perf_counter() - t

    async def _open(self) -> None:
        kwargs: dict[str, Any] = {}
        if is_loopback(self.url):
            kwargs["proxy"] = None
        try:
            self._ws = await connect(
                self.url,
                additional_headers=self._headers,
                compression=None,
                ping_interval=self.ping_interval,
                max_size=self.max_size,
                open_timeout=self.open_timeout,
                logger=_LOGGER,
                **kwargs,
            )
        except InvalidStatus as exc:
            raise ConnectionError(f"websocket: handshake refused with HTTP {exc.response.status_code}") from exc
        except InvalidHandshake as exc:
            raise ConnectionError(f"websocket: handshake failed: {exc}") from exc
        self.connections += 1

    async def create(self, body: dict[str, Any], *, timeout: float | None = None) -> Exchange:
        """Send one ``response.create`` and read events until the response ends; never raises on a
        server-side failure: the returned :class:`Exchange` says what happened (``status``, ``error``)."""
        if "stream" in body or "background" in body:
            raise ValueError("body: 'stream' and 'background' are not sent over WebSocket mode")
        async with self._turn:
            return await self._create(body, timeout)

    async def _create(self, body: dict[str, Any], timeout: float | None) -> Exchange:
        # Serialised before the clock starts: the exchange begins when the request is ready to go.
        message = dumps({"type": "response.create", **body})
        nbytes, ntokens = len(message.encode()), request_input_tokens(body)
        ex = Exchange(t_start=time.perf_counter(), request_bytes=nbytes, request_tokens=ntokens)
        if self._ws is None:
            try:
                await self._open()
            except (OSError, ConnectionError, TimeoutError) as exc:
                ex.fail(time.perf_counter(), "dropped", "connect_failed", str(exc))
                return ex
            ex.t_connected = time.perf_counter()
        ws = self._ws
        assert ws is not None
        ex.chained = bool(body.get("previous_response_id"))
        limit = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                ex.t_sent = time.perf_counter()
                await ws.send(message)
                while True:
                    raw = await ws.recv(decode=False)
                    t = time.perf_counter()
                    try:
                        event = parse_server_event(raw)
                    except ValueError:
                        # Recorded as an unknown event: a measurement never dies on one bad frame.
                        event = {"type": "?"}
                    if ex.on_event(t, event, len(raw)):
                        break
        except ConnectionClosed as exc:
            reason = f"code {exc.rcvd.code}: {exc.rcvd.reason}" if exc.rcvd else "no close frame"
            ex.fail(time.perf_counter(), "dropped", "connection_closed", f"connection closed ({reason})")
            self._ws = None
        except TimeoutError:
            ex.fail(time.perf_counter(), "timeout", "timeout", f"no terminal event within {limit} s")
            # The response may still be running: the only way back to a known state is a new socket.
            await self.close()
        return ex

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def __aenter__(self) -> WebSocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
