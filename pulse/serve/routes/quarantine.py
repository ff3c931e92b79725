"""Quarantine events: messages refused at ingest, for the tenant and (audited) for operators."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer, operator
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.storage import quarantine as store

router = APIRouter(prefix="/api/v1", tags=["quarantine"])
Reason = Query(None, max_length=64)


@router.get("/customer/quarantine")
async def customer_quarantine(reason: str | None = Reason, device_id: str | None = Query(None, max_length=128),
                              pg: PageParams = Depends(page_params), p: Principal = Depends(customer("quarantine.read")),
                              svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await store.list_events(svc.db, p.tenant_id, reason=reason, device_id=device_id,
                                           limit=pg.limit, offset=pg.offset)
    return {**page("events", items, total, pg), "counts_by_reason": await store.reason_counts(svc.db, p.tenant_id)}


@router.get("/operator/quarantine")
async def operator_quarantine(tenant_id: str | None = Query(None, max_length=64), reason: str | None = Reason,
                              minutes: int = Query(1440, ge=1, le=43200),
                              pg: PageParams = Depends(page_params), p: Principal = Depends(operator()),
                              svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Cross-tenant; `counts_by_reason` covers the last `minutes` (per-minute counters)."""
    items, total = await store.list_events(svc.db, tenant_id, reason=reason, device_id=None,
                                           limit=pg.limit, offset=pg.offset)
    since = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    return {**page("events", items, total, pg), "counts_by_reason": await store.reason_counts(svc.db, tenant_id, since)}
