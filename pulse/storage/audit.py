"""Operator audit log: every cross-tenant access is recorded."""
from __future__ import annotations

from pulse.storage.db import Database, utcnow
from pulse.storage.tables import operator_audit_log


async def record_operator_access(db: Database, *, user_id: str, role: str, method: str, path: str,
                                 tenant_filter: str | None, ip: str | None, user_agent: str | None) -> None:
    async with db.begin() as conn:
        await conn.execute(operator_audit_log.insert().values(
            at=utcnow(), user_id=user_id, role=role, method=method, path=path[:512],
            tenant_filter=tenant_filter, ip=ip, user_agent=(user_agent or "")[:512]))
