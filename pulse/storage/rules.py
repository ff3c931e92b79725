"""Alert rules of a tenant."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.rules import Rule
from pulse.domain.scopes import selectors
from pulse.errors import Invalid, NotFound
from pulse.storage import escalation, groups
from pulse.storage.tags import has_all_tags
from pulse.storage.db import Database, delete_tenant_row, page_rows, tenant_row, utcnow
from pulse.storage.tables import alert_rules, devices

RULE_FIELDS = ("name", "description", "rule_type", "metric", "operator", "threshold", "severity",
               "duration_seconds", "device_ids", "auto_resolve", "enabled", "config", "escalation_policy_id")


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def create(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    rule_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await _check_scope(conn, tenant_id, (fields.get("config") or {}).get("scope") or {},
                           fields.get("escalation_policy_id"))
        await conn.execute(alert_rules.insert().values(
            rule_id=rule_id, tenant_id=tenant_id, created_at=now, updated_at=now,
            **{"config": {}, **{k: v for k, v in fields.items() if k in RULE_FIELDS}}))
    return await get(db, tenant_id, rule_id)


async def get(db: Database, tenant_id: str, rule_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return _public(await tenant_row(conn, alert_rules, tenant_id, "rule_id", rule_id, "alert rule"))


async def list_rules(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(alert_rules).where(alert_rules.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [alert_rules.c.created_at, alert_rules.c.rule_id], limit, offset)
        return [_public(r) for r in rows], total


async def update(db: Database, tenant_id: str, rule_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in RULE_FIELDS}
    async with db.begin() as conn:
        await _check_scope(conn, tenant_id, (values.get("config") or {}).get("scope") or {},
                           values.get("escalation_policy_id"))
        res = await conn.execute(alert_rules.update().where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id).values(updated_at=utcnow(), **values))
        if res.rowcount == 0:
            raise NotFound(f"alert rule {rule_id} not found")
    return await get(db, tenant_id, rule_id)


async def delete(db: Database, tenant_id: str, rule_id: str) -> None:
    async with db.begin() as conn:
        await delete_tenant_row(conn, alert_rules, tenant_id, "rule_id", rule_id, "alert rule")


async def load_active(db: Database, tenant_id: str) -> list[Rule]:
    """The enabled rules the device actors evaluate, with each rule's scope resolved to device ids."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alert_rules).where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.enabled.is_(True)))
        out = []
        for r in rows:
            row = dict(r._mapping)
            out.append(Rule.from_row(row, await scope_device_ids(conn, tenant_id, row)))
        return out


async def scope_device_ids(conn: AsyncConnection, tenant_id: str, row: dict[str, Any]) -> frozenset[str] | None:
    """Devices a rule applies to (None = all): its scope read as `pulse.domain.scopes.selects` does
    (any listed value within a key, every key set), in SQL.

    Resolved when rules load; routes that change tags, groups or templates broadcast
    `rules_changed` so the actors see the new membership."""
    scope = selectors({**((row.get("config") or {}).get("scope") or {}), "device_ids": row.get("device_ids")})
    if not scope:
        return None
    d = devices.c
    keys: list[sa.ColumnElement[bool]] = []
    for key, values in scope.items():
        if key == "device_ids":
            keys.append(d.device_id.in_(values))
        elif key == "site_ids":
            keys.append(d.site_id.in_(values))
        elif key == "template_ids":
            keys.append(d.template_id.in_(values))
        elif key == "tags":
            keys.append(sa.or_(*(sa.and_(*has_all_tags([tag])) for tag in values)))
        elif key == "group_ids":
            keys.append(sa.or_(sa.false(), *[sa.and_(*c) for c in await _group_conditions(conn, tenant_id, values)]))
    rows = await conn.execute(sa.select(d.device_id).where(d.tenant_id == tenant_id, *keys))
    return frozenset(r.device_id for r in rows)


async def _group_conditions(conn: AsyncConnection, tenant_id: str,
                            group_ids: list[str]) -> list[list[sa.ColumnElement[bool]]]:
    out = []
    for group_id in group_ids:
        try:
            out.append(await groups.member_conditions(conn, tenant_id, group_id))
        except NotFound:  # a deleted group simply matches nothing
            continue
    return out


async def _check_scope(conn: AsyncConnection, tenant_id: str, scope: dict[str, Any],
                       policy_id: str | None = None) -> None:
    await escalation.check_policy(conn, tenant_id, policy_id)
    missing = set(scope.get("group_ids") or []) - await groups.existing_ids(conn, tenant_id, scope.get("group_ids") or [])
    if missing:
        raise Invalid(f"unknown device group(s): {', '.join(sorted(missing))}")


async def timer_devices(db: Database) -> list[tuple[str, str]]:
    """ACTIVE devices of tenants that have an enabled telemetry_gap rule (the scheduler ticks them)."""
    tenants_q = sa.select(alert_rules.c.tenant_id).where(
        alert_rules.c.enabled.is_(True), alert_rules.c.rule_type == "telemetry_gap").distinct()
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(devices.c.tenant_id, devices.c.device_id).where(
            devices.c.tenant_id.in_(tenants_q), devices.c.status == "ACTIVE"))
        return [(r.tenant_id, r.device_id) for r in rows]
