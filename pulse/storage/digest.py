"""Alert digest settings of a tenant, which digests are due, and what one says (docs/escalation.md).

One settings row per tenant; none stored = the defaults (disabled). The schedule (`is_due`, with
time zones) is pure and lives in `pulse.domain.escalation`; the scheduler asks `due_digests`, builds
each with `digest_content` over `digest_window(settings, now)`, sends it, then calls `mark_sent`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.escalation import is_due
from pulse.domain.severity import SEVERITY_LABELS, severity_label
from pulse.errors import Invalid
from pulse.storage.db import Database, find_tenant_row, upsert, utcnow
from pulse.storage.tables import alert_digest_settings as settings_table
from pulse.storage.tables import alerts
from pulse.storage.tables import notification_channels as channels

SETTINGS_FIELDS = ("frequency", "recipients", "channel_id", "send_at_hour", "send_on_day", "timezone")
DEFAULTS: dict[str, Any] = {"frequency": "disabled", "recipients": [], "channel_id": None, "send_at_hour": 8,
                            "send_on_day": "mon", "timezone": "UTC", "last_sent_at": None, "created_at": None,
                            "updated_at": None}
STATUSES = ("OPEN", "ACKNOWLEDGED", "CLOSED")
TOP_DEVICES = 10


def _public(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    return d


def document(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The writable fields of settings (what PUT merges its changes into)."""
    return {k: settings[k] for k in SETTINGS_FIELDS}


async def get_settings(db: Database, tenant_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(settings_table).where(settings_table.c.tenant_id == tenant_id))).first()
    return _public(row) if row else dict(DEFAULTS)


async def _check_channel(conn: AsyncConnection, tenant_id: str, channel_id: str | None) -> None:
    if channel_id is None:
        return
    row = await find_tenant_row(conn, channels, tenant_id, "channel_id", channel_id)
    if row is None:
        raise Invalid(f"channel_id: unknown notification channel {channel_id}")
    if row.channel_type != "email":
        raise Invalid(f"channel_id: digests go to an email channel, not {row.channel_type}")


async def put_settings(db: Database, tenant_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Store the settings whole (the route merged and validated them); `last_sent_at` is kept."""
    values = {k: fields[k] for k in SETTINGS_FIELDS}
    now = utcnow()
    async with db.begin() as conn:
        await _check_channel(conn, tenant_id, values["channel_id"])
        await upsert(conn, settings_table, [{"tenant_id": tenant_id, "created_at": now, "updated_at": now, **values}],
                     ["tenant_id"], keep=("created_at",))
    return await get_settings(db, tenant_id)


async def due_digests(db: Database, now: datetime) -> list[dict[str, Any]]:
    """Settings (with `tenant_id`) of every tenant whose digest should go out at `now`."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(settings_table).where(settings_table.c.frequency != "disabled")
                                  .order_by(settings_table.c.tenant_id))
        return [d for d in (dict(r._mapping) for r in rows) if is_due(d, now)]


def _by_severity(counts: Mapping[int, int]) -> dict[str, int]:
    """Every label, most severe first, so a digest always has the same rows."""
    out = {SEVERITY_LABELS[s]: 0 for s in sorted(SEVERITY_LABELS, reverse=True)}
    for severity, n in counts.items():
        label = severity_label(severity)
        out[label] = out.get(label, 0) + n
    return out


async def digest_content(db: Database, tenant_id: str, since: datetime, until: datetime) -> dict[str, Any]:
    """What a digest reports: alerts opened in [since, until) by severity and (current) status,
    alerts open now (OPEN or ACKNOWLEDGED) by severity and status, and the devices with the most
    alerts opened in the period."""
    a = alerts.c
    in_period = (a.tenant_id == tenant_id, a.triggered_at >= since, a.triggered_at < until)
    open_now = (a.tenant_id == tenant_id, a.status.in_(("OPEN", "ACKNOWLEDGED")))
    n = sa.func.count().label("n")
    async with db.connect() as conn:
        opened = (await conn.execute(sa.select(a.severity, a.status, n).where(*in_period)
                                     .group_by(a.severity, a.status))).all()
        current = (await conn.execute(sa.select(a.severity, a.status, n).where(*open_now)
                                      .group_by(a.severity, a.status))).all()
        top = (await conn.execute(sa.select(a.device_id, n).where(*in_period).group_by(a.device_id)
                                  .order_by(n.desc(), a.device_id).limit(TOP_DEVICES))).all()

    def summary(rows, statuses) -> dict[str, Any]:
        sev: dict[int, int] = {}
        st = dict.fromkeys(statuses, 0)
        for severity, status, k in rows:
            sev[severity] = sev.get(severity, 0) + k
            st[status] = st.get(status, 0) + k
        return {"total": sum(st.values()), "by_severity": _by_severity(sev), "by_status": st}

    return {"tenant_id": tenant_id, "since": since, "until": until,
            "opened": summary(opened, STATUSES), "open_now": summary(current, STATUSES[:2]),
            "top_devices": [{"device_id": d, "alerts": k} for d, k in top]}


async def mark_sent(db: Database, tenant_id: str, at: datetime) -> bool:
    """Record a send at `at`; never moves `last_sent_at` back (False then, or with no settings)."""
    async with db.begin() as conn:
        res = await conn.execute(settings_table.update().where(
            settings_table.c.tenant_id == tenant_id,
            sa.or_(settings_table.c.last_sent_at.is_(None), settings_table.c.last_sent_at < at),
        ).values(last_sent_at=at))
        return res.rowcount == 1
