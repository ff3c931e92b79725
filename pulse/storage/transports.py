"""Device transports: how a device's data reaches Pulse (protocol) and over what link (connectivity).

A device has at most one primary transport (a partial unique index guarantees it); making one
primary clears the flag on the others. The first transport of a device is primary unless told
otherwise. The deprecated device "connection" is a view of the primary transport.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.errors import Conflict, NotFound
from pulse.storage import templates
from pulse.storage.db import Database, device_row, of_device, page_rows, update_row, utcnow
from pulse.storage.tables import device_transports

TRANSPORT_FIELDS = ("ingestion_protocol", "physical_connectivity", "protocol_config", "connectivity_config",
                    "carrier_integration_id", "is_primary", "status")
_PRIMARY_RACE = "another primary transport was set for this device at the same time; retry"


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def list_transports(db: Database, tenant_id: str, device_id: str, *, limit: int = 50,
                          offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    t = device_transports.c
    q = sa.select(device_transports).where(*of_device(device_transports, tenant_id, device_id))
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [t.is_primary.desc(), t.id], limit, offset)
        return [_public(r) for r in rows], total


async def _row(conn: AsyncConnection, tenant_id: str, device_id: str, transport_id: int) -> sa.Row:
    return await device_row(conn, device_transports, tenant_id, device_id, transport_id, "transport")


async def _primary(conn: AsyncConnection, tenant_id: str, device_id: str) -> sa.Row | None:
    return (await conn.execute(sa.select(device_transports).where(
        *of_device(device_transports, tenant_id, device_id), device_transports.c.is_primary.is_(True)))).first()


async def _clear_primary(conn: AsyncConnection, tenant_id: str, device_id: str) -> None:
    await conn.execute(device_transports.update().where(
        *of_device(device_transports, tenant_id, device_id), device_transports.c.is_primary.is_(True))
        .values(is_primary=False, updated_at=utcnow()))


async def _insert(conn: AsyncConnection, tenant_id: str, device_id: str, values: dict[str, Any]) -> sa.Row:
    now = utcnow()
    values = {"protocol_config": {}, "connectivity_config": {}, **values}
    try:
        return (await conn.execute(device_transports.insert().values(
            tenant_id=tenant_id, device_id=device_id, created_at=now, updated_at=now, **values)
            .returning(*device_transports.c))).one()
    except sa.exc.IntegrityError:
        raise Conflict(_PRIMARY_RACE) from None


async def create(db: Database, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in TRANSPORT_FIELDS}
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        if values.get("is_primary") is None:
            values["is_primary"] = await _primary(conn, tenant_id, device_id) is None
        if values["is_primary"]:
            await _clear_primary(conn, tenant_id, device_id)
        return _public(await _insert(conn, tenant_id, device_id, values))


async def update(db: Database, tenant_id: str, device_id: str, transport_id: int,
                 fields: dict[str, Any]) -> dict[str, Any]:
    """Top-level fields change independently; protocol_config and connectivity_config are replaced whole."""
    values = {k: v for k, v in fields.items() if k in TRANSPORT_FIELDS}
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        await _row(conn, tenant_id, device_id, transport_id)
        if values.get("is_primary"):
            await _clear_primary(conn, tenant_id, device_id)
        await update_row(conn, device_transports, "id", transport_id, values, Conflict(_PRIMARY_RACE))
        return _public(await _row(conn, tenant_id, device_id, transport_id))


async def delete(db: Database, tenant_id: str, device_id: str, transport_id: int) -> None:
    """Deleting the primary leaves the device without one until another is made primary."""
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        await _row(conn, tenant_id, device_id, transport_id)
        await conn.execute(device_transports.delete().where(device_transports.c.id == transport_id))


# ---- the deprecated device connection: a view of the primary transport ---------------------------
async def primary(db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        row = await _primary(conn, tenant_id, device_id)
    if row is None:
        raise NotFound(f"device {device_id} has no connection (primary transport)")
    return _public(row)


async def upsert_primary(db: Database, tenant_id: str, device_id: str, fields: dict[str, Any],
                         connectivity: dict[str, Any]) -> dict[str, Any]:
    """Update the primary transport, or create one (mqtt_direct unless given). `connectivity` is
    merged into connectivity_config; a None value removes its key."""
    values = {k: v for k, v in fields.items() if k in TRANSPORT_FIELDS and k != "is_primary"}
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        row = await _primary(conn, tenant_id, device_id)
        merged = {**(row.connectivity_config if row is not None else {}), **connectivity}
        values["connectivity_config"] = {k: v for k, v in merged.items() if v is not None}
        if row is None:
            values.setdefault("ingestion_protocol", "mqtt_direct")
            return _public(await _insert(conn, tenant_id, device_id, {**values, "is_primary": True}))
        await conn.execute(device_transports.update().where(device_transports.c.id == row.id)
                           .values(updated_at=utcnow(), **values))
        return _public(await _row(conn, tenant_id, device_id, row.id))


async def delete_primary(db: Database, tenant_id: str, device_id: str) -> None:
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        row = await _primary(conn, tenant_id, device_id)
        if row is None:
            raise NotFound(f"device {device_id} has no connection (primary transport)")
        await conn.execute(device_transports.delete().where(device_transports.c.id == row.id))
