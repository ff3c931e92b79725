"""Encryption at rest for tenant secrets (notification channel passwords, keys, signed URLs).

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under the key(s) of `settings.secrets_key`:
a comma-separated list whose first key encrypts and all keys decrypt, so a key is rotated by
prepending a new one and re-saving (or just waiting for edits) before the old one is dropped.
Unset, a key is generated into the data dir (one machine); a cluster must configure it.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pulse.config.settings import Settings


class SecretsUnreadable(Exception):
    """Stored secrets do not decrypt with the configured keys (key lost or rotated out)."""


class SecretBox:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("secrets_key holds no key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError as e:
            raise ValueError(f"secrets_key: not a Fernet key ({e})") from None

    def encrypt(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values, separators=(",", ":")).encode()).decode()

    def decrypt(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsUnreadable("stored secrets do not decrypt with the configured secrets_key") from None


@lru_cache(maxsize=8)
def _box(keys: str) -> SecretBox:
    return SecretBox(keys)


def box_for(settings: Settings) -> SecretBox:
    return _box(settings.resolved_secrets_key())
