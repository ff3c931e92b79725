"""Alerts (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.alerts import AlertDetail, AlertEnvelope, AlertPage, AlertTrend, SilenceBody
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.services import alerts as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage)
async def list_alerts(status: str = Query("OPEN", pattern="^(?i:open|acknowledged|closed|all)$",
                                          description="any case; OPEN by default (documented), ALL for every status"),
                      device_id: StrId | None = Query(None, max_length=128),
                      alert_type: str | None = Query(None, pattern="^[A-Z_]{1,32}$"),
                      min_severity: int | None = Query(None, ge=1, le=5),
                      pg: PageParams = Depends(page_params), p: Principal = Depends(customer("alerts.read")),
                      svc: ServiceContext = Depends(services)) -> dict:
    wanted = status.upper()
    items, total = await service.list_alerts(svc.db, p.tenant_id, status=None if wanted == "ALL" else wanted,
                                             device_id=device_id, alert_type=alert_type, min_severity=min_severity,
                                             limit=pg.limit, offset=pg.offset)
    return page("alerts", items, total, pg) | {"tenant_id": p.tenant_id, "status_filter": wanted}


@router.get("/trend", response_model=AlertTrend)
async def trend(start: datetime | None = None, end: datetime | None = None,
                hours: int | None = Query(None, ge=1, le=168, description="documented: the last N hours (no start)"),
                bucket: str = Query("hour", pattern="^(hour|day)$"), p: Principal = Depends(customer("alerts.read")),
                svc: ServiceContext = Depends(services)) -> dict:
    """Alerts opened per hour or day (default: the last 24 hours), by severity and status, and closed."""
    t = await service.trend(svc.db, p.tenant_id, start, end, bucket, hours)
    trend = [{"hour": b["bucket_start"], "opened": b["total"], "closed": b["closed"]} for b in t.buckets]
    return {"start": t.start, "end": t.end, "bucket": bucket, "buckets": t.buckets, "trend": trend}


@router.get("/{alert_id}", response_model=AlertEnvelope)
async def get_alert(alert_id: DbId, p: Principal = Depends(customer("alerts.read")),
                    svc: ServiceContext = Depends(services)) -> dict:
    """The alert (flat, as Pulse documents it) and the same again as the documented `alert`."""
    alert = await service.get_alert(svc.db, p.tenant_id, alert_id)
    return {**alert, "alert": alert}


@router.patch("/{alert_id}/acknowledge", response_model=AlertDetail)
async def acknowledge(alert_id: DbId, p: Principal = Depends(customer("alerts.acknowledge")),
                      svc: ServiceContext = Depends(services)) -> dict:
    return await service.acknowledge(svc, p.tenant_id, alert_id, p.sub)


@router.patch("/{alert_id}/close", response_model=AlertDetail)
async def close(alert_id: DbId, p: Principal = Depends(customer("alerts.close")),
                svc: ServiceContext = Depends(services)) -> dict:
    return await service.close(svc, p.tenant_id, alert_id, p.sub)


@router.patch("/{alert_id}/silence", response_model=AlertDetail)
async def silence(alert_id: DbId, body: SilenceBody, p: Principal = Depends(customer("alerts.silence")),
                  svc: ServiceContext = Depends(services)) -> dict:
    return await service.silence(svc, p.tenant_id, alert_id, body.minutes, p.sub)
