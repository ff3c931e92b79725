"""Signed links: a URL that grants reading one resource until an instant, without a user token.

Export downloads and firmware images are served this way (the documented system redirects to a
pre-signed S3 URL): HMAC-SHA256 over the resource and the expiry, under a server secret, carried in
the `expires` and `signature` query parameters. Pure, so whatever serves the resource later (Pulse
today, an object store's own signing tomorrow) keeps this seam.
"""
from __future__ import annotations

import hashlib
import hmac

from pulse.errors import Forbidden

REFUSED = "Invalid or expired download link"


def signature(secret: str, resource: str, expires: int) -> str:
    """Hex HMAC-SHA256 of `resource` and the expiry (Unix seconds)."""
    return hmac.new(secret.encode(), f"{resource}\n{expires}".encode(), hashlib.sha256).hexdigest()


def is_valid(secret: str, resource: str, expires: int, given: str, now: float) -> bool:
    """The signature matches (compared in constant time) and the link has not expired."""
    return now < expires and hmac.compare_digest(signature(secret, resource, expires), given)


def signed_path(secret: str, resource: str, path: str, expires: int) -> str:
    """`path` (which serves `resource`) with the query that grants it until `expires`."""
    return f"{path}?expires={expires}&signature={signature(secret, resource, expires)}"


def check(secret: str, resource: str, expires: int, given: str, now: float) -> None:
    """Forbidden (403) unless the link's signature is right and it has not expired."""
    if not is_valid(secret, resource, expires, given, now):
        raise Forbidden(REFUSED)
