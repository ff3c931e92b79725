"""The device registry of a tenant."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pulse.errors import Conflict, NotFound
from pulse.storage import groups, telemetron, templates, tokens
from pulse.storage import tags as device_tags
from pulse.storage.db import TOTAL, Database, page_with_total, utcnow, where_given
from pulse.storage.tables import device_state, devices

EDITABLE = ("name", "site_id", "template_id", "parent_device_id", "model", "manufacturer", "serial_number",
            "fw_version", "notes", "metadata", "status")
SORTABLE = {"device_id", "name", "site_id", "status", "created_at", "updated_at"}


def _public(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("state", None)
    d.pop(TOTAL, None)
    return d


async def create(db: Database, tenant_id: str, fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register a device and issue its first token (returned once)."""
    now = utcnow()
    values = {k: v for k, v in fields.items() if k in EDITABLE and v is not None}
    values.setdefault("metadata", {})
    async with db.begin() as conn:
        try:
            await conn.execute(devices.insert().values(tenant_id=tenant_id, device_id=fields["device_id"],
                                                       created_at=now, updated_at=now, **values))
        except sa.exc.IntegrityError:
            raise Conflict(f"device {fields['device_id']} already exists") from None
        if values.get("template_id") is not None:
            await templates.apply_template(conn, tenant_id, fields["device_id"], values["template_id"])
        token = await tokens.issue(conn, tenant_id, fields["device_id"], label="initial")
    return await get(db, tenant_id, fields["device_id"]), token


# built once: the registry read behind most device routes, where building and cache-keying the
# statement per call was ~30 % of its CPU on SQLite (0.56 vs 0.39 ms, docs/operations.md)
_GET = sa.select(devices).where(devices.c.tenant_id == sa.bindparam("tenant_id"),
                                devices.c.device_id == sa.bindparam("device_id"))


async def get(db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(_GET, {"tenant_id": tenant_id, "device_id": device_id})).first()
    if row is None:
        raise NotFound(f"device {device_id} not found")
    return _public(row)


async def list_devices(db: Database, tenant_id: str, *, status: str | None = None, site_id: str | None = None,
                       search: str | None = None, tags: list[str] | None = None, group_id: str | None = None,
                       template_id: int | None = None, device_ids: list[str] | None = None,
                       sort: str = "device_id", limit: int = 50,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Filters combine with AND; `tags` keeps devices carrying every tag; `group_id` (static or
    dynamic) raises NotFound when the tenant has no such group; `device_ids` keeps those of them
    the tenant has."""
    q = where_given(sa.select(devices).where(devices.c.tenant_id == tenant_id), devices, status=status,
                    site_id=site_id, template_id=template_id)
    if device_ids is not None:
        q = q.where(devices.c.device_id.in_(device_ids))
    if tags:
        q = q.where(*device_tags.has_all_tags(tags))
    if search:
        like = f"%{search.lower()}%"
        q = q.where(sa.or_(sa.func.lower(devices.c.device_id).like(like), sa.func.lower(devices.c.name).like(like)))
    desc = sort.startswith("-")
    col = devices.c[sort.lstrip("-")]
    # device_id breaks ties so pages are stable under equal sort keys
    order = [col.desc() if desc else col.asc(), devices.c.device_id.asc()]
    async with db.connect() as conn:
        if group_id:
            q = q.where(*await groups.member_conditions(conn, tenant_id, group_id))
        rows, total = await page_with_total(conn, q, order, limit, offset)
        return [_public(r) for r in rows], total


async def update(db: Database, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in EDITABLE}
    async with db.begin() as conn:
        res = await conn.execute(devices.update().where(
            devices.c.tenant_id == tenant_id, devices.c.device_id == device_id).values(updated_at=utcnow(), **values))
        if res.rowcount == 0:
            raise NotFound(f"device {device_id} not found")
        if values.get("template_id") is not None:  # re-templated: add what the new template requires
            await templates.apply_template(conn, tenant_id, device_id, values["template_id"])
        await telemetron.device_changed(conn, tenant_id, device_id)  # owned: outbox row in this transaction
    return await get(db, tenant_id, device_id)


async def decommission(db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    """Status REVOKED: ingest refuses its messages (DEVICE_REVOKED); data and history stay."""
    now = utcnow()
    async with db.begin() as conn:
        res = await conn.execute(devices.update().where(
            devices.c.tenant_id == tenant_id, devices.c.device_id == device_id).values(
            status="REVOKED", decommissioned_at=now, updated_at=now))
        if res.rowcount == 0:
            raise NotFound(f"device {device_id} not found")
        await telemetron.device_retired(conn, tenant_id, device_id, deleted=False)  # ownership ends
    return await get(db, tenant_id, device_id)


async def delete(db: Database, tenant_id: str, device_id: str) -> None:
    """Remove the device, its tokens and actor state. Lake telemetry is kept (retention handles it)."""
    async with db.begin() as conn:
        await conn.execute(device_state.delete().where(
            device_state.c.tenant_id == tenant_id, device_state.c.device_id == device_id))
        await telemetron.device_retired(conn, tenant_id, device_id, deleted=True)  # ownership ends
        res = await conn.execute(devices.delete().where(
            devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))
        if res.rowcount == 0:
            raise NotFound(f"device {device_id} not found")


async def registry_counts(db: Database, tenant_id: str) -> dict[str, int]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(devices.c.status, sa.func.count()).where(
            devices.c.tenant_id == tenant_id).group_by(devices.c.status))
        return {status: n for status, n in rows}


async def presences(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    """Presence of the tenant's ACTIVE devices from actor snapshots (at most one snapshot interval old)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(devices.c.device_id, device_state.c.state).select_from(
            devices.outerjoin(device_state, sa.and_(device_state.c.tenant_id == devices.c.tenant_id,
                                                    device_state.c.device_id == devices.c.device_id)))
            .where(devices.c.tenant_id == tenant_id, devices.c.status == "ACTIVE"))
        return [(r.state or {}).get("presence") or {} for r in rows]


async def sites(db: Database, tenant_id: str, device_ids: list[str] | None = None,
                group_id: str | None = None) -> dict[str, str | None]:
    """device_id -> site_id of the tenant's devices, narrowed to `device_ids` and/or the members of
    `group_id` (static or dynamic; NotFound when the tenant has no such group). Ids of devices the
    tenant does not have are simply not in the answer."""
    q = sa.select(devices.c.device_id, devices.c.site_id).where(devices.c.tenant_id == tenant_id)
    if device_ids:
        q = q.where(devices.c.device_id.in_(device_ids))
    async with db.connect() as conn:
        if group_id:
            q = q.where(*await groups.member_conditions(conn, tenant_id, group_id))
        return {r.device_id: r.site_id for r in await conn.execute(q)}


async def registry_snapshot(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    """Every device of the tenant (all statuses), for queries over the whole registry (tenant SQL)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(devices).where(devices.c.tenant_id == tenant_id)
                                  .order_by(devices.c.device_id))
        return [_public(r) for r in rows]
