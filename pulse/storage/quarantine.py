"""Quarantine: messages refused at ingest, with a reason code and per-minute counters."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from pulse.domain.messages import Rejection
from pulse.storage.db import Database, page_rows, where_given
from pulse.storage.tables import quarantine_counters, quarantine_events


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


async def record(db: Database, rejections: list[Rejection]) -> None:
    """Store a batch of rejections and bump the per-minute counters, in one transaction."""
    if not rejections:
        return
    now = datetime.now(timezone.utc)
    rows = [{
        "ingested_at": _dt(r.ts_ms) if r.ts_ms else now, "tenant_id": r.tenant_id, "device_id": r.device_id,
        "topic": r.topic, "reason": r.reason, "detail": r.detail,
        "payload": r.payload if isinstance(r.payload, str) or r.payload is None else r.payload.decode("utf-8", "replace"),
    } for r in rejections]
    minute = now.replace(second=0, microsecond=0)
    counts = Counter((r.tenant_id or "", r.reason) for r in rejections)
    async with db.begin() as conn:
        await conn.execute(quarantine_events.insert(), rows)
        for (tenant, reason), n in counts.items():
            key = (quarantine_counters.c.bucket_minute == minute) & (quarantine_counters.c.tenant_id == tenant) \
                & (quarantine_counters.c.reason == reason)
            res = await conn.execute(quarantine_counters.update().where(key).values(count=quarantine_counters.c.count + n))
            if res.rowcount == 0:
                await conn.execute(quarantine_counters.insert().values(bucket_minute=minute, tenant_id=tenant, reason=reason, count=n))


async def list_events(db: Database, tenant_id: str | None, *, reason: str | None, device_id: str | None,
                      limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Tenant-scoped when tenant_id is given; all tenants (operators) when None."""
    q = sa.select(quarantine_events)
    if tenant_id is not None:
        q = q.where(quarantine_events.c.tenant_id == tenant_id)
    q = where_given(q, quarantine_events, reason=reason, device_id=device_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [quarantine_events.c.id.desc()], limit, offset)
        return [dict(r._mapping) for r in rows], total


async def reason_counts(db: Database, tenant_id: str | None, since: datetime | None = None) -> dict[str, int]:
    q = sa.select(quarantine_counters.c.reason, sa.func.sum(quarantine_counters.c.count)).group_by(quarantine_counters.c.reason)
    if tenant_id is not None:
        q = q.where(quarantine_counters.c.tenant_id == tenant_id)
    if since is not None:
        q = q.where(quarantine_counters.c.bucket_minute >= since)
    async with db.connect() as conn:
        return {reason: int(n) for reason, n in await conn.execute(q)}
