"""Keep secrets and floods out of the server's log.

The server's own code never logs a key, but the libraries under it log what a client sent: aiohttp's
WebSocket handshake logs the offered subprotocols (``openai-insecure-api-key.KEY`` is how browser clients
send a key), and its HTTP parser logs the first bytes of an over-long header line, ``Authorization`` included,
with a traceback per request. An attacker who can make the server log can also fill its disk.

Policy, applied as :class:`logging.Filter` objects on the loggers that carry client input (aiohttp's and
asyncio's, and labkit's server logger):

- every record is redacted: a bearer token, an ``openai-insecure-api-key.`` subprotocol, an ``api-key`` /
  ``Authorization`` header value, or an ``sk-`` style key is replaced by ``[redacted]``, in the message, its
  arguments and the formatted traceback alike;
- a malformed request (aiohttp's ``HttpProcessingError`` family: bad request line, header too long, …) is
  logged as one line without the traceback; the traceback says nothing about the server and a client can
  make one per request;
- records with the same template are rate-limited (``burst`` per ``interval_s``); the first record after a
  quiet spell says how many were dropped. ``socket.accept() out of system resource`` under a descriptor
  shortage is the case that matters: asyncio logs it on every accept attempt, tens of thousands a second.

Filters on a logger see only the records logged on that logger (not those propagated from children), which
is how aiohttp and asyncio log: each on its own named logger listed in :data:`CLIENT_INPUT_LOGGERS`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable

#: The loggers that can carry what a client sent.
CLIENT_INPUT_LOGGERS = (
    "aiohttp.access",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "asyncio",
    "labkit.live.server",
)

REDACTED = "[redacted]"

# Each pattern keeps the name (group 1) and replaces the secret after it. Header values run to the end of
# the line or a quote/comma (how aiohttp and Python's repr() print header lists).
_SECRET_PATTERNS = (
    re.compile(r"(?i)(\bbearer\s+)[^\s'\",;]+"),
    re.compile(r"(?i)(openai-insecure-api-key\.)[^\s'\",;]+"),
    re.compile(
        r"(?i)(\b(?:authorization|api[-_]key|x-api-key|openai-api-key)[\"']?\s*[:=]\s*[\"']?)(?!bearer\b|\[redacted\])[^\s'\",;]+"
    ),
    re.compile(r"()\bsk-[A-Za-z0-9_\-]{8,}"),
)


def redact(text: str) -> str:
    """``text`` with every secret that :data:`_SECRET_PATTERNS` recognises replaced by ``[redacted]``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _is_malformed_request(exc: BaseException | None) -> bool:
    """True for aiohttp's parser errors (a client's malformed request, not a server fault)."""
    if exc is None:
        return False
    try:
        from aiohttp.http_exceptions import HttpProcessingError
    except ImportError:  # pragma: no cover - aiohttp is a dependency of the server
        return False
    return isinstance(exc, HttpProcessingError)


class RedactSecrets(logging.Filter):
    """Rewrites each record so that no secret reaches a handler; malformed requests lose their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        exc = record.exc_info[1] if record.exc_info else None
        if _is_malformed_request(exc):
            # One line: what the client did wrong (redacted), never the stack of the parser.
            message = f"{message}: {type(exc).__name__}: {' '.join(str(exc).split())}"
            record.exc_info = None
            record.exc_text = None
        elif record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg, record.args = redact(message), ()
        return True


class RateLimit(logging.Filter):
    """At most ``burst`` records of one template per ``interval_s``; then one line that counts the dropped.

    The template is the first line of the record's unformatted ``msg`` on its logger, so "accept failed"
    floods (asyncio's message continues with the socket's repr on later lines) are limited together while
    unrelated messages are not. ``clock`` is injectable for tests.
    """

    def __init__(self, burst: int = 5, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if burst < 1:
            raise ValueError(f"burst: must be >= 1, got {burst!r}")
        if interval_s <= 0:
            raise ValueError(f"interval_s: must be > 0, got {interval_s!r}")
        self.burst = burst
        self.interval_s = interval_s
        self._clock = clock
        # template -> (window start, records let through in the window, records dropped since last shown)
        self._windows: dict[tuple[str, str], tuple[float, int, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg).split("\n", 1)[0])
        now = self._clock()
        start, shown, dropped = self._windows.get(key, (now, 0, 0))
        if now - start >= self.interval_s:
            start, shown = now, 0
        if shown >= self.burst:
            self._windows[key] = (start, shown, dropped + 1)
            return False
        if dropped:
            record.msg = f"{record.msg} [{dropped} more like this were not logged]"
        self._windows[key] = (start, shown + 1, 0)
        return True


def install_log_safety(
    loggers: Iterable[str] = CLIENT_INPUT_LOGGERS, *, burst: int = 5, interval_s: float = 10.0
) -> None:
    """Add the redaction and rate-limit filters to ``loggers`` (idempotent: one of each per logger).

    The rate limit runs first, on the record's template; what it lets through is then redacted.
    """
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit(burst=burst, interval_s=interval_s))
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
