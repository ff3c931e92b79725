"""Quarantine events: the messages ingest refused, with counts by reason, for a tenant or across tenants."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pulse.services.context import ServiceContext
from pulse.storage import quarantine as store


@dataclass
class Events:
    items: list[dict[str, Any]]
    total: int
    counts_by_reason: dict[str, int]


async def tenant_events(ctx: ServiceContext, tenant_id: str, reason: str | None, device_id: str | None,
                        limit: int, offset: int) -> Events:
    """One tenant's events; `counts_by_reason` over everything kept."""
    items, total = await store.list_events(ctx.db, tenant_id, reason=reason, device_id=device_id,
                                           limit=limit, offset=offset)
    return Events(items, total, await store.reason_counts(ctx.db, tenant_id))


async def operator_events(ctx: ServiceContext, tenant_id: str | None, reason: str | None, minutes: int,
                          limit: int, offset: int) -> Events:
    """Every tenant's events (or one's); `counts_by_reason` over the last `minutes` (per-minute counters)."""
    items, total = await store.list_events(ctx.db, tenant_id, reason=reason, device_id=None,
                                           limit=limit, offset=offset)
    since = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    return Events(items, total, await store.reason_counts(ctx.db, tenant_id, since))
