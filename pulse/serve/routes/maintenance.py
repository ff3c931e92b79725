"""Maintenance windows (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params, set_fields
from pulse.serve.schemas.maintenance import WindowCreate, WindowDeleted, WindowOut, WindowPage, WindowPatch
from pulse.services import maintenance as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/maintenance-windows", tags=["maintenance windows"])

NOT_NULL = ("name", "enabled", "starts_at", "scope")


@router.get("", response_model=WindowPage)
async def list_windows(active_at: AwareDatetime | None = Query(None, description="only windows active at this instant"),
                       device_id: StrId | None = Query(None, description="only windows whose scope covers this device"),
                       enabled: bool | None = None, pg: PageParams = Depends(page_params),
                       p: Principal = Depends(customer("maintenance.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """With both `active_at` and `device_id`: the windows that suppress that device's alerts then."""
    items, total = await service.list_windows(svc, p.tenant_id, active_at=active_at, device_id=device_id,
                                              enabled=enabled, limit=pg.limit, offset=pg.offset)
    return page("windows", items, total, pg)


@router.post("", status_code=201, response_model=WindowOut)
async def create_window(body: WindowCreate, p: Principal = Depends(customer("maintenance.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create(svc, p.tenant_id, body.model_dump(exclude_none=True))


@router.patch("/{window_id}", response_model=WindowOut)
async def patch_window(window_id: StrId, body: WindowPatch, p: Principal = Depends(customer("maintenance.update")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update(svc, p.tenant_id, window_id, set_fields(body, not_null=NOT_NULL))


@router.delete("/{window_id}", response_model=WindowDeleted)
async def delete_window(window_id: StrId, p: Principal = Depends(customer("maintenance.delete")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await service.delete(svc, p.tenant_id, window_id)
    return {"window_id": window_id, "deleted": True}
