"""Device templates (system and tenant-owned) with their metrics, commands and slots.

A tenant sees the system templates (tenant_id NULL, seeded by migration 0003) and its own.
Changing a template needs one of the tenant's own that is unlocked: a system or locked template
is Forbidden, another tenant's is NotFound. Metrics, commands and slots ("parts") follow the
rules of their template. `apply_template` gives a device what its template requires.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.command_params import schema_errors
from pulse.errors import Conflict, Forbidden, Invalid, NotFound
from pulse.storage.db import Database, count, insert_missing, page_rows, update_row, utcnow, where_given
from pulse.storage.tables import (device_modules, device_sensors, device_templates, device_transports, devices,
                                  template_commands, template_metrics, template_slots)

TEMPLATE_FIELDS = ("name", "slug", "description", "category", "manufacturer", "model", "firmware_version_pattern",
                   "is_locked", "transport_defaults", "metadata", "image_url")


@dataclass(frozen=True)
class Part:
    """One kind of template sub-resource, keyed uniquely within its template."""

    table: sa.Table
    key: str
    noun: str
    fields: tuple[str, ...]


METRICS = Part(template_metrics, "metric_key", "metric",
               ("metric_key", "display_name", "data_type", "unit", "min_value", "max_value", "precision_digits",
                "is_required", "enum_values"))
COMMANDS = Part(template_commands, "command_key", "command",
                ("command_key", "display_name", "description", "parameters_schema", "response_schema"))
SLOTS = Part(template_slots, "slot_key", "slot",
             ("slot_key", "display_name", "slot_type", "interface_type", "max_devices", "compatible_templates",
              "is_required"))
PARTS = {"metrics": METRICS, "commands": COMMANDS, "slots": SLOTS}


def _visible_to(tenant_id: str):
    return sa.or_(device_templates.c.tenant_id.is_(None), device_templates.c.tenant_id == tenant_id)


async def visible(conn: AsyncConnection, tenant_id: str, template_id: int) -> sa.Row | None:
    """The template if the tenant may see it (a system template or its own)."""
    return (await conn.execute(sa.select(device_templates).where(
        device_templates.c.id == template_id, _visible_to(tenant_id)))).first()


async def _template(conn: AsyncConnection, tenant_id: str, template_id: int) -> sa.Row:
    row = await visible(conn, tenant_id, template_id)
    if row is None:
        raise NotFound(f"template {template_id} not found")
    return row


async def _writable(conn: AsyncConnection, tenant_id: str, template_id: int, unlocking: bool = False) -> sa.Row:
    row = await _template(conn, tenant_id, template_id)
    if row.tenant_id is None:
        raise Forbidden(f"template {template_id} is a system template; clone it to make changes")
    if row.is_locked and not unlocking:
        raise Forbidden(f"template {template_id} is locked; unlock it (is_locked: false) to make changes")
    return row


async def device_template_id(conn: AsyncConnection, tenant_id: str, device_id: str) -> int | None:
    """The template of a tenant's device (None: it has none); NotFound when the tenant has no such device."""
    row = (await conn.execute(sa.select(devices.c.template_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if row is None:
        raise NotFound(f"device {device_id} not found")
    return row.template_id


# ---- templates -----------------------------------------------------------------------------------
def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100] or "template"


async def list_templates(db: Database, tenant_id: str, *, category: str | None = None, source: str | None = None,
                         search: str | None = None, limit: int = 50,
                         offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    t = device_templates.c
    q = sa.select(device_templates).where(_visible_to(tenant_id))
    q = where_given(q, device_templates, category=category, source=source)
    if search:
        like = f"%{search.lower()}%"
        q = q.where(sa.or_(*(sa.func.lower(c).like(like) for c in (t.name, t.slug, t.manufacturer, t.model))))
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [t.name, t.id], limit, offset)
        return [dict(r._mapping) for r in rows], total


async def get(db: Database, tenant_id: str, template_id: int) -> dict[str, Any]:
    """The template with its metrics, commands and slots."""
    async with db.connect() as conn:
        template = dict((await _template(conn, tenant_id, template_id))._mapping)
        for name, part in PARTS.items():
            rows = await conn.execute(sa.select(part.table).where(part.table.c.template_id == template_id)
                                      .order_by(part.table.c.id))
            template[name] = [dict(r._mapping) for r in rows]
    return template


async def _check_slug(conn: AsyncConnection, tenant_id: str, slug: str) -> None:
    """Slugs are unique among what a tenant sees; the unique constraint covers its own templates."""
    taken = (await conn.execute(sa.select(device_templates.c.id).where(
        device_templates.c.slug == slug, _visible_to(tenant_id)))).first()
    if taken:
        raise Conflict(f"a template with slug {slug!r} already exists")


async def _insert_template(conn: AsyncConnection, tenant_id: str, values: dict[str, Any]) -> int:
    now = utcnow()
    values = {"metadata": {}, **values, "tenant_id": tenant_id, "source": "tenant", "created_at": now,
              "updated_at": now}
    try:
        return (await conn.execute(device_templates.insert().values(**values)
                                   .returning(device_templates.c.id))).scalar_one()
    except sa.exc.IntegrityError:
        raise Conflict(f"a template with slug {values['slug']!r} already exists") from None


async def create(db: Database, tenant_id: str, fields: dict[str, Any],
                 parts: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """A tenant template, optionally with its metrics, commands and slots in the same transaction."""
    values = {k: v for k, v in fields.items() if k in TEMPLATE_FIELDS and v is not None}
    values.setdefault("slug", slugify(values["name"]))
    async with db.begin() as conn:
        await _check_slug(conn, tenant_id, values["slug"])
        template_id = await _insert_template(conn, tenant_id, values)
        for name, items in (parts or {}).items():
            for item in items:
                await _insert_part(conn, tenant_id, template_id, PARTS[name], item)
    return await get(db, tenant_id, template_id)


async def update(db: Database, tenant_id: str, template_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """A locked template accepts only a change that unlocks it (is_locked: false)."""
    values = {k: v for k, v in fields.items() if k in TEMPLATE_FIELDS}
    async with db.begin() as conn:
        row = await _writable(conn, tenant_id, template_id, unlocking=values.get("is_locked") is False)
        if "slug" in values and values["slug"] != row.slug:
            await _check_slug(conn, tenant_id, values["slug"])
        await update_row(conn, device_templates, "id", template_id, values,
                         Conflict(f"a template with slug {values.get('slug')!r} already exists"))
    return await get(db, tenant_id, template_id)


async def delete(db: Database, tenant_id: str, template_id: int) -> None:
    async with db.begin() as conn:
        await _writable(conn, tenant_id, template_id)
        n_devices = await count(conn, sa.select(devices.c.device_id).where(devices.c.template_id == template_id))
        n_modules = await count(conn, sa.select(device_modules.c.id).where(
            device_modules.c.module_template_id == template_id, device_modules.c.status != "removed"))
        if n_devices or n_modules:
            raise Conflict(f"template {template_id} is in use by {n_devices} device(s) and {n_modules} module(s); "
                           "move them to another template first")
        await conn.execute(device_templates.delete().where(device_templates.c.id == template_id))


async def _free_slug(conn: AsyncConnection, tenant_id: str, base: str) -> str:
    taken = set((await conn.execute(sa.select(device_templates.c.slug).where(
        device_templates.c.slug.like(f"{base}%"), _visible_to(tenant_id)))).scalars())
    n, slug = 1, base
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


async def clone(db: Database, tenant_id: str, template_id: int, name: str | None = None,
                slug: str | None = None) -> dict[str, Any]:
    """A tenant-owned, unlocked copy of a visible template, with copies of its parts."""
    async with db.begin() as conn:
        src = await _template(conn, tenant_id, template_id)
        values = {f: src._mapping[f] for f in TEMPLATE_FIELDS}
        values.update(is_locked=False, name=name or f"{src.name[:193]} (copy)",
                      metadata={**(src.metadata or {}), "cloned_from": src.id})
        if slug:
            await _check_slug(conn, tenant_id, slug)
            values["slug"] = slug
        else:
            values["slug"] = await _free_slug(conn, tenant_id, f"{src.slug[:90]}-copy")
        new_id = await _insert_template(conn, tenant_id, values)
        for part in PARTS.values():
            rows = (await conn.execute(sa.select(part.table).where(part.table.c.template_id == template_id)
                                       .order_by(part.table.c.id))).all()
            if rows:
                await conn.execute(part.table.insert(), [
                    {**{f: r._mapping[f] for f in part.fields}, "template_id": new_id} for r in rows])
    return await get(db, tenant_id, new_id)


# ---- metrics, commands, slots --------------------------------------------------------------------
def _metric_problem(m: dict[str, Any]) -> str | None:
    lo, hi = m.get("min_value"), m.get("max_value")
    if lo is not None and hi is not None and lo > hi:
        return "min_value must not exceed max_value"
    if m.get("data_type") == "enum" and not m.get("enum_values"):
        return "an enum metric needs enum_values"
    if m.get("data_type") != "enum" and m.get("enum_values"):
        return "enum_values only apply to data_type enum"
    return None


async def _slot_problem(conn: AsyncConnection, tenant_id: str, s: dict[str, Any]) -> str | None:
    ids = set(s.get("compatible_templates") or [])
    if ids:
        found = set((await conn.execute(sa.select(device_templates.c.id).where(
            device_templates.c.id.in_(ids), _visible_to(tenant_id)))).scalars())
        if ids - found:
            return f"compatible_templates: no such template(s) {sorted(ids - found)}"
    return None


async def _check_part(conn: AsyncConnection, tenant_id: str, part: Part, values: dict[str, Any]) -> None:
    if part is METRICS:
        problem = _metric_problem(values)
    elif part is COMMANDS:
        problem = "; ".join(schema_errors(values.get("parameters_schema") or {})) or None
    else:
        problem = await _slot_problem(conn, tenant_id, values)
    if problem:
        raise Invalid(problem)


async def _insert_part(conn: AsyncConnection, tenant_id: str, template_id: int, part: Part,
                       fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in part.fields}
    await _check_part(conn, tenant_id, part, values)
    try:
        row = (await conn.execute(part.table.insert().values(template_id=template_id, **values)
                                  .returning(*part.table.c))).one()
    except sa.exc.IntegrityError:
        raise Conflict(f"{part.noun} {values[part.key]!r} already exists in template {template_id}") from None
    return dict(row._mapping)


async def _touch(conn: AsyncConnection, template_id: int) -> None:
    await conn.execute(device_templates.update().where(device_templates.c.id == template_id)
                       .values(updated_at=utcnow()))


async def _release_required_sensors(conn: AsyncConnection, metric_id: int) -> None:
    """Sensors a metric no longer requires become optional, so their owners may delete them."""
    await conn.execute(device_sensors.update().where(
        device_sensors.c.template_metric_id == metric_id, device_sensors.c.source == "required")
        .values(source="optional", updated_at=utcnow()))


async def add_part(db: Database, tenant_id: str, template_id: int, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    async with db.begin() as conn:
        await _writable(conn, tenant_id, template_id)
        row = await _insert_part(conn, tenant_id, template_id, PARTS[kind], fields)
        await _touch(conn, template_id)
    return row


async def _part_row(conn: AsyncConnection, template_id: int, part: Part, part_id: int) -> sa.Row:
    row = (await conn.execute(sa.select(part.table).where(
        part.table.c.id == part_id, part.table.c.template_id == template_id))).first()
    if row is None:
        raise NotFound(f"{part.noun} {part_id} not found in template {template_id}")
    return row


async def update_part(db: Database, tenant_id: str, template_id: int, kind: str, part_id: int,
                      fields: dict[str, Any]) -> dict[str, Any]:
    part = PARTS[kind]
    values = {k: v for k, v in fields.items() if k in part.fields}
    async with db.begin() as conn:
        await _writable(conn, tenant_id, template_id)
        row = await _part_row(conn, template_id, part, part_id)
        await _check_part(conn, tenant_id, part, {**row._mapping, **values})
        try:
            await conn.execute(part.table.update().where(part.table.c.id == part_id).values(**values))
        except sa.exc.IntegrityError:
            raise Conflict(f"{part.noun} {values.get(part.key)!r} already exists in template {template_id}") from None
        if part is METRICS and values.get("is_required") is False:
            await _release_required_sensors(conn, part_id)
        await _touch(conn, template_id)
        return dict((await _part_row(conn, template_id, part, part_id))._mapping)


async def delete_part(db: Database, tenant_id: str, template_id: int, kind: str, part_id: int) -> None:
    part = PARTS[kind]
    async with db.begin() as conn:
        await _writable(conn, tenant_id, template_id)
        await _part_row(conn, template_id, part, part_id)
        if part is METRICS:
            await _release_required_sensors(conn, part_id)
        await conn.execute(part.table.delete().where(part.table.c.id == part_id))
        await _touch(conn, template_id)


async def command_definition(db: Database, tenant_id: str, template_id: int,
                             command_key: str) -> dict[str, Any] | None:
    """The command as the template defines it; None when the template is not visible or lacks it."""
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(template_commands).join(
            device_templates, device_templates.c.id == template_commands.c.template_id).where(
            template_commands.c.template_id == template_id, template_commands.c.command_key == command_key,
            _visible_to(tenant_id)))).first()
    return dict(row._mapping) if row else None


# ---- applying a template to a device -------------------------------------------------------------
def sensor_from_metric(metric: Any, source: str) -> dict[str, Any]:
    """The sensor fields a template metric implies (for a new sensor, or to fill gaps in one)."""
    return {"template_metric_id": metric.id, "display_name": metric.display_name, "unit": metric.unit,
            "min_range": metric.min_value, "max_range": metric.max_value,
            "precision_digits": metric.precision_digits, "source": source}


async def apply_template(conn: AsyncConnection, tenant_id: str, device_id: str, template_id: int) -> None:
    """Give a device what its (new) template requires, inside the caller's transaction.

    - each required metric becomes a sensor with source=required; an existing sensor with that
      key is kept and adopted (linked, marked required; only its empty fields are filled);
    - required sensors the template no longer requires become optional (nothing is deleted);
    - the template's transport defaults become the device's primary transport if it has none.
    Invalid when the tenant cannot see the template.
    """
    template = await visible(conn, tenant_id, template_id)
    if template is None:
        raise Invalid(f"template_id {template_id}: no such template")
    now = utcnow()
    s = device_sensors.c
    of_device = (s.tenant_id == tenant_id, s.device_id == device_id)
    required = (await conn.execute(sa.select(template_metrics).where(
        template_metrics.c.template_id == template_id, template_metrics.c.is_required.is_(True)))).all()
    keys = [m.metric_key for m in required]
    await conn.execute(device_sensors.update().where(*of_device, s.source == "required", s.metric_key.not_in(keys))
                       .values(source="optional", updated_at=now))
    await insert_missing(conn, device_sensors, [
        {**sensor_from_metric(m, "required"), "tenant_id": tenant_id, "device_id": device_id,
         "metric_key": m.metric_key, "status": "active", "created_at": now, "updated_at": now} for m in required
    ], ["tenant_id", "device_id", "metric_key"])
    # after the insert, so a sensor discovered concurrently is adopted too (a no-op for the new ones)
    for m in required:
        fills = {k: sa.func.coalesce(s[k], v) for k, v in sensor_from_metric(m, "required").items()
                 if k not in ("template_metric_id", "source") and v is not None}
        await conn.execute(device_sensors.update().where(*of_device, s.metric_key == m.metric_key).values(
            template_metric_id=m.id, source="required", updated_at=now, **fills))
    await _add_default_transport(conn, tenant_id, device_id, template.transport_defaults)


async def _add_default_transport(conn: AsyncConnection, tenant_id: str, device_id: str,
                                 defaults: dict[str, Any] | None) -> None:
    if not defaults or not defaults.get("ingestion_protocol"):
        return
    t = device_transports.c
    if await count(conn, sa.select(t.id).where(t.tenant_id == tenant_id, t.device_id == device_id)):
        return
    now = utcnow()
    await conn.execute(device_transports.insert().values(
        tenant_id=tenant_id, device_id=device_id, ingestion_protocol=defaults["ingestion_protocol"],
        physical_connectivity=defaults.get("physical_connectivity"),
        protocol_config=defaults.get("protocol_config") or {},
        connectivity_config=defaults.get("connectivity_config") or {},
        is_primary=True, status="active", created_at=now, updated_at=now))
