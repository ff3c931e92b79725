"""Expansion modules installed in a device's template slots (HTTP only)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response

from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.modules import ModuleCreate, ModuleUpdate
from pulse.storage import devices as device_store
from pulse.storage import modules as store

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}/modules", tags=["device modules"])


@router.get("")
async def list_modules(device_id: str, status: Literal["active", "inactive", "removed"] | None = None,
                       pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Removed modules only with status=removed."""
    await device_store.get(svc.db, p.tenant_id, device_id)
    items, total = await store.list_modules(svc.db, p.tenant_id, device_id, status=status, limit=pg.limit,
                                            offset=pg.offset)
    return page("modules", items, total, pg)


@router.post("", status_code=201)
async def add_module(device_id: str, body: ModuleCreate, p: Principal = Depends(customer("devices.update")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.create(svc.db, p.tenant_id, device_id, body.model_dump(exclude_none=True))


@router.put("/{module_id}")
async def update_module(device_id: str, module_id: int, body: ModuleUpdate,
                        p: Principal = Depends(customer("devices.update")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.update(svc.db, p.tenant_id, device_id, module_id, body.changes())


@router.delete("/{module_id}", status_code=204)
async def remove_module(device_id: str, module_id: int, p: Principal = Depends(customer("devices.update")),
                        svc: ServiceContext = Depends(services)) -> Response:
    """Soft delete: status becomes removed and the module's sensors are deactivated."""
    await store.remove(svc.db, p.tenant_id, device_id, module_id)
    return Response(status_code=204)
