"""The operator audit log: every cross-tenant access an operator makes is recorded (docs/architecture.md).

The HTTP `operator()` dependency calls this for each request it lets through, before the route runs."""
from __future__ import annotations

from pulse.domain.permissions import Principal
from pulse.storage import audit as store
from pulse.storage.db import Database


async def record_operator_access(db: Database, who: Principal, *, method: str, path: str,
                                 tenant_filter: str | None, ip: str | None, user_agent: str | None) -> None:
    await store.record_operator_access(db, user_id=who.sub, role=who.role, method=method, path=path,
                                       tenant_filter=tenant_filter, ip=ip, user_agent=user_agent)
