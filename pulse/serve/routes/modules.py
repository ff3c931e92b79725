"""Expansion modules installed in a device's template slots (HTTP only)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.modules import ModuleCreate, ModuleOut, ModulePage, ModuleUpdate
from pulse.services import modules as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}/modules", tags=["device modules"])
UPDATE = customer("devices.update")


@router.get("", response_model=ModulePage)
async def list_modules(device_id: StrId, status: Literal["active", "inactive", "removed"] | None = None,
                       pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Removed modules only with status=removed."""
    items, total = await service.list_modules(svc, p.tenant_id, device_id, status, pg.limit, pg.offset)
    return {"device_id": device_id, **page("modules", items, total, pg)}


@router.post("", status_code=201, response_model=ModuleOut)
async def add_module(device_id: StrId, body: ModuleCreate, p: Principal = Depends(UPDATE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create(svc, p.tenant_id, device_id, body.model_dump(exclude_none=True))


@router.put("/{module_id}", response_model=ModuleOut)
async def update_module(device_id: StrId, module_id: DbId, body: ModuleUpdate, p: Principal = Depends(UPDATE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update(svc, p.tenant_id, device_id, module_id, body.changes())


@router.delete("/{module_id}", status_code=204, response_class=Response)
async def remove_module(device_id: StrId, module_id: DbId, p: Principal = Depends(UPDATE),
                        svc: ServiceContext = Depends(services)) -> Response:
    """Soft delete: status becomes removed and the module's sensors are deactivated."""
    await service.remove(svc, p.tenant_id, device_id, module_id)
    return Response(status_code=204)
