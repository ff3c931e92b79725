"""What Pulse accepts as a URL it will call (webhooks, carrier and Telemetron APIs): one check for all;
and the URL it hands out for a path of its own (download links).

Pure, so HTTP schemas and integration configs validate the same way without importing each other."""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000


def http_url(value: str) -> str:
    """An absolute http(s) URL with a host; anything else (file:, ftp:, relative) is refused."""
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH or any(c.isspace() for c in value):
        raise ValueError("must be an http or https URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL")
    try:
        parts.port
    except ValueError:
        raise ValueError("invalid port in URL") from None
    return value


def public_url(base_url: str | None, path: str) -> str:
    """`path` on Pulse's public address when one is configured, else the path alone (a client then
    resolves it against the host it called)."""
    return (base_url or "").rstrip("/") + path
