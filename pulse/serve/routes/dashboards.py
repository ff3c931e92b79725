"""Dashboards, the customer side (HTTP only: parse, authorize, call the service, shape); docs/dashboards.md.

The caller is the token's `sub`: their personal dashboards and the tenant's shared ones are all they see."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import MAX_LIMIT, DbId, Offset
from pulse.serve.schemas.dashboards import (Bootstrapped, DashboardCreate, DashboardCreated, DashboardDetail,
                                            DashboardList, DashboardUpdate, DashboardUpdated, LayoutSaved,
                                            LayoutUpdate, ShareResult, ShareUpdate, WidgetCreate, WidgetOut,
                                            WidgetUpdate)
from pulse.services import dashboards as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/dashboards", tags=["dashboards"])
READ = customer("dashboards.read")
WRITE = customer("dashboards.write")


@router.get("", response_model=DashboardList)
async def list_dashboards(limit: int = Query(100, ge=1, le=MAX_LIMIT), offset: Offset = 0, p: Principal = Depends(READ),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The caller's own and the tenant's shared dashboards: the default first, then the most recently updated."""
    return await service.list_dashboards(svc, p.tenant_id, p.sub, limit, offset)


@router.post("", status_code=201, response_model=DashboardCreated)
async def create_dashboard(body: DashboardCreate, p: Principal = Depends(WRITE),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """A personal dashboard (at most 20 per user); share it with PUT …/share."""
    return await service.create(svc, p.tenant_id, p.sub, body.model_dump())


@router.post("/bootstrap", status_code=201, response_model=Bootstrapped)
async def bootstrap(p: Principal = Depends(WRITE), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Idempotent: a dashboard the caller already sees, else a new default "Fleet Overview" with 7 widgets."""
    return await service.bootstrap(svc, p.tenant_id, p.sub)


@router.get("/{dashboard_id}", response_model=DashboardDetail)
async def get_dashboard(dashboard_id: DbId, p: Principal = Depends(READ),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.get(svc, p.tenant_id, p.sub, dashboard_id)


@router.put("/{dashboard_id}", response_model=DashboardUpdated)
async def update_dashboard(dashboard_id: DbId, body: DashboardUpdate, p: Principal = Depends(WRITE),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Any of name, description, is_default; 400 when none is given."""
    return await service.update(svc, p.tenant_id, p.sub, dashboard_id, body.values())


@router.delete("/{dashboard_id}", status_code=204, response_class=Response)
async def delete_dashboard(dashboard_id: DbId, p: Principal = Depends(WRITE),
                           svc: ServiceContext = Depends(services)) -> Response:
    """The dashboard and its widgets."""
    await service.delete(svc, p.tenant_id, p.sub, dashboard_id)
    return Response(status_code=204)


@router.put("/{dashboard_id}/share", response_model=ShareResult)
async def share_dashboard(dashboard_id: DbId, body: ShareUpdate, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """shared=true: the tenant's; shared=false: the caller's own."""
    return await service.share(svc, p.tenant_id, p.sub, dashboard_id, body.shared)


@router.put("/{dashboard_id}/layout", response_model=LayoutSaved)
async def update_layout(dashboard_id: DbId, body: LayoutUpdate, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Moves the listed widgets on the 12-column grid; 400 for a widget the dashboard does not have."""
    return await service.set_layout(svc, p.tenant_id, p.sub, dashboard_id, body.layout)


@router.post("/{dashboard_id}/widgets", status_code=201, response_model=WidgetOut)
async def add_widget(dashboard_id: DbId, body: WidgetCreate, p: Principal = Depends(WRITE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """At most 30 per dashboard; `config` is checked against `widget_type` (docs/dashboards.md)."""
    return await service.add_widget(svc, p.tenant_id, p.sub, dashboard_id, body.widget_type, body.title,
                                    body.config, body.position.model_dump())


@router.put("/{dashboard_id}/widgets/{widget_id}", response_model=WidgetOut)
async def update_widget(dashboard_id: DbId, widget_id: DbId, body: WidgetUpdate, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Any of title, config, position (the type never changes); 400 when none is given."""
    return await service.update_widget(svc, p.tenant_id, p.sub, dashboard_id, widget_id, body.values())


@router.delete("/{dashboard_id}/widgets/{widget_id}", status_code=204, response_class=Response)
async def delete_widget(dashboard_id: DbId, widget_id: DbId, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_widget(svc, p.tenant_id, p.sub, dashboard_id, widget_id)
    return Response(status_code=204)
