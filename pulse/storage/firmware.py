"""The firmware registry's rows (docs/ota.md): versions unique per tenant and device type, and the
hosted image a version may get once.

A version "for any device type" is stored with `device_type` '' and answered as null, so the unique
key (tenant, device type, version) refuses a second such version on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa

from pulse.errors import Conflict, NotFound
from pulse.storage.db import Database, page_rows, where_given
from pulse.storage.tables import firmware_versions as versions

FIELDS = ("version", "description", "file_url", "file_size_bytes", "checksum_sha256", "device_type")
DUPLICATE = "Firmware version already exists for this device type"
ANY_DEVICE_TYPE = ""


def _public(row: Any) -> dict[str, Any]:
    """The row as the service uses it: `device_type` null for any, `hosted` when Pulse holds the image
    (`blob_key` stays in for the service; answers leave it out)."""
    d = dict(row._mapping)
    d.pop("tenant_id")
    d["device_type"] = d["device_type"] or None
    d["hosted"] = d["blob_key"] is not None
    return d


async def get(db: Database, tenant_id: str, firmware_id: int) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(versions).where(
            versions.c.tenant_id == tenant_id, versions.c.id == firmware_id))).first()
    if row is None:
        raise NotFound("Firmware version not found")
    return _public(row)


async def list_versions(db: Database, tenant_id: str, device_type: str | None, limit: int,
                        offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first; `total` counts every version the filter matches."""
    q = where_given(sa.select(versions).where(versions.c.tenant_id == tenant_id), versions, device_type=device_type)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [versions.c.created_at.desc(), versions.c.id.desc()], limit, offset)
    return [_public(r) for r in rows], total


async def create(db: Database, tenant_id: str, fields: Mapping[str, Any], created_by: str,
                 now: datetime) -> dict[str, Any]:
    """A new version; Conflict when the tenant has this version for this device type already."""
    values = {k: fields.get(k) for k in FIELDS}
    values["device_type"] = values["device_type"] or ANY_DEVICE_TYPE
    async with db.begin() as conn:
        try:
            firmware_id = (await conn.execute(versions.insert().values(
                tenant_id=tenant_id, created_at=now, created_by=created_by, **values
            ).returning(versions.c.id))).scalar_one()
        except sa.exc.IntegrityError:  # the unique key: this version exists (perhaps created just now)
            raise Conflict(DUPLICATE) from None
    return await get(db, tenant_id, firmware_id)


async def attach_image(db: Database, tenant_id: str, firmware_id: int, blob_key: str, size: int, sha256: str,
                       file_url: str) -> dict[str, Any]:
    """Record the hosted image of a version that has none; Conflict when another upload got there first."""
    async with db.begin() as conn:
        done = await conn.execute(versions.update().where(
            versions.c.tenant_id == tenant_id, versions.c.id == firmware_id, versions.c.blob_key.is_(None),
        ).values(blob_key=blob_key, file_size_bytes=size, checksum_sha256=sha256, file_url=file_url))
    if done.rowcount != 1:
        raise Conflict("Firmware image already uploaded")
    return await get(db, tenant_id, firmware_id)
