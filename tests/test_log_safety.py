"""The log-safety filters: no secret reaches a handler, malformed requests log one line, floods are limited."""

from __future__ import annotations

import io
import logging
import resource
import subprocess
import sys

import pytest
from aiohttp.http_exceptions import LineTooLong

from labkit.live.server.descriptors import default_max_connections, raise_open_files_limit
from labkit.live.server.logsafety import RateLimit, RedactSecrets, install_log_safety, redact

KEY = "sk-proj-abcdefghijklmnop0123456789"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {KEY}",
        f"authorization=bearer {KEY}",
        f"Client protocols ['openai-insecure-api-key.{KEY}', 'realtime'] don't overlap",
        f"api-key: {KEY}",
        f"{{'api_key': '{KEY}'}}",
        f"x-api-key={KEY}",
        f"bare key {KEY} in text",
        f"Bearer tok_{KEY[3:]}",
    ],
)
def test_redact_removes_every_form_of_the_key(text: str) -> None:
    out = redact(text)
    assert KEY not in out and KEY[3:] not in out
    assert "[redacted]" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "POST /v1/responses 200 in 0.31 s; model gpt-5; skip-list built"
    assert redact(text) == text


def _capture(logger_name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.handlers = [handler]
    logger.filters = []
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_args_and_tracebacks_are_redacted() -> None:
    logger, stream = _capture("test.logsafety.redact")
    logger.addFilter(RedactSecrets())
    logger.warning("%s: Client protocols %r", "127.0.0.1", [f"openai-insecure-api-key.{KEY}"])
    try:
        raise RuntimeError(f"header was Authorization: Bearer {KEY}")
    except RuntimeError:
        logger.exception("handler failed")
    out = stream.getvalue()
    assert KEY not in out
    assert "openai-insecure-api-key.[redacted]" in out
    assert "RuntimeError: header was Authorization: Bearer [redacted]" in out
    assert "Traceback" in out  # a server fault keeps its traceback, redacted


def test_malformed_request_logs_one_line_without_traceback() -> None:
    logger, stream = _capture("test.logsafety.malformed")
    logger.addFilter(RedactSecrets())
    exc = LineTooLong(f"Authorization: Bearer {KEY}"[:100], "8190")
    logger.error("Error handling request from %s", "127.0.0.1", exc_info=exc)
    out = stream.getvalue()
    assert KEY[:20] not in out
    assert "Traceback" not in out
    assert out.count("\n") == 1 and "LineTooLong" in out


def test_rate_limit_counts_what_it_dropped() -> None:
    now = [0.0]
    logger, stream = _capture("test.logsafety.rate")
    logger.addFilter(RateLimit(burst=3, interval_s=10.0, clock=lambda: now[0]))
    for i in range(1000):
        logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", i)
    assert stream.getvalue().count("socket.accept()") == 3
    logger.error("another message")  # another template is not limited by the first
    now[0] = 10.5
    logger.error("socket.accept() out of system resource\nsocket: <fd=%d>", 1001)
    lines = stream.getvalue()
    assert lines.count("socket.accept()") == 4
    assert "[997 more like this were not logged]" in lines
    assert "another message" in lines


def test_rate_limit_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="burst"):
        RateLimit(burst=0)
    with pytest.raises(ValueError, match="interval_s"):
        RateLimit(interval_s=0)


def test_install_is_idempotent() -> None:
    name = "test.logsafety.install"
    install_log_safety([name])
    install_log_safety([name])
    kinds = [type(f).__name__ for f in logging.getLogger(name).filters]
    assert kinds == ["RateLimit", "RedactSecrets"]


def test_open_files_limit_is_raised_to_the_hard_limit() -> None:
    # In a child process, so this test process's own limit stays as it was.
    code = (
        "import resource\n"
        "from labkit.live.server.descriptors import raise_open_files_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "now = raise_open_files_limit()\n"
        "print(now, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    now, soft, hard = (int(x) for x in out)
    assert now == soft
    assert soft == (hard if hard != resource.RLIM_INFINITY else 1 << 20) or soft >= 256
    assert raise_open_files_limit() >= 1


def test_default_max_connections() -> None:
    assert default_max_connections(1024) == 960
    assert default_max_connections(10) == 1
    with pytest.raises(ValueError, match="open_files_limit"):
        default_max_connections(0)
