"""Quarantine events: messages refused at ingest, for the tenant and (audited) for operators (HTTP only)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.serve.auth import Principal, customer, operator
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.quarantine import QuarantinePage
from pulse.services import quarantine as service
from pulse.services.context import ServiceContext
from pulse.services.quarantine import Events

router = APIRouter(prefix="/api/v1", tags=["quarantine"])
Reason = Query(None, max_length=64)


def _page(events: Events, pg: PageParams) -> dict[str, Any]:
    return {**page("events", events.items, events.total, pg), "counts_by_reason": events.counts_by_reason}


@router.get("/customer/quarantine", response_model=QuarantinePage)
async def customer_quarantine(reason: str | None = Reason, device_id: StrId | None = None,
                              pg: PageParams = Depends(page_params), p: Principal = Depends(customer("quarantine.read")),
                              svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return _page(await service.tenant_events(svc, p.tenant_id, reason, device_id, pg.limit, pg.offset), pg)


@router.get("/operator/quarantine", response_model=QuarantinePage)
async def operator_quarantine(tenant_id: StrId | None = None, reason: str | None = Reason,
                              minutes: int = Query(1440, ge=1, le=43200),
                              pg: PageParams = Depends(page_params), p: Principal = Depends(operator()),
                              svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Cross-tenant; `counts_by_reason` covers the last `minutes` (per-minute counters)."""
    return _page(await service.operator_events(svc, tenant_id, reason, minutes, pg.limit, pg.offset), pg)
