"""The audit use cases: the operator audit log (every cross-tenant access an operator makes,
docs/architecture.md) and the tenant audit trail (every change a tenant user makes, docs/audit-log.md).

The HTTP layer calls in: `operator()` for each operator request it lets through, before the route
runs; the audit-trail middleware for each successful mutating customer request, after the route ran.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from pulse.domain import audit as trail
from pulse.domain.audit import EventFilter
from pulse.domain.permissions import Principal
from pulse.errors import Invalid
from pulse.storage import audit as store
from pulse.storage.db import Database, utcnow


async def record_operator_access(db: Database, who: Principal, *, method: str, path: str,
                                 tenant_filter: str | None, ip: str | None, user_agent: str | None) -> None:
    await store.record_operator_access(db, user_id=who.sub, role=who.role, method=method, path=path,
                                       tenant_filter=tenant_filter, ip=ip, user_agent=user_agent)


@dataclass(frozen=True)
class CustomerChange:
    """A mutating customer request that succeeded, as the HTTP layer saw it."""

    who: Principal
    method: str
    route: str  # the path template, e.g. /api/v1/customer/devices/{device_id}
    params: Mapping[str, str]
    status: int
    ip: str | None
    request_id: str
    result: Any = None  # the response body, parsed (None when empty or not JSON)


async def record_change(db: Database, change: CustomerChange, now: datetime | None = None) -> None:
    """One audit-trail row for `change` (who, what entity, which action, when, from where, request id)."""
    what = trail.describe(change.method, change.route, change.params, change.result)
    await store.record_event(db, {
        "tenant_id": change.who.tenant_id, "at": now or utcnow(), "event_type": what.event_type[:200],
        "category": what.category[:64], "severity": what.severity, "entity_type": what.entity_type[:128],
        "entity_id": None if what.entity_id is None else what.entity_id[:128],
        "entity_name": trail.entity_name(what, change.result), "action": what.action[:128],
        "message": trail.message(change.who.sub, what)[:600],
        "details": {"method": change.method, "path": change.route, "status_code": change.status,
                    "role": change.who.role, "params": what.params},
        "source_service": trail.SOURCE_SERVICE, "actor_type": trail.ACTOR_USER, "actor_id": change.who.sub,
        "actor_name": change.who.sub, "ip": change.ip, "request_id": change.request_id})


def _utc(ts: datetime | None) -> datetime | None:
    # a timestamp without an offset is read as UTC, as every stored time is
    return ts.replace(tzinfo=timezone.utc) if ts is not None and ts.tzinfo is None else ts


async def list_events(db: Database, tenant_id: str, f: EventFilter, limit: int,
                      offset: int) -> tuple[list[dict[str, Any]], int]:
    f = replace(f, start=_utc(f.start), end=_utc(f.end))
    if f.start is not None and f.end is not None and f.start > f.end:
        raise Invalid("start must not be after end")
    return await store.list_events(db, tenant_id, f, limit, offset)


async def drop_expired(db: Database, retention_days: float, now: datetime | None = None) -> int:
    """Retention: the trail keeps `retention_days` (90 by default); older rows of every tenant go."""
    return await store.delete_before(db, (now or utcnow()) - timedelta(days=retention_days))
