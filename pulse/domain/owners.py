"""Device owners: a tenant's end customers, kept per tenant by e-mail (as Telemetron keys customers).

Pure rules shared by the HTTP schema and the store: how many owners a device may have, and the
one normal form of an owner's e-mail."""
from __future__ import annotations

import re

MAX_OWNERS = 20
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")  # checked after lower-casing


def email(value: str) -> str:
    """Trimmed, lower-cased; ValueError when it is not an e-mail address."""
    value = value.strip().lower()
    if len(value) > 320 or not _EMAIL.match(value):
        raise ValueError("not a valid e-mail address")
    return value
