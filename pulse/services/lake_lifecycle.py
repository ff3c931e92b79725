"""Lake lifecycle use cases the scheduler runs: compaction of closed days and per-tenant retention.

The file work runs in a worker thread, so the caller's event loop (the scheduler actor) keeps
running its other ticks meanwhile; the lake writer is another actor and never waits for it.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from pulse.config.settings import Settings
from pulse.errors import NotFound
from pulse.pipelines.lake_lifecycle import closed_before, compact_closed_days, expire_days
from pulse.storage import tenants
from pulse.storage.db import Database


async def compact_lake(settings: Settings, now: datetime | None = None) -> int:
    """Compact the closed tenant-days; returns the days compacted."""
    before = closed_before(now or datetime.now(timezone.utc), timedelta(seconds=settings.lake_compaction_delay_s))
    return await asyncio.to_thread(compact_closed_days, settings.lake_dir, before, settings.lake_compaction_grace_s)


async def expire_lake(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Delete tenant-days past their tenant's retention (`lake_retention_days` unless the tenant
    sets its own); returns the days deleted."""
    own = await tenants.telemetry_retention_days(db)
    return await asyncio.to_thread(
        expire_days, settings.lake_dir, lambda t: own.get(t, settings.lake_retention_days),
        now or datetime.now(timezone.utc),
    )


async def retention(db: Database, settings: Settings, tenant_id: str) -> dict[str, object]:
    """A tenant's telemetry retention: its own setting, or the platform default (404 for an unknown tenant)."""
    tenant = await tenants.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    own = tenant["telemetry_retention_days"]
    return {"tenant_id": tenant_id, "retention_days": own if own is not None else settings.lake_retention_days,
            "source": "tenant" if own is not None else "default", "default_days": settings.lake_retention_days}


async def set_retention(db: Database, settings: Settings, tenant_id: str, days: int | None) -> dict[str, object]:
    """Set a tenant's own retention (None: back to the default); the next retention pass applies it."""
    if not await tenants.set_telemetry_retention_days(db, tenant_id, days):
        raise NotFound(f"tenant {tenant_id} not found")
    return await retention(db, settings, tenant_id)
