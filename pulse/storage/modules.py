"""Device modules: expansion hardware plugged into a slot of a device's template.

A module's metric_key_map renames the keys its firmware reports (raw) to semantic metric keys;
ingest applies the merged map of a device's active modules (`metric_key_map`). Removing a module
is soft: status `removed`, and the sensors linked to it are deactivated.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.errors import Conflict, Invalid
from pulse.storage import templates
from pulse.storage.db import Database, device_row, of_device, page_rows, utcnow
from pulse.storage.tables import device_modules, device_sensors, template_slots

MODULE_FIELDS = ("slot_key", "bus_address", "module_template_id", "label", "serial_number", "metric_key_map", "status")


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def list_modules(db: Database, tenant_id: str, device_id: str, *, status: str | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Removed modules are listed only when asked for with status=removed."""
    m = device_modules.c
    q = sa.select(device_modules).where(*of_device(device_modules, tenant_id, device_id))
    q = q.where(m.status == status) if status else q.where(m.status != "removed")
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [m.slot_key, m.id], limit, offset)
        return [_public(r) for r in rows], total


async def _row(conn: AsyncConnection, tenant_id: str, device_id: str, module_id: int) -> sa.Row:
    row = await device_row(conn, device_modules, tenant_id, device_id, module_id, "module")
    if row.status == "removed":
        raise Conflict(f"module {module_id} was removed")
    return row


async def _slot(conn: AsyncConnection, template_id: int | None, slot_key: str) -> sa.Row | None:
    """The template's slot; None for a device without a template (any slot_key goes)."""
    if template_id is None:
        return None
    slot = (await conn.execute(sa.select(template_slots).where(
        template_slots.c.template_id == template_id, template_slots.c.slot_key == slot_key))).first()
    if slot is None:
        raise Invalid(f"slot_key {slot_key!r} is not a slot of the device's template {template_id}")
    return slot


async def _check(conn: AsyncConnection, tenant_id: str, device_id: str, module: dict[str, Any],
                 module_id: int | None = None) -> None:
    """The module fits its slot and does not clash with the device's other (non-removed) modules."""
    slot = await _slot(conn, await templates.device_template_id(conn, tenant_id, device_id), module["slot_key"])
    kind = module.get("module_template_id")
    if kind is not None:
        if await templates.visible(conn, tenant_id, kind) is None:
            raise Invalid(f"module_template_id {kind}: no such template")
        if slot is not None and slot.compatible_templates and kind not in slot.compatible_templates:
            raise Invalid(f"template {kind} is not compatible with slot {slot.slot_key!r}")
    others = (await conn.execute(sa.select(device_modules).where(
        *of_device(device_modules, tenant_id, device_id), device_modules.c.status != "removed",
        device_modules.c.id != (module_id or 0)))).all()
    in_slot = [o for o in others if o.slot_key == module["slot_key"]]
    if slot is not None and slot.max_devices is not None and len(in_slot) >= slot.max_devices:
        raise Conflict(f"slot {slot.slot_key!r} holds at most {slot.max_devices} module(s)")
    if module.get("bus_address") and any(o.bus_address == module["bus_address"] for o in in_slot):
        raise Conflict(f"bus address {module['bus_address']!r} is taken in slot {module['slot_key']!r}")
    mapping = module.get("metric_key_map") or {}
    for o in others:
        raw = set(mapping) & set(o.metric_key_map)
        semantic = set(mapping.values()) & set(o.metric_key_map.values())
        if raw or semantic:
            keys = ", ".join(sorted(raw | semantic))
            raise Conflict(f"metric_key_map: {keys} already mapped by module {o.id}")


async def create(db: Database, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {"metric_key_map": {}, **{k: v for k, v in fields.items() if k in MODULE_FIELDS}}
    async with db.begin() as conn:
        await _check(conn, tenant_id, device_id, values)
        now = utcnow()
        row = (await conn.execute(device_modules.insert().values(
            tenant_id=tenant_id, device_id=device_id, created_at=now, updated_at=now, **values)
            .returning(*device_modules.c))).one()
    return _public(row)


async def update(db: Database, tenant_id: str, device_id: str, module_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in MODULE_FIELDS}
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        row = await _row(conn, tenant_id, device_id, module_id)
        await _check(conn, tenant_id, device_id, {**row._mapping, **values}, module_id)
        await conn.execute(device_modules.update().where(device_modules.c.id == module_id)
                           .values(updated_at=utcnow(), **values))
        return _public(await _row(conn, tenant_id, device_id, module_id))


async def remove(db: Database, tenant_id: str, device_id: str, module_id: int) -> None:
    """Soft delete: the module stays listed as removed; its sensors are deactivated."""
    now = utcnow()
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        await _row(conn, tenant_id, device_id, module_id)
        await conn.execute(device_modules.update().where(device_modules.c.id == module_id)
                           .values(status="removed", updated_at=now))
        s = device_sensors.c
        await conn.execute(device_sensors.update().where(
            s.tenant_id == tenant_id, s.device_id == device_id, s.device_module_id == module_id)
            .values(status="inactive", updated_at=now))


async def metric_key_map(db: Database, tenant_id: str, device_id: str) -> dict[str, str]:
    """Raw firmware key -> semantic key over the device's active modules (for ingest normalization)."""
    return (await metric_key_maps(db, [(tenant_id, device_id)])).get((tenant_id, device_id), {})


async def metric_key_maps(db: Database, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    """`metric_key_map` of many devices in one query (a device shard's activation batch); devices
    without an active mapping module are left out."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    if not keys:
        return out
    m = device_modules.c
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(m.tenant_id, m.device_id, m.metric_key_map).where(
            sa.tuple_(m.tenant_id, m.device_id).in_(keys), m.status == "active"))
        for r in rows:
            if r.metric_key_map:
                out.setdefault((r.tenant_id, r.device_id), {}).update(r.metric_key_map)
    return out
