"""How secrets read back through the API: masked, so a round-tripped form keeps the stored value."""
from __future__ import annotations

from typing import Any

MASK_PREFIX = "***"


def mask(value: Any) -> Any:
    """"***" plus the secret's last 4 characters (only "***" when it is short)."""
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    text = str(value)
    return MASK_PREFIX + (text[-4:] if len(text) >= 12 else "")


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(MASK_PREFIX)
