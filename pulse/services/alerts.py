"""Alerts: read from the store; every lifecycle change (acknowledge, close, silence) goes through the
tenant actor, the alerts' one writer, which also tells the Notifier."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pulse.errors import Invalid
from pulse.services.context import ServiceContext
from pulse.storage import alerts as store
from pulse.storage.alerts import get as get_alert
from pulse.storage.alerts import list_alerts
from pulse.storage.db import Database

__all__ = ["BUCKETS", "Trend", "trend", "acknowledge", "close", "silence", "get_alert", "list_alerts"]

BUCKETS = {"hour": 3600, "day": 86400}
MAX_BUCKETS = 2000


@dataclass
class Trend:
    start: datetime
    end: datetime
    buckets: list[dict[str, Any]]


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


async def trend(db: Database, tenant_id: str, start: datetime | None, end: datetime | None, bucket: str,
                hours: int | None = None) -> Trend:
    """Alerts opened per hour or day (default: the last 24 hours, or `hours` before `end`), by
    severity and status, and alerts closed per bucket."""
    if start is not None and hours is not None:
        raise Invalid("give start or hours, not both")
    end = _utc(end) or datetime.now(timezone.utc)
    start = _utc(start) or end - timedelta(hours=hours or 24)
    if start >= end:
        raise Invalid("start must be before end")
    if (end - start) / timedelta(seconds=BUCKETS[bucket]) > MAX_BUCKETS:
        raise Invalid("too many buckets: use a shorter range or bucket=day")
    return Trend(start, end, await store.trend(db, tenant_id, start, end, BUCKETS[bucket]))


async def _act(ctx: ServiceContext, tenant_id: str, alert_id: int, method: str, *args: Any) -> dict[str, Any]:
    """The alert after the tenant actor applied `method` to it (a refused transition raises Conflict)."""
    await store.get(ctx.db, tenant_id, alert_id)  # 404 for another tenant's alert
    await ctx.runtime.tenant_call(tenant_id, method, alert_id, *args)
    return await store.get(ctx.db, tenant_id, alert_id)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def acknowledge(ctx: ServiceContext, tenant_id: str, alert_id: int, actor: str) -> dict[str, Any]:
    return await _act(ctx, tenant_id, alert_id, "acknowledge", actor, _now_ms())


async def close(ctx: ServiceContext, tenant_id: str, alert_id: int, actor: str) -> dict[str, Any]:
    return await _act(ctx, tenant_id, alert_id, "close", actor, _now_ms())


async def silence(ctx: ServiceContext, tenant_id: str, alert_id: int, minutes: int, actor: str) -> dict[str, Any]:
    return await _act(ctx, tenant_id, alert_id, "silence", minutes, actor, _now_ms())
