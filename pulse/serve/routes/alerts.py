"""Alerts: read from the store, lifecycle changes through the tenant actor."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.alerts import SilenceBody
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.storage import alerts as store

router = APIRouter(prefix="/api/v1/customer/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(status: str | None = Query(None, pattern="^(OPEN|ACKNOWLEDGED|CLOSED)$"),
                      device_id: str | None = Query(None, max_length=128),
                      alert_type: str | None = Query(None, pattern="^[A-Z_]{1,32}$"),
                      min_severity: int | None = Query(None, ge=1, le=5),
                      pg: PageParams = Depends(page_params), p: Principal = Depends(customer("alerts.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await store.list_alerts(svc.db, p.tenant_id, status=status, device_id=device_id,
                                           alert_type=alert_type, min_severity=min_severity,
                                           limit=pg.limit, offset=pg.offset)
    return page("alerts", items, total, pg)


BUCKETS = {"hour": 3600, "day": 86400}


@router.get("/trend")
async def trend(start: datetime | None = None, end: datetime | None = None,
                bucket: str = Query("hour", pattern="^(hour|day)$"), p: Principal = Depends(customer("alerts.read")),
                svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Alerts opened per hour or day (default: the last 24 hours), by severity and status."""
    end = _utc(end) or datetime.now(timezone.utc)
    start = _utc(start) or end - timedelta(days=1)
    if start >= end:
        raise Invalid("start must be before end")
    if (end - start) / timedelta(seconds=BUCKETS[bucket]) > 2000:
        raise Invalid("too many buckets: use a shorter range or bucket=day")
    buckets = await store.trend(svc.db, p.tenant_id, start, end, BUCKETS[bucket])
    return {"start": start, "end": end, "bucket": bucket, "buckets": buckets}


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


@router.get("/{alert_id}")
async def get_alert(alert_id: int, p: Principal = Depends(customer("alerts.read")),
                    svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.get(svc.db, p.tenant_id, alert_id)


async def _act(svc: ServiceContext, p: Principal, alert_id: int, method: str, *args: Any) -> dict[str, Any]:
    await store.get(svc.db, p.tenant_id, alert_id)  # 404 for another tenant's alert
    await svc.runtime.tenant_call(p.tenant_id, method, alert_id, *args)
    return await store.get(svc.db, p.tenant_id, alert_id)


@router.patch("/{alert_id}/acknowledge")
async def acknowledge(alert_id: int, p: Principal = Depends(customer("alerts.acknowledge")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await _act(svc, p, alert_id, "acknowledge", p.sub, int(time.time() * 1000))


@router.patch("/{alert_id}/close")
async def close(alert_id: int, p: Principal = Depends(customer("alerts.close")),
                svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await _act(svc, p, alert_id, "close", p.sub, int(time.time() * 1000))


@router.patch("/{alert_id}/silence")
async def silence(alert_id: int, body: SilenceBody, p: Principal = Depends(customer("alerts.silence")),
                  svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await _act(svc, p, alert_id, "silence", body.minutes, p.sub, int(time.time() * 1000))
