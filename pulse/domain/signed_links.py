"""Signed links: a URL that grants reading one resource until an instant, without a user token.

The export download answers with such a link (the documented system redirects to a pre-signed S3
URL): HMAC-SHA256 over the resource and the expiry, under a server secret. Pure, so whatever
serves the resource later (Pulse today, an object store's own signing tomorrow) keeps this seam.
"""
from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, resource: str, expires: int) -> str:
    """Hex HMAC-SHA256 of `resource` and the expiry (Unix seconds)."""
    return hmac.new(secret.encode(), f"{resource}\n{expires}".encode(), hashlib.sha256).hexdigest()


def is_valid(secret: str, resource: str, expires: int, given: str, now: float) -> bool:
    """The signature matches (compared in constant time) and the link has not expired."""
    return now < expires and hmac.compare_digest(signature(secret, resource, expires), given)
