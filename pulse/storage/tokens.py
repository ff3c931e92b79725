"""Device tokens: the MQTT password / X-Provision-Token secrets of one device.

A secret is 32 random bytes (urlsafe); only its SHA-256 is stored. Secrets are shown once,
when issued. Verification compares hashes in constant time.
"""
from __future__ import annotations

import hashlib
import time
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulse.errors import NotFound
from pulse.storage.db import Database, utcnow
from pulse.storage.tables import device_tokens, devices, tenants


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _public(row: sa.Row) -> dict[str, Any]:
    return {
        "token_id": row.token_id,
        "device_id": row.device_id,
        "label": row.label,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
        "active": row.revoked_at is None,
    }


async def issue(conn, tenant_id: str, device_id: str, label: str | None = None) -> dict[str, Any]:
    """Create a token inside the caller's transaction; the only time the secret is returned."""
    secret = secrets.token_urlsafe(32)
    token_id = uuid.uuid4().hex[:16]
    await conn.execute(
        device_tokens.insert().values(
            token_id=token_id,
            tenant_id=tenant_id,
            device_id=device_id,
            token_hash=hash_secret(secret),
            label=label,
            created_at=utcnow(),
        )
    )
    return {"token": secret, "token_id": token_id}


async def list_tokens(db: Database, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(device_tokens)
            .where(device_tokens.c.tenant_id == tenant_id, device_tokens.c.device_id == device_id)
            .order_by(device_tokens.c.created_at)
        )
        return [_public(r) for r in rows]


async def rotate(db: Database, tenant_id: str, device_id: str, label: str = "rotated") -> dict[str, Any]:
    """Revoke every active token of the device and issue a new one, atomically."""
    async with db.begin() as conn:
        await conn.execute(
            device_tokens.update()
            .where(
                device_tokens.c.tenant_id == tenant_id,
                device_tokens.c.device_id == device_id,
                device_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        return await issue(conn, tenant_id, device_id, label=label)


async def revoke(db: Database, tenant_id: str, device_id: str, token_id: str) -> None:
    async with db.begin() as conn:
        result = await conn.execute(
            device_tokens.update()
            .where(
                device_tokens.c.tenant_id == tenant_id,
                device_tokens.c.device_id == device_id,
                device_tokens.c.token_id == token_id,
                device_tokens.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        if result.rowcount == 0:
            raise NotFound(f"token {token_id} not found or already revoked")


async def verify(db: Database, tenant_id: str, device_id: str, secret: str) -> bool:
    """True when `secret` is an active token of an ACTIVE device of an ACTIVE tenant (the broker and HTTP
    ingest use this)."""
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(device_tokens.c.token_hash)
            .join(
                devices,
                sa.and_(
                    devices.c.tenant_id == device_tokens.c.tenant_id,
                    devices.c.device_id == device_tokens.c.device_id,
                ),
            )
            .where(
                device_tokens.c.tenant_id == tenant_id,
                device_tokens.c.device_id == device_id,
                device_tokens.c.revoked_at.is_(None),
                devices.c.status == "ACTIVE",
                device_tokens.c.tenant_id.in_(sa.select(tenants.c.tenant_id).where(tenants.c.status == "ACTIVE")),
            )
        )
        hashes = [r.token_hash for r in rows]
    candidate = hash_secret(secret)
    return any(hmac.compare_digest(candidate, h) for h in hashes)


async def resolve(db: Database, secret: str) -> tuple[str, str] | None:
    """(tenant_id, device_id) whose active token `secret` is, if its device and tenant are ACTIVE: the
    device HTTP API names no device, the token does (found by its hash, which is indexed)."""
    async with db.connect() as conn:
        row = (await conn.execute(
            sa.select(device_tokens.c.tenant_id, device_tokens.c.device_id)
            .join(devices, sa.and_(devices.c.tenant_id == device_tokens.c.tenant_id,
                                   devices.c.device_id == device_tokens.c.device_id))
            .join(tenants, tenants.c.tenant_id == device_tokens.c.tenant_id)
            .where(device_tokens.c.token_hash == hash_secret(secret), device_tokens.c.revoked_at.is_(None),
                   devices.c.status == "ACTIVE", tenants.c.status == "ACTIVE")
            .limit(1))).first()
    return (row.tenant_id, row.device_id) if row is not None else None


class VerificationCache:
    """Verification results keyed by (username, sha256(password)); positive and negative TTLs differ.

    Why a cache: every MQTT CONNECT or HTTP ingest request would otherwise cost a DB round trip, and reconnect storms (broker
    restart, flaky cellular links) arrive by the thousand. Why these TTLs (defaults 30 s / 5 s):
    - positive 30 s bounds how long a revoked token still opens *new* connections when the revocation
      happened in another process (the API); in-process revocations invalidate immediately;
    - negative 5 s absorbs a device stuck in a reconnect loop with a wrong password, while a token
      issued in another process for a device that just failed works again within 5 s.
    Secrets are not kept: the key holds the SHA-256 the token store keeps anyway.
    """

    def __init__(self, positive_ttl: float, negative_ttl: float, max_entries: int = 100_000) -> None:
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[bool, float]] = {}

    def get(self, key: tuple[str, str]) -> bool | None:
        hit = self._entries.get(key)
        if hit is None:
            return None
        ok, expires = hit
        if time.monotonic() >= expires:
            del self._entries[key]
            return None
        return ok

    def put(self, key: tuple[str, str], ok: bool) -> None:
        ttl = self.positive_ttl if ok else self.negative_ttl
        if ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded: a flood of distinct wrong passwords can't grow memory
        self._entries[key] = (ok, time.monotonic() + ttl)

    def invalidate(self, username: str | None = None) -> None:
        if username is None:
            self._entries.clear()
        else:
            for key in [k for k in self._entries if k[0] == username]:
                del self._entries[key]


class RevocationFeed:
    """Keeps a `VerificationCache` in step with token revocations made anywhere (another Serve replica,
    the CLI), so a revoked token stops working within `interval_s` everywhere, without a store read
    per request: `refresh` reads the tokens revoked since the last look at most once per interval
    (an indexed range read, usually empty) and drops the cached verdicts of their devices.

    The process that revokes invalidates its own cache at once (`VerificationCache.invalidate`)."""

    # revocations are stamped by the writer's clock: look back this far past the newest one seen, so a
    # writer whose clock lags another's a little is not missed (re-dropping a device's verdicts is harmless)
    OVERLAP = timedelta(seconds=5)

    def __init__(self, db: Database, cache: VerificationCache, interval_s: float = 1.0) -> None:
        self.db, self.cache, self.interval_s = db, cache, interval_s
        self.next_poll = 0.0
        # a verdict cached before this process could have seen a revocation is at most positive_ttl old
        self.since = utcnow() - timedelta(seconds=cache.positive_ttl)

    async def refresh(self) -> None:
        now = time.monotonic()
        if now < self.next_poll:
            return
        self.next_poll = now + self.interval_s  # set first: concurrent requests do not poll too
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(device_tokens.c.tenant_id, device_tokens.c.device_id,
                                                 device_tokens.c.revoked_at)
                                       .where(device_tokens.c.revoked_at >= self.since))).all()
        for r in rows:
            self.cache.invalidate(f"{r.tenant_id}/{r.device_id}")
        if rows:
            self.since = max(self.since, max(r.revoked_at for r in rows) - self.OVERLAP)
