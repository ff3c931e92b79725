"""Alerts and their transition history. Writes come only from the tenant host (one writer per tenant)."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pulse.domain.tenant import CreateAlert, OpenAlert, RetriggerAlert, TransitionAlert
from pulse.domain.severity import severity_label
from pulse.errors import NotFound
from pulse.storage.db import Database, page_rows, where_given
from pulse.storage.tables import alert_transitions, alerts

ALERT_STATUSES = ("OPEN", "ACKNOWLEDGED", "CLOSED")


def ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _summary(ev) -> str:
    if not ev.rule_id:  # built-in (NO_HEARTBEAT)
        return f"{ev.rule_name}: silent for {ev.value:.0f} s" if ev.value is not None else f"{ev.rule_name}: disconnected"
    if ev.value is None:
        return ev.rule_name
    op = ev.details.get("operator", "")
    return f"{ev.rule_name}: {ev.metric}={ev.value:g} {op} {ev.details.get('threshold', '')}".strip()


async def load_open(db: Database, tenant_id: str) -> list[OpenAlert]:
    async with db.connect() as conn:
        rows = await conn.execute(
            sa.select(alerts.c.alert_id, alerts.c.fingerprint, alerts.c.rule_id, alerts.c.status, alerts.c.silenced_until,
                      alerts.c.device_id)
            .where(alerts.c.tenant_id == tenant_id, alerts.c.status.in_(("OPEN", "ACKNOWLEDGED")))
        )
        return [
            OpenAlert(r.alert_id, r.fingerprint, r.rule_id, r.status,
                      int(r.silenced_until.timestamp() * 1000) if r.silenced_until else None, r.device_id)
            for r in rows
        ]


async def create(conn, op: CreateAlert) -> int:
    ev = op.event
    at = ms_to_dt(ev.ts_ms)
    res = await conn.execute(
        alerts.insert().values(
            tenant_id=ev.tenant_id, device_id=ev.device_id, rule_id=ev.rule_id or None, alert_type=ev.alert_type,
            fingerprint=ev.fingerprint, status="OPEN", severity=ev.severity, summary=_summary(ev),
            metric=ev.metric, trigger_value=ev.value, triggered_at=at, last_triggered_at=at,
            trigger_count=1, details=ev.details, created_at=datetime.now(timezone.utc),
        ).returning(alerts.c.alert_id)
    )
    alert_id = res.scalar_one()
    await _record(conn, alert_id, ev.tenant_id, "OPENED", None, at, {"value": ev.value})
    return alert_id


async def retrigger(conn, op: RetriggerAlert) -> None:
    ev = op.event
    await conn.execute(
        alerts.update().where(alerts.c.alert_id == op.alert_id).values(
            trigger_count=alerts.c.trigger_count + 1, last_triggered_at=ms_to_dt(ev.ts_ms),
            trigger_value=ev.value, severity=ev.severity, summary=_summary(ev),
        )
    )
    await _record(conn, op.alert_id, ev.tenant_id, "RETRIGGERED", None, ms_to_dt(ev.ts_ms), {"value": ev.value})


async def transition(conn, tenant_id: str, op: TransitionAlert) -> None:
    at = ms_to_dt(op.at_ms)
    values: dict[str, Any] = {"status": op.status}
    if op.action == "ACKNOWLEDGED":
        values.update(acknowledged_by=op.actor, acknowledged_at=at)
    elif op.status == "CLOSED":
        values.update(closed_by=op.actor, closed_at=at)
    if op.silenced_until_ms is not None:
        values["silenced_until"] = ms_to_dt(op.silenced_until_ms)
    await conn.execute(alerts.update().where(alerts.c.alert_id == op.alert_id, alerts.c.tenant_id == tenant_id).values(**values))
    await _record(conn, op.alert_id, tenant_id, op.action, op.actor, at, op.details or {})


async def _record(conn, alert_id: int, tenant_id: str, action: str, actor: str | None, at, details) -> None:
    await conn.execute(alert_transitions.insert().values(
        alert_id=alert_id, tenant_id=tenant_id, action=action, actor=actor, at=at, details=details))


def _public(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["severity_label"] = severity_label(d["severity"])
    d["silenced"] = bool(d["silenced_until"] and d["silenced_until"] > datetime.now(timezone.utc))
    return d


async def list_alerts(db: Database, tenant_id: str, *, status: str | None, device_id: str | None,
                      limit: int, offset: int, alert_type: str | None = None,
                      min_severity: int | None = None) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(alerts).where(alerts.c.tenant_id == tenant_id)
    q = where_given(q, alerts, alert_type=alert_type, status=status, device_id=device_id)
    if min_severity:
        q = q.where(alerts.c.severity >= min_severity)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [alerts.c.alert_id.desc()], limit, offset)
        return [_public(r) for r in rows], total


async def get(db: Database, tenant_id: str, alert_id: int) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(alerts).where(alerts.c.tenant_id == tenant_id, alerts.c.alert_id == alert_id))).first()
        if row is None:
            raise NotFound(f"alert {alert_id} not found")
        out = _public(row)
        hist = await conn.execute(
            sa.select(alert_transitions.c.action, alert_transitions.c.actor, alert_transitions.c.at, alert_transitions.c.details)
            .where(alert_transitions.c.alert_id == alert_id).order_by(alert_transitions.c.id)
        )
        out["transitions"] = [{"action": h.action, "actor": h.actor, "at": h.at, "details": h.details} for h in hist]
        return out


async def trend(db: Database, tenant_id: str, start: datetime, end: datetime, bucket_s: int) -> list[dict[str, Any]]:
    """Alerts opened per bucket in [start, end), counted by severity and by current status, and how
    many alerts were closed in each bucket."""
    by_sev: dict[int, Counter] = defaultdict(Counter)
    by_status: dict[int, Counter] = defaultdict(Counter)
    closed: Counter = Counter()
    t0 = int(start.timestamp())
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alerts.c.triggered_at, alerts.c.severity, alerts.c.status).where(
            alerts.c.tenant_id == tenant_id, alerts.c.triggered_at >= start, alerts.c.triggered_at < end))
        for at, severity, status in rows:
            b = (int(at.timestamp()) - t0) // bucket_s
            by_sev[b][severity_label(severity)] += 1
            by_status[b][status] += 1
        rows = await conn.execute(sa.select(alerts.c.closed_at).where(
            alerts.c.tenant_id == tenant_id, alerts.c.closed_at >= start, alerts.c.closed_at < end))
        closed.update((int(at.timestamp()) - t0) // bucket_s for (at,) in rows)
    n = -(-(int(end.timestamp()) - t0) // bucket_s)
    return [{"bucket_start": datetime.fromtimestamp(t0 + i * bucket_s, tz=timezone.utc),
             "total": sum(by_sev[i].values()), "by_severity": dict(by_sev[i]), "by_status": dict(by_status[i]),
             "closed": closed[i]} for i in range(n)]
