"""Alert rules of a tenant."""
from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from pulse.actors.rules import Rule
from pulse.errors import NotFound
from pulse.storage.db import Database, count, utcnow
from pulse.storage.tables import alert_rules

RULE_FIELDS = ("name", "description", "rule_type", "metric", "operator", "threshold", "severity",
               "duration_seconds", "device_ids", "auto_resolve", "enabled")


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def create(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    rule_id = str(uuid.uuid4())
    async with db.begin() as conn:
        await conn.execute(alert_rules.insert().values(
            rule_id=rule_id, tenant_id=tenant_id, created_at=now, updated_at=now, config={},
            **{k: v for k, v in fields.items() if k in RULE_FIELDS}))
    return await get(db, tenant_id, rule_id)


async def get(db: Database, tenant_id: str, rule_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(alert_rules).where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id))).first()
    if row is None:
        raise NotFound(f"alert rule {rule_id} not found")
    return _public(row)


async def list_rules(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(alert_rules).where(alert_rules.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        total = await count(conn, q)
        rows = await conn.execute(q.order_by(alert_rules.c.created_at, alert_rules.c.rule_id).limit(limit).offset(offset))
        return [_public(r) for r in rows], total


async def update(db: Database, tenant_id: str, rule_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in RULE_FIELDS}
    async with db.begin() as conn:
        res = await conn.execute(alert_rules.update().where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id).values(updated_at=utcnow(), **values))
        if res.rowcount == 0:
            raise NotFound(f"alert rule {rule_id} not found")
    return await get(db, tenant_id, rule_id)


async def delete(db: Database, tenant_id: str, rule_id: str) -> None:
    async with db.begin() as conn:
        res = await conn.execute(alert_rules.delete().where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.rule_id == rule_id))
        if res.rowcount == 0:
            raise NotFound(f"alert rule {rule_id} not found")


async def load_active(db: Database, tenant_id: str) -> list[Rule]:
    """The enabled threshold rules the device actors evaluate."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alert_rules).where(
            alert_rules.c.tenant_id == tenant_id, alert_rules.c.enabled.is_(True),
            alert_rules.c.rule_type == "threshold"))
        return [Rule.from_row(dict(r._mapping)) for r in rows]
