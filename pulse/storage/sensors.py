"""Device sensors: the metrics a device reports, one row per (device, metric_key).

source says where a sensor comes from: `required` (its device's template requires it; it can be
deactivated, not deleted), `optional` (added by a user) or `unmodeled` (discovered in telemetry).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.errors import Conflict, Invalid
from pulse.storage import templates
from pulse.storage.db import Database, device_row, insert_missing, page_rows, utcnow
from pulse.storage.tables import device_modules, device_sensors, template_metrics

log = logging.getLogger(__name__)

SENSOR_FIELDS = ("display_name", "template_metric_id", "device_module_id", "unit", "min_range", "max_range",
                 "precision_digits", "status", "source")
METADATA_FIELDS = ("unit", "min_range", "max_range", "precision_digits")
KEY = ["tenant_id", "device_id", "metric_key"]


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def list_sensors(db: Database, tenant_id: str, *, device_id: str | None = None, metric_key: str | None = None,
                       status: str | None = None, source: str | None = None, limit: int = 50,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    s = device_sensors.c
    q = sa.select(device_sensors).where(s.tenant_id == tenant_id)
    for column, value in ((s.device_id, device_id), (s.metric_key, metric_key), (s.status, status),
                          (s.source, source)):
        if value is not None:
            q = q.where(column == value)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [s.device_id, s.metric_key], limit, offset)
        return [_public(r) for r in rows], total


async def _row(conn: AsyncConnection, tenant_id: str, device_id: str, sensor_id: int) -> sa.Row:
    return await device_row(conn, device_sensors, tenant_id, device_id, sensor_id, "sensor")


async def _template_metric(conn: AsyncConnection, template_id: int | None, metric_id: int) -> sa.Row:
    row = None
    if template_id is not None:
        row = (await conn.execute(sa.select(template_metrics).where(
            template_metrics.c.id == metric_id, template_metrics.c.template_id == template_id))).first()
    if row is None:
        raise Invalid(f"template_metric_id {metric_id} is not a metric of the device's template")
    return row


async def _check_links(conn: AsyncConnection, tenant_id: str, device_id: str, values: dict[str, Any]) -> None:
    module_id = values.get("device_module_id")
    if module_id is not None:
        m = device_modules.c
        found = (await conn.execute(sa.select(m.id).where(
            m.id == module_id, m.tenant_id == tenant_id, m.device_id == device_id, m.status != "removed"))).first()
        if found is None:
            raise Invalid(f"device_module_id {module_id} is not a module of device {device_id}")
    lo, hi = values.get("min_range"), values.get("max_range")
    if lo is not None and hi is not None and lo > hi:
        raise Invalid("min_range must not exceed max_range")


async def create(db: Database, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A sensor a user adds. Linked to a template metric, it takes the metric's unit and ranges
    unless given, and is `required` when the metric is."""
    values = {k: v for k, v in fields.items() if k in SENSOR_FIELDS}
    async with db.begin() as conn:
        template_id = await templates.device_template_id(conn, tenant_id, device_id)
        values.setdefault("source", "optional")
        if values.get("template_metric_id") is not None:
            metric = await _template_metric(conn, template_id, values["template_metric_id"])
            implied = templates.sensor_from_metric(metric, "required" if metric.is_required else values["source"])
            values = {**{k: v for k, v in implied.items() if v is not None}, **values, "source": implied["source"]}
        await _check_links(conn, tenant_id, device_id, values)
        now = utcnow()
        try:
            row = (await conn.execute(device_sensors.insert().values(
                tenant_id=tenant_id, device_id=device_id, metric_key=fields["metric_key"], created_at=now,
                updated_at=now, **values).returning(*device_sensors.c))).one()
        except sa.exc.IntegrityError:
            raise Conflict(f"device {device_id} already has a sensor {fields['metric_key']!r}") from None
    return _public(row)


async def update(db: Database, tenant_id: str, device_id: str, sensor_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in SENSOR_FIELDS}
    async with db.begin() as conn:
        template_id = await templates.device_template_id(conn, tenant_id, device_id)
        row = await _row(conn, tenant_id, device_id, sensor_id)
        if row.source == "required" and values.get("source", "required") != "required":
            raise Conflict(f"sensor {row.metric_key!r} is required by the device's template; its source stays required")
        if values.get("template_metric_id") is not None:
            await _template_metric(conn, template_id, values["template_metric_id"])
        await _check_links(conn, tenant_id, device_id, {**row._mapping, **values})
        await conn.execute(device_sensors.update().where(device_sensors.c.id == sensor_id)
                           .values(updated_at=utcnow(), **values))
        return _public(await _row(conn, tenant_id, device_id, sensor_id))


async def delete(db: Database, tenant_id: str, device_id: str, sensor_id: int) -> None:
    async with db.begin() as conn:
        await templates.device_template_id(conn, tenant_id, device_id)
        row = await _row(conn, tenant_id, device_id, sensor_id)
        if row.source == "required":
            raise Conflict(f"sensor {row.metric_key!r} is required by the device's template and cannot be deleted; "
                           "deactivate it instead (PUT status: inactive)")
        await conn.execute(device_sensors.delete().where(device_sensors.c.id == sensor_id))


async def discover_unmodeled(db: Database, tenant_id: str, device_id: str, metric_keys: set[str]) -> int:
    """Record metric keys the device reported that it has no sensor for (source=unmodeled).

    For the ingest path, after metric_key_map normalization. Idempotent and safe under concurrent
    calls; the common case (nothing new) is a single read. -> the number of sensors created.
    A device deleted meanwhile creates nothing (logged).
    """
    return await discover_unmodeled_many(db, {(tenant_id, device_id): metric_keys})


async def discover_unmodeled_many(db: Database, discovered: dict[tuple[str, str], set[str]]) -> int:
    """`discover_unmodeled` for a whole ingest batch: one read and one write however many devices."""
    discovered = {k: v for k, v in discovered.items() if v}
    if not discovered:
        return 0
    s = device_sensors.c
    async with db.connect() as conn:
        result = await conn.execute(sa.select(s.tenant_id, s.device_id, s.metric_key).where(
            sa.tuple_(s.tenant_id, s.device_id).in_(list(discovered)),
            s.metric_key.in_(set().union(*discovered.values()))))
        known = {tuple(row) for row in result}
    now = utcnow()
    rows = [{"tenant_id": t, "device_id": d, "metric_key": key, "source": "unmodeled", "status": "active",
             "created_at": now, "updated_at": now}
            for (t, d), keys in discovered.items() for key in sorted(keys) if (t, d, key) not in known]
    if not rows:
        return 0
    try:
        async with db.begin() as conn:
            return await insert_missing(conn, device_sensors, rows, KEY)
    except sa.exc.IntegrityError:  # a device row is gone (foreign key): the others one by one
        if len(discovered) == 1:
            log.warning("sensor discovery skipped: device %s/%s no longer exists", *next(iter(discovered)))
            return 0
        return sum([await discover_unmodeled_many(db, {k: v}) for k, v in discovered.items()])


async def record_last_values(conn: AsyncConnection, values: dict[tuple[str, str], dict[str, tuple[float, int]]]) -> None:
    """last_value / last_seen_at of the sensors whose latest value changed (device shard write-behind):
    one batched UPDATE; metrics without a sensor row are skipped."""
    s = device_sensors.c
    rows = [{"t": t, "d": d, "m": metric, "v": value, "at": datetime.fromtimestamp(ts_ms / 1000, timezone.utc)}
            for (t, d), metrics in values.items() for metric, (value, ts_ms) in metrics.items()]
    if not rows:
        return
    stmt = device_sensors.update().where(
        s.tenant_id == sa.bindparam("t"), s.device_id == sa.bindparam("d"), s.metric_key == sa.bindparam("m"),
    ).values(last_value=sa.bindparam("v"), last_seen_at=sa.bindparam("at", type_=s.last_seen_at.type))
    await conn.execute(stmt, rows)


async def sensor_metadata(db: Database, tenant_id: str, device_id: str) -> dict[str, dict[str, Any]]:
    """metric_key -> {unit, min_range, max_range, precision_digits} for a device's sensors (telemetry history)."""
    s = device_sensors.c
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(s.metric_key, *(s[f] for f in METADATA_FIELDS)).where(
            s.tenant_id == tenant_id, s.device_id == device_id))
        return {r.metric_key: {f: r._mapping[f] for f in METADATA_FIELDS} for r in rows}
