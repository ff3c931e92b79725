"""Maintenance windows of a tenant, and which of them cover a device at an instant.

Alerting calls `in_maintenance` (or `active_windows_for`) before it notifies. Schedules are
evaluated by `pulse.domain.maintenance` and scopes by `pulse.domain.scopes.selects`; SQL only
narrows the candidates to enabled windows whose bounds contain the instant.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.maintenance import WINDOW_SCOPE_KEYS, WindowSchedule, is_active
from pulse.domain.scopes import selects
from pulse.domain.timezones import as_utc
from pulse.errors import Invalid
from pulse.storage import groups
from pulse.storage.db import Database, count, delete_tenant_row, tenant_row, utcnow
from pulse.storage.tables import devices, maintenance_windows as windows

WINDOW_FIELDS = ("name", "enabled", "starts_at", "ends_at", "recurrence", "scope")


def _public(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["scope"] = {k: list((d.get("scope") or {}).get(k) or []) for k in WINDOW_SCOPE_KEYS}
    return d


def _check_schedule(window: dict[str, Any]) -> None:
    """The stored fields after a create or patch must still form a valid schedule."""
    try:
        s = WindowSchedule.from_row(window)
    except (KeyError, TypeError, ValueError) as e:
        raise Invalid(f"invalid maintenance window: {e}") from None
    if s.ends_at is not None and s.ends_at <= s.starts_at:
        raise Invalid("ends_at must be after starts_at")


async def _check_scope(conn: AsyncConnection, tenant_id: str, scope: dict[str, list[str]]) -> None:
    """Named groups and devices must exist in the tenant when the window is written."""
    named = set(scope.get("group_ids") or ())
    missing = named - await groups.existing_ids(conn, tenant_id, named)
    if missing:
        raise Invalid(f"scope.group_ids: unknown device group {sorted(missing)[0]}")
    wanted = set(scope.get("device_ids") or ())
    if wanted:
        rows = await conn.execute(sa.select(devices.c.device_id).where(
            devices.c.tenant_id == tenant_id, devices.c.device_id.in_(wanted)))
        missing = wanted - {r.device_id for r in rows}
        if missing:
            raise Invalid(f"scope.device_ids: unknown device {sorted(missing)[0]}")


async def create(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now, window_id = utcnow(), str(uuid.uuid4())
    values = {k: fields[k] for k in WINDOW_FIELDS if k in fields}
    values.setdefault("starts_at", now)
    values.setdefault("scope", {})
    _check_schedule(values)
    async with db.begin() as conn:
        await _check_scope(conn, tenant_id, values["scope"])
        await conn.execute(windows.insert().values(window_id=window_id, tenant_id=tenant_id, created_at=now,
                                                   updated_at=now, **values))
    return await get(db, tenant_id, window_id)


async def _row(conn: AsyncConnection, tenant_id: str, window_id: str) -> dict[str, Any]:
    return _public(await tenant_row(conn, windows, tenant_id, "window_id", window_id, "maintenance window"))


async def get(db: Database, tenant_id: str, window_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return await _row(conn, tenant_id, window_id)


async def update(db: Database, tenant_id: str, window_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in WINDOW_FIELDS}
    async with db.begin() as conn:
        current = await _row(conn, tenant_id, window_id)
        _check_schedule({**current, **values})
        if "scope" in values:
            await _check_scope(conn, tenant_id, values["scope"])
        await conn.execute(windows.update().where(windows.c.window_id == window_id)
                           .values(updated_at=utcnow(), **values))
    return await get(db, tenant_id, window_id)


async def delete(db: Database, tenant_id: str, window_id: str) -> None:
    async with db.begin() as conn:
        await delete_tenant_row(conn, windows, tenant_id, "window_id", window_id, "maintenance window")


def _bounds_contain(at: datetime) -> list[sa.ColumnElement[bool]]:
    return [windows.c.enabled.is_(True), windows.c.starts_at <= at,
            sa.or_(windows.c.ends_at.is_(None), windows.c.ends_at > at)]


async def _covering(conn: AsyncConnection, tenant_id: str, device_id: str,
                    candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    referenced = {g for w in candidates for g in w["scope"]["group_ids"]}
    facts = await groups.device_facts(conn, tenant_id, device_id, referenced)
    return [w for w in candidates if selects(w["scope"], facts)]


async def list_windows(db: Database, tenant_id: str, *, enabled: bool | None = None, active_at: datetime | None = None,
                       device_id: str | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Windows by start; `active_at` keeps those active then, `device_id` those whose scope covers it."""
    q = sa.select(windows).where(windows.c.tenant_id == tenant_id)
    if enabled is not None:
        q = q.where(windows.c.enabled.is_(enabled))
    if active_at is not None:
        q = q.where(*_bounds_contain(active_at))
    q = q.order_by(windows.c.starts_at, windows.c.window_id)
    async with db.connect() as conn:
        if active_at is None and device_id is None:
            total = await count(conn, q)
            return [_public(r) for r in await conn.execute(q.limit(limit).offset(offset))], total
        found = [_public(r) for r in await conn.execute(q)]
        if active_at is not None:
            found = [w for w in found if is_active(w, active_at)]
        if device_id is not None and found:
            found = await _covering(conn, tenant_id, device_id, found)
    return found[offset:offset + limit], len(found)


async def active_windows_for(db: Database, tenant_id: str, device_id: str, at: datetime) -> list[dict[str, Any]]:
    """The enabled windows active at `at` whose scope covers the device (by id, site, tag or group)."""
    at = as_utc(at)
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(windows).where(windows.c.tenant_id == tenant_id, *_bounds_contain(at))
                                  .order_by(windows.c.starts_at, windows.c.window_id))
        active = [w for w in map(_public, rows) if is_active(w, at)]
        return await _covering(conn, tenant_id, device_id, active) if active else []


async def in_maintenance(db: Database, tenant_id: str, device_id: str, at: datetime) -> bool:
    """Whether alert notifications for the device should be suppressed at `at`."""
    return bool(await active_windows_for(db, tenant_id, device_id, at))
