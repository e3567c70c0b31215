"""Where a client connects and with which key: arguments first, then the environment, as the SDK does."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from labkit.live.netaddr import is_loopback_host

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def resolve_base_url(base_url: str | None) -> str:
    """``base_url``, else ``OPENAI_BASE_URL``, else the public API; without a trailing slash."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url: expected http(s)://host[:port]/path, got {url!r}")
    return url.rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """``api_key``, else ``OPENAI_API_KEY``; ``None`` (no Authorization header) when neither is set."""
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    return key or None


def responses_url(base_url: str) -> str:
    return f"{base_url}/responses"


def websocket_url(base_url: str) -> str:
    """The SDK's rule: swap the scheme (http->ws, https->wss) and append ``/responses``."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/responses", parts.query, ""))


def is_loopback(url: str) -> bool:
    """True for localhost and loopback addresses: such connections never go through a proxy."""
    return is_loopback_host(urlsplit(url).hostname or "")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
