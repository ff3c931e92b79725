"""Device tags of a tenant: free-form labels, a set per device."""
from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.tags import MAX_TAGS_PER_DEVICE
from pulse.errors import Conflict, NotFound
from pulse.storage.db import Database, insert_missing, page_rows
from pulse.storage.tables import device_tags, devices


def has_all_tags(tags: Iterable[str]) -> list[sa.ColumnElement[bool]]:
    """Conditions on `devices` rows: the device carries every one of `tags`."""
    return [sa.exists().where(device_tags.c.tenant_id == devices.c.tenant_id,
                              device_tags.c.device_id == devices.c.device_id,
                              device_tags.c.tag == tag) for tag in sorted(set(tags))]


async def _require_device(conn: AsyncConnection, tenant_id: str, device_id: str) -> None:
    found = (await conn.execute(sa.select(devices.c.device_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if found is None:
        raise NotFound(f"device {device_id} not found")


async def _tags_of(conn: AsyncConnection, tenant_id: str, device_id: str) -> list[str]:
    rows = await conn.execute(sa.select(device_tags.c.tag).where(
        device_tags.c.tenant_id == tenant_id, device_tags.c.device_id == device_id))
    return sorted(r.tag for r in rows)


async def device_tags_of(db: Database, tenant_id: str, device_id: str) -> list[str]:
    async with db.connect() as conn:
        await _require_device(conn, tenant_id, device_id)
        return await _tags_of(conn, tenant_id, device_id)


async def replace(db: Database, tenant_id: str, device_id: str, tags: Iterable[str]) -> list[str]:
    wanted = set(tags)
    async with db.begin() as conn:
        await _require_device(conn, tenant_id, device_id)
        where = [device_tags.c.tenant_id == tenant_id, device_tags.c.device_id == device_id]
        await conn.execute(device_tags.delete().where(*where, device_tags.c.tag.not_in(wanted)))
        await insert_missing(conn, device_tags, [{"tenant_id": tenant_id, "device_id": device_id, "tag": t}
                                                 for t in sorted(wanted)])
        return await _tags_of(conn, tenant_id, device_id)


async def add(db: Database, tenant_id: str, device_id: str, tag: str) -> list[str]:
    async with db.begin() as conn:
        await _require_device(conn, tenant_id, device_id)
        current = await _tags_of(conn, tenant_id, device_id)
        if tag in current:
            return current
        if len(current) >= MAX_TAGS_PER_DEVICE:
            raise Conflict(f"device {device_id} already has {MAX_TAGS_PER_DEVICE} tags")
        await insert_missing(conn, device_tags, [{"tenant_id": tenant_id, "device_id": device_id, "tag": tag}])
        return await _tags_of(conn, tenant_id, device_id)


async def remove(db: Database, tenant_id: str, device_id: str, tag: str) -> list[str]:
    """Idempotent: removing a tag the device does not carry is not an error. Returns the tags left."""
    async with db.begin() as conn:
        await _require_device(conn, tenant_id, device_id)
        await conn.execute(device_tags.delete().where(
            device_tags.c.tenant_id == tenant_id, device_tags.c.device_id == device_id, device_tags.c.tag == tag))
        return await _tags_of(conn, tenant_id, device_id)


async def tenant_tags(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Every tag in use in the tenant, with how many devices carry it, by tag."""
    q = (sa.select(device_tags.c.tag, sa.func.count().label("device_count"))
         .where(device_tags.c.tenant_id == tenant_id).group_by(device_tags.c.tag))
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [device_tags.c.tag], limit, offset)
        return [dict(r._mapping) for r in rows], total
