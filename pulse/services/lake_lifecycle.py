"""Lake lifecycle use cases the scheduler runs: compaction of closed days and per-tenant retention.

The file work runs in a worker thread, so the caller's event loop (the scheduler actor) keeps
running its other ticks meanwhile; the lake writer is another actor and never waits for it.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from pulse.config.settings import Settings
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
