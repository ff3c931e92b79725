"""Report runs, and the facts the SLA report and the quick exports read (docs/reports.md)."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pulse.domain.device import NO_HEARTBEAT
from pulse.storage.alerts import ms_to_dt
from pulse.storage.db import Database, insert_missing, page_rows, utcnow, where_given
from pulse.storage.tables import alert_transitions, alerts, device_state, devices, device_tags, report_runs, tenants

RUN_KEYS = ("run_id", "report_type", "status", "triggered_by", "row_count", "parameters", "created_at",
            "completed_at")
MAX_ERROR = 500


# ---- runs ----------------------------------------------------------------------------------------
async def start_run(db: Database, tenant_id: str, report_type: str, triggered_by: str,
                    schedule_key: str | None = None) -> int | None:
    """A RUNNING run; None when a scheduled run of that key exists already (another tick made it)."""
    row = {"tenant_id": tenant_id, "report_type": report_type, "status": "RUNNING", "triggered_by": triggered_by,
           "parameters": {}, "schedule_key": schedule_key, "created_at": utcnow()}
    async with db.begin() as conn:
        if schedule_key is None:
            return (await conn.execute(report_runs.insert().values(**row).returning(report_runs.c.run_id))).scalar_one()
        if not await insert_missing(conn, report_runs, [row], ["tenant_id", "report_type", "schedule_key"]):
            return None
        return (await conn.execute(sa.select(report_runs.c.run_id).where(
            report_runs.c.tenant_id == tenant_id, report_runs.c.report_type == report_type,
            report_runs.c.schedule_key == schedule_key))).scalar_one()


async def finish_run(db: Database, run_id: int, row_count: int, parameters: dict[str, Any]) -> None:
    async with db.begin() as conn:
        await conn.execute(report_runs.update().where(report_runs.c.run_id == run_id).values(
            status="COMPLETED", row_count=row_count, parameters=parameters, completed_at=utcnow()))


async def fail_run(db: Database, run_id: int, error: str) -> None:
    """FAILED, and its schedule key given back so the next scheduler tick tries that day again."""
    async with db.begin() as conn:
        await conn.execute(report_runs.update().where(report_runs.c.run_id == run_id).values(
            status="FAILED", error=error[:MAX_ERROR], schedule_key=None, completed_at=utcnow()))


async def fail_stale_runs(db: Database, report_type: str, started_before: datetime, error: str) -> int:
    """Runs of this type still RUNNING since before `started_before` (their process died) become
    FAILED with their schedule keys given back, so the scheduler makes those days again."""
    async with db.begin() as conn:
        result = await conn.execute(report_runs.update().where(
            report_runs.c.report_type == report_type, report_runs.c.status == "RUNNING",
            report_runs.c.created_at < started_before).values(
            status="FAILED", error=error[:MAX_ERROR], schedule_key=None, completed_at=utcnow()))
        return result.rowcount


async def list_runs(db: Database, tenant_id: str, report_type: str | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first."""
    q = where_given(sa.select(*(report_runs.c[k] for k in RUN_KEYS)).where(report_runs.c.tenant_id == tenant_id),
                    report_runs, report_type=report_type)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [report_runs.c.run_id.desc()], limit, offset)
    return [dict(r._mapping) for r in rows], total


async def tenants_without_run(db: Database, report_type: str, schedule_key: str) -> list[str]:
    """ACTIVE tenants that have no run of this type and key yet."""
    done = sa.select(report_runs.c.tenant_id).where(report_runs.c.report_type == report_type,
                                                   report_runs.c.schedule_key == schedule_key)
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(tenants.c.tenant_id).where(
            tenants.c.status == "ACTIVE", tenants.c.tenant_id.not_in(done)).order_by(tenants.c.tenant_id))
        return list(rows.scalars())


# ---- what the SLA report reads -------------------------------------------------------------------
def _presence_join() -> sa.Join:
    return devices.outerjoin(device_state, sa.and_(device_state.c.tenant_id == devices.c.tenant_id,
                                                   device_state.c.device_id == devices.c.device_id))


def _last_seen(state: dict[str, Any] | None) -> datetime | None:
    """When the device actor last heard from the device (its snapshot, at most one interval old)."""
    return ms_to_dt(((state or {}).get("presence") or {}).get("last_seen_ms"))


async def devices_in_service(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's ACTIVE devices: `device_id`, `created_at`, `last_seen` (None: never heard from)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(devices.c.device_id, devices.c.created_at, device_state.c.state)
                                  .select_from(_presence_join())
                                  .where(devices.c.tenant_id == tenant_id, devices.c.status == "ACTIVE"))
        return [{"device_id": r.device_id, "created_at": r.created_at, "last_seen": _last_seen(r.state)} for r in rows]


async def heartbeat_alerts(db: Database, tenant_id: str, since: datetime) -> list[dict[str, Any]]:
    """NO_HEARTBEAT alerts not closed before `since` (an outage can start before its alert opens, so
    no upper bound: the caller clips), with the silence seen when opened (`trigger_value`),
    `stale_after_s`, and the silence the auto-close saw (`close_value`, None for any other close)."""
    a, t = alerts.c, alert_transitions.c
    q = (sa.select(a.device_id, a.triggered_at, a.trigger_value, a.details, a.closed_at, t.details.label("closing"))
         .select_from(alerts.outerjoin(alert_transitions, sa.and_(t.alert_id == a.alert_id, t.action == "AUTO_CLOSED")))
         .where(a.tenant_id == tenant_id, a.alert_type == NO_HEARTBEAT,
                sa.or_(a.closed_at.is_(None), a.closed_at >= since)))
    async with db.connect() as conn:
        rows = await conn.execute(q)
        return [{"device_id": r.device_id, "opened_at": r.triggered_at, "trigger_value": r.trigger_value,
                 "stale_after_s": (r.details or {}).get("stale_after_s"), "closed_at": r.closed_at,
                 "close_value": (r.closing or {}).get("value")} for r in rows]


async def alerts_opened(db: Database, tenant_id: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Alerts opened in [since, until): device, status and the times of their transitions."""
    a = alerts.c
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(a.device_id, a.status, a.triggered_at, a.acknowledged_at, a.closed_at)
                                  .where(a.tenant_id == tenant_id, a.triggered_at >= since, a.triggered_at < until))
        return [dict(r._mapping) for r in rows]


# ---- what the quick exports read -----------------------------------------------------------------
async def device_rows(db: Database, tenant_id: str, site_id: str | None) -> list[dict[str, Any]]:
    """Every device of the tenant (optionally of one site) with its registry status, last message
    time and tags, by device id."""
    q = where_given(sa.select(devices.c.device_id, devices.c.name, devices.c.model, devices.c.status,
                              devices.c.site_id, device_state.c.state).select_from(_presence_join())
                    .where(devices.c.tenant_id == tenant_id), devices, site_id=site_id)
    tags: dict[str, list[str]] = defaultdict(list)
    async with db.connect() as conn:
        rows = (await conn.execute(q.order_by(devices.c.device_id))).all()
        for device_id, tag in await conn.execute(sa.select(device_tags.c.device_id, device_tags.c.tag).where(
                device_tags.c.tenant_id == tenant_id).order_by(device_tags.c.tag)):
            tags[device_id].append(tag)
    return [{"device_id": r.device_id, "name": r.name, "model": r.model, "registry_status": r.status,
             "site_id": r.site_id, "last_seen_at": _last_seen(r.state), "tags": tags.get(r.device_id, [])}
            for r in rows]


async def alert_rows(db: Database, tenant_id: str, status: str | None, since: datetime) -> list[dict[str, Any]]:
    """Alerts created since `since` (optionally in one status), newest first."""
    a = alerts.c
    q = where_given(sa.select(a.alert_id, a.device_id, a.alert_type, a.severity, a.status, a.created_at,
                              a.acknowledged_at, a.closed_at, a.summary)
                    .where(a.tenant_id == tenant_id, a.created_at >= since), alerts, status=status)
    async with db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q.order_by(a.alert_id.desc()))]
