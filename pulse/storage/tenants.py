"""Tenants and local users (argon2id password hashes)."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError, InvalidHashError

from pulse.storage.db import Database, utcnow
from pulse.storage.tables import tenants, users

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


async def ensure_tenant(db: Database, tenant_id: str, name: str | None = None) -> bool:
    """Create the tenant if missing; True when it was created."""
    async with db.begin() as conn:
        exists = (await conn.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id))).first()
        if exists:
            return False
        try:
            await conn.execute(tenants.insert().values(tenant_id=tenant_id, name=name or tenant_id, created_at=utcnow()))
        except sa.exc.IntegrityError:  # created concurrently by another process
            return False
        return True


async def get_tenant(db: Database, tenant_id: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(tenants).where(tenants.c.tenant_id == tenant_id))).first()
        return dict(row._mapping) if row else None


async def telemetry_retention_days(db: Database) -> dict[str, int]:
    """tenant id -> its own telemetry retention in days, for the tenants that set one."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(tenants.c.tenant_id, tenants.c.telemetry_retention_days)
                                  .where(tenants.c.telemetry_retention_days.is_not(None)))
        return {r.tenant_id: r.telemetry_retention_days for r in rows}


async def set_telemetry_retention_days(db: Database, tenant_id: str, days: int | None) -> bool:
    """Set (or with None, reset to the default) a tenant's retention; False for an unknown tenant."""
    async with db.begin() as conn:
        result = await conn.execute(tenants.update().where(tenants.c.tenant_id == tenant_id)
                                    .values(telemetry_retention_days=days))
        return result.rowcount > 0


async def ensure_user(db: Database, tenant_id: str | None, email: str, role: str,
                      password: str | None = None) -> dict[str, Any]:
    """Find a user by email (the JWT `sub`) or create it. A given password is (re)set."""
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.email == email))).first()
        pw_hash = _hasher.hash(password) if password else None
        if row is None:
            values = dict(user_id=uuid.uuid4().hex, tenant_id=tenant_id, email=email, role=role,
                          password_hash=pw_hash, created_at=utcnow())
            await conn.execute(users.insert().values(**values))
            return values
        if pw_hash:
            await conn.execute(users.update().where(users.c.user_id == row.user_id).values(password_hash=pw_hash))
        return dict(row._mapping)


async def authenticate(db: Database, email: str, password: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.email == email))).first()
    if row is None or not row.password_hash:
        _hasher.hash(password)  # same cost either way: don't reveal which emails exist
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return dict(row._mapping)


async def user_emails(db: Database, tenant_id: str, user_ids: list[str]) -> dict[str, str]:
    """user id -> e-mail of the tenant's users (and platform users) among `user_ids`."""
    if not user_ids:
        return {}
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(users.c.user_id, users.c.email).where(
            users.c.user_id.in_(user_ids), sa.or_(users.c.tenant_id == tenant_id, users.c.tenant_id.is_(None))))
        return {r.user_id: r.email for r in rows}
