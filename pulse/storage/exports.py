"""Export jobs of a tenant, the claim a worker holds on one, and the device and alert rows they export.

A job is claimed by setting it PROCESSING with a lease; the worker renews the lease as it writes.
A job whose lease ran out lost its worker (a crash, a killed actor) and is claimed again, up to
`MAX_ATTEMPTS` times: a job that kills its worker every time must not loop forever. Every write
of a running job names the attempt it belongs to, so a worker that lost its claim changes nothing.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from pulse.domain.exports import COMPLETED, FAILED, FILE_TTL, PENDING, PROCESSING
from pulse.errors import NotFound
from pulse.storage.db import Database, count, page_rows
from pulse.storage.tables import alerts, device_state, device_tags, devices, export_jobs as jobs

MAX_ATTEMPTS = 3


# ---- jobs -----------------------------------------------------------------------------------------
async def create(db: Database, tenant_id: str, export_type: str, format: str, filters: dict[str, Any],
                 callback_url: str | None, requested_by: str | None, now: datetime) -> dict[str, Any]:
    export_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(jobs.insert().values(
            export_id=export_id, tenant_id=tenant_id, export_type=export_type, format=format, filters=filters,
            callback_url=callback_url, requested_by=requested_by, status=PENDING, created_at=now,
            expires_at=now + FILE_TTL))
    return await get(db, tenant_id, export_id)


async def get(db: Database, tenant_id: str, export_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(jobs).where(jobs.c.tenant_id == tenant_id,
                                                        jobs.c.export_id == export_id))).first()
    if row is None:
        raise NotFound("Export job not found")
    return dict(row._mapping)


async def list_jobs(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first."""
    q = sa.select(jobs).where(jobs.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [jobs.c.created_at.desc(), jobs.c.export_id], limit, offset)
    return [dict(r._mapping) for r in rows], total


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(jobs.c.status == PENDING, sa.and_(jobs.c.status == PROCESSING, jobs.c.lease_until < now))


async def claim(db: Database, now: datetime, lease: timedelta) -> dict[str, Any] | None:
    """The oldest PENDING job, or a PROCESSING one whose worker died, now PROCESSING under a lease
    for this caller (attempts counted up); None when there is none. A job out of attempts is FAILED."""
    while True:
        async with db.begin() as conn:
            row = (await conn.execute(sa.select(jobs.c.export_id, jobs.c.tenant_id, jobs.c.format, jobs.c.attempts)
                                      .where(_claimable(now)).order_by(jobs.c.created_at).limit(1))).first()
            if row is None:
                return None
            if row.attempts >= MAX_ATTEMPTS:
                await conn.execute(jobs.update().where(jobs.c.export_id == row.export_id, _claimable(now)).values(
                    status=FAILED, completed_at=now, lease_until=None,
                    error=f"the export stopped its worker {row.attempts} times; giving up"))
                continue
            res = await conn.execute(jobs.update().where(jobs.c.export_id == row.export_id, _claimable(now)).values(
                status=PROCESSING, attempts=row.attempts + 1, lease_until=now + lease, rows_done=0,
                started_at=sa.func.coalesce(jobs.c.started_at, now),
                blob_key=f"exports/{row.tenant_id}/{row.export_id}.{row.format}"))
        if res.rowcount == 1:  # else another worker took it between the read and the write: look again
            return await get(db, row.tenant_id, row.export_id)


def _held(job: dict[str, Any]) -> list[sa.ColumnElement[bool]]:
    return [jobs.c.export_id == job["export_id"], jobs.c.status == PROCESSING, jobs.c.attempts == job["attempts"]]


async def _update_held(db: Database, job: dict[str, Any], **values: Any) -> bool:
    async with db.begin() as conn:
        return (await conn.execute(jobs.update().where(*_held(job)).values(**values))).rowcount == 1


async def progress(db: Database, job: dict[str, Any], rows_done: int, lease_until: datetime,
                   rows_total: int | None = None) -> bool:
    """Record rows written and renew the lease; False when the claim was lost."""
    extra = {"rows_total": rows_total} if rows_total is not None else {}
    return await _update_held(db, job, rows_done=rows_done, lease_until=lease_until, **extra)


async def complete(db: Database, job: dict[str, Any], row_count: int, size: int, now: datetime) -> bool:
    return await _update_held(db, job, status=COMPLETED, row_count=row_count, rows_done=row_count,
                              file_size_bytes=size, completed_at=now, lease_until=None)


async def fail(db: Database, job: dict[str, Any], error: str, now: datetime) -> bool:
    return await _update_held(db, job, status=FAILED, error=error[:2000], completed_at=now, lease_until=None)


async def expired_files(db: Database, now: datetime, limit: int = 500) -> list[tuple[str, str]]:
    """(export_id, blob_key) of jobs past `expires_at` whose file is not removed yet."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(jobs.c.export_id, jobs.c.blob_key).where(
            jobs.c.expires_at <= now, jobs.c.file_removed_at.is_(None), jobs.c.blob_key.is_not(None)).limit(limit))
        return [(r.export_id, r.blob_key) for r in rows]


async def mark_removed(db: Database, export_ids: list[str], now: datetime) -> None:
    async with db.begin() as conn:
        await conn.execute(jobs.update().where(jobs.c.export_id.in_(export_ids)).values(file_removed_at=now))


# ---- the rows of device and alert exports ---------------------------------------------------------
def _in_scope(query: sa.Select, table: sa.Table, filters: dict[str, Any]) -> sa.Select:
    """`device_ids` and `site_ids` (each optional, combined with AND) narrow to those devices."""
    if filters.get("device_ids"):
        query = query.where(table.c.device_id.in_(filters["device_ids"]))
    sites = filters.get("site_ids")
    if sites and table is devices:
        query = query.where(devices.c.site_id.in_(sites))
    elif sites:
        on_sites = sa.select(devices.c.device_id).where(devices.c.tenant_id == table.c.tenant_id,
                                                        devices.c.site_id.in_(sites))
        query = query.where(table.c.device_id.in_(on_sites.scalar_subquery()))
    return query


def _device_query(tenant_id: str, filters: dict[str, Any]) -> sa.Select:
    q = _in_scope(sa.select(devices).where(devices.c.tenant_id == tenant_id), devices, filters)
    return q.where(devices.c.status == filters["status"].upper()) if filters.get("status") else q


def _alert_query(tenant_id: str, filters: dict[str, Any], since: datetime | None) -> sa.Select:
    q = _in_scope(sa.select(alerts).where(alerts.c.tenant_id == tenant_id), alerts, filters)
    if filters.get("status"):
        q = q.where(alerts.c.status == filters["status"].upper())
    if filters.get("alert_types"):
        q = q.where(alerts.c.alert_type.in_(filters["alert_types"]))
    return q.where(alerts.c.created_at >= since) if since is not None else q


async def count_devices(db: Database, tenant_id: str, filters: dict[str, Any]) -> int:
    async with db.connect() as conn:
        return await count(conn, _device_query(tenant_id, filters))


async def count_alerts(db: Database, tenant_id: str, filters: dict[str, Any], since: datetime | None) -> int:
    async with db.connect() as conn:
        return await count(conn, _alert_query(tenant_id, filters, since))


async def device_ids_in_scope(db: Database, tenant_id: str, filters: dict[str, Any]) -> list[str] | None:
    """The devices a telemetry export covers: None = every device (no device or site filter)."""
    if not filters.get("device_ids") and not filters.get("site_ids"):
        return None
    query = _in_scope(sa.select(devices.c.device_id).where(devices.c.tenant_id == tenant_id), devices, filters)
    async with db.connect() as conn:
        return sorted(r.device_id for r in await conn.execute(query))


async def device_page(db: Database, tenant_id: str, filters: dict[str, Any], after: str | None,
                      limit: int) -> list[dict[str, Any]]:
    """The next `limit` devices after device id `after`, as export rows (tags comma-joined, the last
    message time from the device actor's snapshot)."""
    q = _device_query(tenant_id, filters).add_columns(device_state.c.state).outerjoin(device_state, sa.and_(
        device_state.c.tenant_id == devices.c.tenant_id, device_state.c.device_id == devices.c.device_id))
    if after is not None:
        q = q.where(devices.c.device_id > after)
    async with db.connect() as conn:
        rows = list(await conn.execute(q.order_by(devices.c.device_id).limit(limit)))
        tags = await _tags(conn, tenant_id, [r.device_id for r in rows])
    return [{"device_id": r.device_id, "name": r.name, "model": r.model, "status": r.status, "site_id": r.site_id,
             "last_seen_at": _last_seen(r.state), "tags": ",".join(tags.get(r.device_id, [])),
             "created_at": r.created_at} for r in rows]


async def _tags(conn, tenant_id: str, device_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if device_ids:
        rows = await conn.execute(sa.select(device_tags.c.device_id, device_tags.c.tag).where(
            device_tags.c.tenant_id == tenant_id, device_tags.c.device_id.in_(device_ids)).order_by(device_tags.c.tag))
        for device_id, tag in rows:
            out.setdefault(device_id, []).append(tag)
    return out


def _last_seen(state: dict[str, Any] | None) -> datetime | None:
    ms = ((state or {}).get("presence") or {}).get("last_seen_ms")
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if ms is not None else None


async def alert_page(db: Database, tenant_id: str, filters: dict[str, Any], since: datetime | None,
                     after: int | None, limit: int) -> list[dict[str, Any]]:
    """The next `limit` alerts after alert id `after` (oldest first)."""
    q = _alert_query(tenant_id, filters, since)
    if after is not None:
        q = q.where(alerts.c.alert_id > after)
    async with db.connect() as conn:
        rows = await conn.execute(q.order_by(alerts.c.alert_id).limit(limit))
        return [dict(r._mapping) for r in rows]
