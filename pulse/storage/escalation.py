"""Escalation policies of a tenant, and the escalation timers of its alerts (docs/escalation.md).

Policies: names unique per tenant, at most one default (setting one clears the others, a partial
unique index guards concurrent writes), target ids checked against the tenant's channels and on-call
schedules, and no deleting a policy an alert rule still names.

Timers live in the `alerts` row (`escalation_level`, `next_escalation_at`), so they survive restarts
and any scheduler process can run them: `start` arms the timer when an alert is created, `due` finds
the alerts whose step is due (all tenants), `mark_escalated` advances one alert by compare-and-set on
its level (two schedulers never both advance it), `stop` disarms it on acknowledge or close. The step
arithmetic is `pulse.domain.escalation`.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.escalation import check_levels, plan
from pulse.errors import Conflict, Invalid, NotFound
from pulse.storage import oncall, tables
from pulse.storage.db import Database, find_tenant_row, page_rows, tenant_row, utcnow
from pulse.storage.tables import alert_rules, alert_transitions, alerts
from pulse.storage.tables import escalation_policies as policies

log = logging.getLogger(__name__)

POLICY_FIELDS = ("name", "description", "is_default", "repeat", "levels")
OPEN = "OPEN"
# target type -> (table, id column, what the error calls it); a table not in the schema (an area not
# built yet) is skipped: the target is then checked for shape only.
TARGET_TABLES = {"channel": ("notification_channels", "channel_id", "notification channel"),
                 "oncall_schedule": ("oncall_schedules", "schedule_id", "on-call schedule")}


# ---- policies ------------------------------------------------------------------------------------
def _public(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    d["levels"] = [{"level": i, **lv} for i, lv in enumerate(d["levels"], start=1)]
    return d


def _stored_levels(levels: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Levels as stored: delay and targets only (the `level` number is their position)."""
    return [{"delay_minutes": int(lv["delay_minutes"]),
             "targets": [{"type": t["type"], "id": t["id"]} for t in lv["targets"]]} for lv in levels]


async def _row(conn: AsyncConnection, tenant_id: str, policy_id: str) -> Any:
    return await tenant_row(conn, policies, tenant_id, "policy_id", policy_id, "escalation policy")


async def get(db: Database, tenant_id: str, policy_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return _public(await _row(conn, tenant_id, policy_id))


async def list_policies(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(policies).where(policies.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [policies.c.name, policies.c.policy_id], limit, offset)
        return [_public(r) for r in rows], total


def _check(values: Mapping[str, Any]) -> None:
    try:
        check_levels(values["levels"], int(values.get("repeat") or 0))
    except ValueError as e:
        raise Invalid(str(e)) from None


async def _check_targets(conn: AsyncConnection, tenant_id: str, levels: list[dict[str, Any]]) -> None:
    for kind, (table_name, column, label) in TARGET_TABLES.items():
        table = tables.metadata.tables.get(table_name)
        ids = {t["id"] for lv in levels for t in lv["targets"] if t["type"] == kind}
        if table is None or not ids:
            continue
        rows = await conn.execute(sa.select(table.c[column]).where(
            table.c.tenant_id == tenant_id, table.c[column].in_(ids)))
        missing = ids - {r[0] for r in rows}
        if missing:
            raise Invalid(f"levels: unknown {label}(s) {', '.join(sorted(missing))}")


async def _clear_default(conn: AsyncConnection, tenant_id: str, keep: str) -> None:
    await conn.execute(policies.update().where(
        policies.c.tenant_id == tenant_id, policies.c.is_default.is_(True), policies.c.policy_id != keep,
    ).values(is_default=False, updated_at=utcnow()))


def _conflict(e: sa.exc.IntegrityError, name: str | None) -> Conflict:
    msg = str(e.orig)
    if "uq_escalation_policies_tenant_name" in msg or "escalation_policies.name" in msg:
        return Conflict(f"an escalation policy named {name!r} already exists")
    return Conflict("another policy was made the default at the same time; retry")


async def _name_free(conn: AsyncConnection, tenant_id: str, name: str, policy_id: str) -> None:
    taken = (await conn.execute(sa.select(policies.c.policy_id).where(
        policies.c.tenant_id == tenant_id, policies.c.name == name, policies.c.policy_id != policy_id))).first()
    if taken:
        raise Conflict(f"an escalation policy named {name!r} already exists")


async def create(db: Database, tenant_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in POLICY_FIELDS}
    values["levels"] = _stored_levels(values["levels"])
    values["is_default"] = bool(values.get("is_default"))
    values["repeat"] = int(values.get("repeat") or 0)
    _check(values)
    now, policy_id = utcnow(), str(uuid.uuid4())
    async with db.begin() as conn:
        await _name_free(conn, tenant_id, values["name"], policy_id)
        await _check_targets(conn, tenant_id, values["levels"])
        if values["is_default"]:
            await _clear_default(conn, tenant_id, policy_id)
        try:
            await conn.execute(policies.insert().values(
                policy_id=policy_id, tenant_id=tenant_id, created_at=now, updated_at=now, **values))
        except sa.exc.IntegrityError as e:
            raise _conflict(e, values["name"]) from None
    return await get(db, tenant_id, policy_id)


async def update(db: Database, tenant_id: str, policy_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A partial update; the result is checked as a whole. Alerts already escalating follow the new
    levels from their next step on."""
    values = {k: v for k, v in fields.items() if k in POLICY_FIELDS}
    if "levels" in values:
        values["levels"] = _stored_levels(values["levels"])
    async with db.begin() as conn:
        current = dict((await _row(conn, tenant_id, policy_id))._mapping)
        _check({**current, **values})
        if "name" in values:
            await _name_free(conn, tenant_id, values["name"], policy_id)
        if "levels" in values:  # unchanged levels may name since-deleted targets: not checked again
            await _check_targets(conn, tenant_id, values["levels"])
        if values.get("is_default"):
            await _clear_default(conn, tenant_id, policy_id)
        try:
            await conn.execute(policies.update().where(
                policies.c.tenant_id == tenant_id, policies.c.policy_id == policy_id).values(updated_at=utcnow(), **values))
        except sa.exc.IntegrityError as e:
            raise _conflict(e, values.get("name")) from None
    return await get(db, tenant_id, policy_id)


async def delete(db: Database, tenant_id: str, policy_id: str) -> None:
    """Refused (409) while an alert rule names the policy. Open alerts following it stop escalating."""
    async with db.begin() as conn:
        await _row(conn, tenant_id, policy_id)
        users = [r.name for r in await conn.execute(sa.select(alert_rules.c.name).where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.escalation_policy_id == policy_id,
        ).order_by(alert_rules.c.name).limit(6))]
        if users:
            shown = ", ".join(repr(n) for n in users[:5]) + (", …" if len(users) > 5 else "")
            raise Conflict(f"escalation policy {policy_id} is used by alert rule(s) {shown}; unlink them first")
        await conn.execute(alerts.update().where(
            alerts.c.tenant_id == tenant_id, alerts.c.escalation_policy_id == policy_id,
            alerts.c.next_escalation_at.is_not(None)).values(next_escalation_at=None))
        await conn.execute(policies.delete().where(
            policies.c.tenant_id == tenant_id, policies.c.policy_id == policy_id))


async def check_policy(conn: AsyncConnection, tenant_id: str, policy_id: str | None) -> None:
    """For the alert-rules area: Invalid unless `policy_id` is None or a policy of the tenant."""
    if policy_id is None:
        return
    if await find_tenant_row(conn, policies, tenant_id, "policy_id", policy_id) is None:
        raise Invalid(f"escalation_policy_id: unknown escalation policy {policy_id}")


async def link_rule(db: Database, tenant_id: str, rule_id: str, policy_id: str | None) -> None:
    """Make an alert rule's new alerts follow `policy_id` (None = the tenant's default)."""
    async with db.begin() as conn:
        await check_policy(conn, tenant_id, policy_id)
        res = await conn.execute(alert_rules.update().where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id).values(
            escalation_policy_id=policy_id, updated_at=utcnow()))
        if res.rowcount == 0:
            raise NotFound(f"alert rule {rule_id} not found")


# ---- alert timers --------------------------------------------------------------------------------
async def _policy_for(conn: AsyncConnection, tenant_id: str, policy_id: str | None) -> Any:
    if policy_id is not None:
        row = (await conn.execute(sa.select(policies).where(
            policies.c.tenant_id == tenant_id, policies.c.policy_id == policy_id))).first()
        if row is not None:
            return row
        log.warning("escalation: policy %s of tenant %s is gone; using the default", policy_id, tenant_id)
    return (await conn.execute(sa.select(policies).where(
        policies.c.tenant_id == tenant_id, policies.c.is_default.is_(True)))).first()


async def start(conn: AsyncConnection, tenant_id: str, alert_id: int, policy_id: str | None,
                opened_at: datetime, *, rule_id: str | None = None) -> datetime | None:
    """Arm the escalation timer of a newly created alert, in the transaction that created it.

    The policy is `policy_id`, else the one the alert's rule (`rule_id`) names, else the tenant's
    default; none = the alert does not escalate. Returns when the first step is due (or None)."""
    if policy_id is None and rule_id is not None:
        policy_id = (await conn.execute(sa.select(alert_rules.c.escalation_policy_id).where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id))).scalar_one_or_none()
    policy = await _policy_for(conn, tenant_id, policy_id)
    if policy is None:
        return None
    next_at = plan(policy._mapping, opened_at)
    await conn.execute(alerts.update().where(alerts.c.tenant_id == tenant_id, alerts.c.alert_id == alert_id).values(
        escalation_policy_id=policy.policy_id, escalation_level=0, next_escalation_at=next_at, last_escalated_at=None))
    return next_at


async def stop(conn: AsyncConnection, alert_id: int) -> None:
    """Disarm the timer (acknowledge, close); the level reached stays on the alert."""
    await conn.execute(alerts.update().where(alerts.c.alert_id == alert_id, alerts.c.next_escalation_at.is_not(None))
                       .values(next_escalation_at=None))


_DUE_COLUMNS = (alerts.c.alert_id, alerts.c.tenant_id, alerts.c.device_id, alerts.c.rule_id, alerts.c.alert_type,
                alerts.c.fingerprint, alerts.c.status, alerts.c.severity, alerts.c.summary, alerts.c.metric,
                alerts.c.trigger_value, alerts.c.triggered_at, alerts.c.created_at, alerts.c.details,
                alerts.c.escalation_policy_id, alerts.c.escalation_level, alerts.c.next_escalation_at,
                alerts.c.last_escalated_at)


async def due(db: Database, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Alerts of every tenant whose next step is due: OPEN, not acknowledged, not silenced now,
    `next_escalation_at <= now`; oldest first. Each carries its `policy` ({policy_id, name, levels,
    repeat}, None if deleted since). Not a claim: `mark_escalated` decides who advances an alert."""
    join = alerts.outerjoin(policies, sa.and_(policies.c.policy_id == alerts.c.escalation_policy_id,
                                              policies.c.tenant_id == alerts.c.tenant_id))
    q = (sa.select(*_DUE_COLUMNS, policies.c.name.label("policy_name"), policies.c.levels.label("policy_levels"),
                   policies.c.repeat.label("policy_repeat"))
         .select_from(join)
         .where(alerts.c.next_escalation_at.is_not(None), alerts.c.next_escalation_at <= now,
                alerts.c.status == OPEN, alerts.c.acknowledged_at.is_(None),
                sa.or_(alerts.c.silenced_until.is_(None), alerts.c.silenced_until <= now))
         .order_by(alerts.c.next_escalation_at, alerts.c.alert_id).limit(limit))
    out = []
    async with db.connect() as conn:
        for r in await conn.execute(q):
            d = dict(r._mapping)
            name, levels, repeat = d.pop("policy_name"), d.pop("policy_levels"), d.pop("policy_repeat")
            d["policy"] = None if levels is None else {"policy_id": d["escalation_policy_id"], "name": name,
                                                       "levels": levels, "repeat": repeat}
            out.append(d)
    return out


async def mark_escalated(db: Database, tenant_id: str, alert_id: int, level: int, next_at: datetime | None,
                         now: datetime, *, targets: list[dict[str, str]] | None = None) -> bool:
    """Record that step `level` fired: compare-and-set from `level - 1` on an alert still OPEN and
    armed. True = this caller advanced it (and an ESCALATED transition is recorded); False = another
    scheduler did, or the alert was acknowledged, closed or disarmed meanwhile."""
    async with db.begin() as conn:
        res = await conn.execute(alerts.update().where(
            alerts.c.tenant_id == tenant_id, alerts.c.alert_id == alert_id, alerts.c.escalation_level == level - 1,
            alerts.c.status == OPEN, alerts.c.next_escalation_at.is_not(None),
        ).values(escalation_level=level, next_escalation_at=next_at, last_escalated_at=now))
        if res.rowcount != 1:
            return False
        await conn.execute(alert_transitions.insert().values(
            alert_id=alert_id, tenant_id=tenant_id, action="ESCALATED", actor=None, at=now,
            details={"level": level, "targets": targets or []}))
    return True


async def finish(db: Database, tenant_id: str, alert_id: int, level: int) -> bool:
    """Disarm an alert whose chain has nothing left at `level` (policy gone or shortened); CAS like
    `mark_escalated`."""
    async with db.begin() as conn:
        res = await conn.execute(alerts.update().where(
            alerts.c.tenant_id == tenant_id, alerts.c.alert_id == alert_id, alerts.c.escalation_level == level,
            alerts.c.next_escalation_at.is_not(None)).values(next_escalation_at=None))
        return res.rowcount == 1


async def resolve_targets(db: Database, tenant_id: str, targets: Iterable[Mapping[str, str]],
                          at: datetime) -> dict[str, list[str]]:
    """A step's targets as {"channel_ids": [...], "people": [...]}: on-call schedules become whoever
    is on call at `at` (a deleted schedule or nobody on call adds no one), users stay as given."""
    channel_ids: list[str] = []
    people: list[str] = []
    for t in targets:
        if t["type"] == "channel":
            channel_ids.append(t["id"])
        elif t["type"] == "user":
            people.append(t["id"])
        elif t["type"] == "oncall_schedule":
            try:
                people.extend(await oncall.responders_now(db, tenant_id, t["id"], at))
            except NotFound:
                log.warning("escalation: on-call schedule %s of tenant %s is gone; skipped", t["id"], tenant_id)
    return {"channel_ids": list(dict.fromkeys(channel_ids)), "people": list(dict.fromkeys(people))}
