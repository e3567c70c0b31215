"""WebSocket mode: ``response.create`` (and ``response.steer``) frames out, Responses API events back, on one
persistent socket."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
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
from labkit.live.client.record import STEER_TYPES, Exchange, Status, dumps, request_input_tokens
from labkit.live.client.transport import Mode, Steer
from labkit.wire.events import OtherEvent, ServerEvent, parse_server_event
from labkit.wire.tokens import BYTES_PER_TOKEN

#: Handshake headers whose values never reach a log.
SECRET_HEADERS = frozenset({"authorization", "openai-organization", "openai-project", "cookie"})


class _RedactingLogger(logging.LoggerAdapter):
    """websockets logs every handshake header at DEBUG level: keep the key out of the logs."""

    def log(self, level: int, msg: object, *args: object, **kwargs: object) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in SECRET_HEADERS:
            args = (args[0], "[redacted]")
        super().log(level, msg, *args, **kwargs)  # type: ignore[arg-type]


_LOGGER = _RedactingLogger(logging.getLogger("websockets.client"), {})


#: ``metadata`` key through which :meth:`WebSocketClient.pipeline` tells its creates' responses apart.
PIPELINE_METADATA_KEY = "labkit_pipeline"

#: Seconds to wait, after a steered response ended, for the server's answer to the steer.
STEER_ANSWER_TIMEOUT_S = 2.0

#: Large enough for a full-context fallback of a long rollout (the real API's limit is not published).
DEFAULT_MAX_SIZE = 256 * 1024 * 1024


class WebSocketClient:
    """A WebSocket-mode client: one connection, one response in flight, every event timestamped.

    ``create`` opens the connection when none is open (so a reconnect after a drop is just the next
    ``create``) and records the handshake as that exchange's ``connect`` span. permessage-deflate is off:
    compression costs CPU per frame and would distort latency measurements.
    """

    mode: Mode = "websocket"
    steering = True

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

    async def create(
        self, body: dict[str, Any], *, timeout: float | None = None, steer: Steer | None = None
    ) -> Exchange:
        """Send one ``response.create`` and read events until the response ends; never raises on a
        server-side failure: the returned :class:`Exchange` says what happened (``status``, ``error``).

        ``steer`` sends a ``response.steer`` for this response while it streams (see :class:`Steer`).
        """
        _check_body(body)
        async with self._turn:
            message, ex = _request(body, body)
            return await self._exchange(ex, message, timeout, steer)

    async def pipeline(self, bodies: Sequence[dict[str, Any]], *, timeout: float | None = None) -> list[Exchange]:
        """Send several ``response.create`` back to back on the default lane and read all their responses.

        The server runs a lane's creates one after another (FIFO): the ones that wait get ``response.queued``
        at once and ``response.created`` when they start, so each exchange's spans show its time in the queue.
        Each create carries ``metadata.labkit_pipeline`` (its position), which the response object echoes:
        lifecycle events are matched to their create by it, every other event goes to the response that is
        running. An ``error`` names no request, so one without a response goes to the first create nothing
        was matched to yet (exact when only the last creates are rejected, as the server answers in order).
        ``timeout`` bounds the whole pipeline; a dropped socket or a timeout ends every unfinished exchange.
        """
        for body in bodies:
            _check_body(body)
        async with self._turn:
            messages, exchanges = [], []
            for k, body in enumerate(bodies):
                tagged = {**body, "metadata": {**(body.get("metadata") or {}), PIPELINE_METADATA_KEY: str(k)}}
                message, ex = _request(tagged, body)
                messages.append(message)
                exchanges.append(ex)
            if not exchanges:
                return []
            if self._ws is None:
                try:
                    await self._open()
                except (OSError, ConnectionError, TimeoutError) as exc:
                    for ex in exchanges:
                        ex.fail(time.perf_counter(), "dropped", "connect_failed", str(exc))
                    return exchanges
                exchanges[0].t_connected = time.perf_counter()
            await self._pipeline(exchanges, messages, timeout)
            return exchanges

    async def _pipeline(self, exchanges: list[Exchange], messages: list[str], timeout: float | None) -> None:
        ws = self._ws
        assert ws is not None
        limit = self.timeout if timeout is None else timeout
        n = len(exchanges)
        matched: list[bool] = [False] * n  # received a lifecycle event (its tag)
        done: list[bool] = [False] * n
        running: int | None = None  # the response whose item events are arriving
        # Errors name no request: held until the end, then given to the creates nothing else answered.
        errors: list[tuple[float, ServerEvent, int]] = []
        try:
            async with asyncio.timeout(limit):
                for ex, message in zip(exchanges, messages, strict=True):
                    ex.t_sent = time.perf_counter()
                    await ws.send(message)
                while sum(done) + len(errors) < n:
                    raw = await ws.recv(decode=False)
                    t = time.perf_counter()
                    try:
                        event = parse_server_event(raw)
                    except ValueError:
                        event = OtherEvent.from_dict({"type": "?"})
                    k = _pipeline_position(event, n)
                    if k is not None:
                        matched[k] = True
                        if event.get("type") in ("response.created", "response.in_progress"):
                            running = k
                    elif event.get("type") == "error":
                        errors.append((t, event, len(raw)))
                        continue
                    else:
                        k = running if running is not None else next((j for j in range(n) if not done[j]), 0)
                    if exchanges[k].on_event(t, event, len(raw)):
                        done[k] = True
        except ConnectionClosed as exc:
            reason = f"code {exc.rcvd.code}: {exc.rcvd.reason}" if exc.rcvd else "no close frame"
            self._settle(
                exchanges, done, matched, errors, "dropped", "connection_closed", f"connection closed ({reason})"
            )
            self._ws = None
            return
        except TimeoutError:
            self._settle(exchanges, done, matched, errors, "timeout", "timeout", f"no terminal event within {limit} s")
            await self.close()
            return
        self._settle(exchanges, done, matched, errors, "dropped", "stream_ended", "no answer")

    @staticmethod
    def _settle(
        exchanges: list[Exchange],
        done: list[bool],
        matched: list[bool],
        errors: list[tuple[float, ServerEvent, int]],
        status: Status,
        code: str,
        message: str,
    ) -> None:
        """Give the held errors to the unfinished creates (those never started first, in send order) and
        end the rest with ``status``."""
        unfinished = [k for k in range(len(exchanges)) if not done[k]]
        order = [k for k in unfinished if not matched[k]] + [k for k in unfinished if matched[k]]
        for k, (t, event, nbytes) in zip(order, errors, strict=False):
            exchanges[k].on_event(t, event, nbytes)
            done[k] = True
        for k in order:
            if not done[k]:
                exchanges[k].fail(time.perf_counter(), status, code, message)

    async def follow(self, *, timeout: float | None = None, input: Sequence[dict[str, Any]] = ()) -> Exchange:
        """Read the response the server started by itself (the successor of a steered response) without
        sending anything; ``input`` is what that successor continues with (the accepted steering input), for
        its token count. A closed socket is a dropped exchange, as for :meth:`create`."""
        async with self._turn:
            t = time.perf_counter()
            ex = Exchange(t_start=t, t_sent=t, request_tokens=request_input_tokens({"input": list(input)}))
            ex.chained = True
            if self._ws is None:
                ex.fail(t, "dropped", "connection_closed", "no connection to read a successor from")
                return ex
            return await self._exchange(ex, None, timeout, None)

    async def _exchange(
        self, ex: Exchange, message: str | None, timeout: float | None, steer: Steer | None
    ) -> Exchange:
        if self._ws is None:
            try:
                await self._open()
            except (OSError, ConnectionError, TimeoutError) as exc:
                ex.fail(time.perf_counter(), "dropped", "connect_failed", str(exc))
                return ex
            ex.t_connected = time.perf_counter()
        ws = self._ws
        assert ws is not None
        limit = self.timeout if timeout is None else timeout
        response_id: str | None = None
        steer_sent = steer is None
        # Visible output bytes so far, to time a steer in tokens (4 bytes each) without re-joining the deltas.
        seen_bytes = counted = 0
        try:
            async with asyncio.timeout(limit):
                if message is not None:
                    ex.t_sent = time.perf_counter()
                    await ws.send(message)
                while True:
                    raw = await ws.recv(decode=False)
                    t = time.perf_counter()
                    try:
                        event = parse_server_event(raw)
                    except ValueError:
                        # Recorded as an unknown event: a measurement never dies on one bad frame.
                        event = OtherEvent.from_dict({"type": "?"})
                    if ex.on_event(t, event, len(raw)):
                        if ex.t_steer_sent is not None and not ex.steer_events:
                            await self._await_steer_answer(ws, ex)
                        break
                    if response_id is None:
                        response_id = _response_id(event)
                    if steer_sent or steer is None:
                        continue
                    while counted < len(ex.delta_text):
                        seen_bytes += len(ex.delta_text[counted].encode())
                        counted += 1
                    if response_id and -(-seen_bytes // BYTES_PER_TOKEN) >= steer.after_tokens:
                        # The running response's id is the steer's target; the lane follows from it.
                        steer_sent = True
                        frame = {
                            "type": "response.steer",
                            "previous_response_id": response_id,
                            "input": list(steer.input),
                        }
                        ex.t_steer_sent = time.perf_counter()
                        await ws.send(dumps(frame))
        except ConnectionClosed as exc:
            reason = f"code {exc.rcvd.code}: {exc.rcvd.reason}" if exc.rcvd else "no close frame"
            ex.fail(time.perf_counter(), "dropped", "connection_closed", f"connection closed ({reason})")
            self._ws = None
        except TimeoutError:
            ex.fail(time.perf_counter(), "timeout", "timeout", f"no terminal event within {limit} s")
            # The response may still be running: the only way back to a known state is a new socket.
            await self.close()
        return ex

    async def _await_steer_answer(self, ws: ClientConnection, ex: Exchange) -> None:
        """The response ended before the server answered its steer: wait for the answer (the server sends one
        for every steer, and before any successor's events), so the caller knows whether the input is the
        server's now (never to be sent again) or still its own. Without an answer in time it stays
        ``unanswered``."""
        try:
            async with asyncio.timeout(STEER_ANSWER_TIMEOUT_S):
                while not ex.steer_events:
                    raw = await ws.recv(decode=False)
                    try:
                        event = parse_server_event(raw)
                    except ValueError:
                        event = OtherEvent.from_dict({"type": "?"})
                    ex.events.append((time.perf_counter(), str(event.get("type"))))
                    ex.received_bytes += len(raw)
                    if event.get("type") in STEER_TYPES:
                        ex.steer_events.append(event)
        except TimeoutError:
            pass

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def reconnect(self) -> None:
        """Close the connection (its server-side cache goes with it); the next create opens a new one."""
        await self.close()

    async def __aenter__(self) -> WebSocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _check_body(body: dict[str, Any]) -> None:
    if "stream" in body or "background" in body:
        raise ValueError("body: 'stream' and 'background' are not sent over WebSocket mode")


def _request(sent: dict[str, Any], body: dict[str, Any]) -> tuple[str, Exchange]:
    """The ``response.create`` message for ``sent`` and its exchange, whose clock starts now: serialised
    before the clock, so the exchange begins when the request is ready to go. Token and chaining figures
    come from the caller's ``body`` (``sent`` may carry labkit's own metadata on top of it)."""
    message = dumps({"type": "response.create", **sent})
    ex = Exchange(
        t_start=time.perf_counter(),
        request_bytes=len(message.encode()),
        request_tokens=request_input_tokens(body),
    )
    ex.chained = bool(body.get("previous_response_id"))
    return message, ex


def _response_id(event: ServerEvent) -> str | None:
    """The id of the response an event belongs to, when the event carries the response object."""
    response = event.get("response")
    rid = response.get("id") if isinstance(response, dict) else None
    return rid if isinstance(rid, str) and rid else None


def _pipeline_position(event: ServerEvent, n: int) -> int | None:
    """The position a pipelined create gave its response (``metadata.labkit_pipeline``), if the event says."""
    response = event.get("response")
    metadata = response.get("metadata") if isinstance(response, dict) else None
    tag = metadata.get(PIPELINE_METADATA_KEY) if isinstance(metadata, dict) else None
    if isinstance(tag, str) and tag.isdigit() and int(tag) < n:
        return int(tag)
    return None
