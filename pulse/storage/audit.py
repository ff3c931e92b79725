"""The audit logs: operators' cross-tenant accesses, and the tenant audit trail of customer changes."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pulse.domain.audit import EventFilter
from pulse.storage.db import Database, page_rows, utcnow, where_given
from pulse.storage.tables import audit_log, operator_audit_log

LIKE_ESCAPE = "\\"


async def record_operator_access(db: Database, *, user_id: str, role: str, method: str, path: str,
                                 tenant_filter: str | None, ip: str | None, user_agent: str | None) -> None:
    async with db.begin() as conn:
        await conn.execute(operator_audit_log.insert().values(
            at=utcnow(), user_id=user_id, role=role, method=method, path=path[:512],
            tenant_filter=tenant_filter, ip=ip, user_agent=(user_agent or "")[:512]))


# ---- the tenant audit trail --------------------------------------------------------------------
async def record_event(db: Database, row: dict[str, Any]) -> None:
    async with db.begin() as conn:
        await conn.execute(audit_log.insert().values(**row))


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and escape character taken literally."""
    for ch in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(ch, LIKE_ESCAPE + ch)
    return f"%{text}%"


def _filtered(tenant_id: str, f: EventFilter) -> sa.Select:
    q = where_given(sa.select(audit_log).where(audit_log.c.tenant_id == tenant_id), audit_log, category=f.category,
                    severity=f.severity, entity_type=f.entity_type, entity_id=f.entity_id)
    if f.start is not None:
        q = q.where(audit_log.c.at >= f.start)
    if f.end is not None:
        q = q.where(audit_log.c.at <= f.end)
    if f.search:
        q = q.where(audit_log.c.message.ilike(_contains(f.search), escape=LIKE_ESCAPE))
    return q


async def list_events(db: Database, tenant_id: str, f: EventFilter, limit: int,
                      offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first (ties: the later write first)."""
    async with db.connect() as conn:
        rows, total = await page_rows(conn, _filtered(tenant_id, f), [audit_log.c.at.desc(), audit_log.c.id.desc()],
                                      limit, offset)
    return [dict(r._mapping) for r in rows], total


async def delete_before(db: Database, cutoff: datetime) -> int:
    """Drop every tenant's events older than `cutoff`; how many went."""
    async with db.begin() as conn:
        return (await conn.execute(audit_log.delete().where(audit_log.c.at < cutoff))).rowcount or 0
