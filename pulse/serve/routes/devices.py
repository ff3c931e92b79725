"""Device registry and device tokens (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import PageParams, one_of, page, page_params
from pulse.serve.schemas.devices import (REGISTRY_STATUSES, DecommissionBody, Decommissioned, DeviceCreate,
                                         DeviceCreated, DeviceDeleted, DeviceDetail, DeviceOut, DevicePage,
                                         DevicePatch, DeviceSummary, DeviceUpdated, RotateBody, RotatedToken,
                                         TokenList)
from pulse.serve.schemas.telemetry import latest_rows
from pulse.services import devices as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["devices"])


@router.post("/devices", status_code=201, response_model=DeviceCreated)
async def create_device(body: DeviceCreate, p: Principal = Depends(customer("devices.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create(svc, p.tenant_id, body.model_dump(exclude_none=True))


@router.get("/devices", response_model=DevicePage)
async def list_devices(status: str | None = Query(None, pattern=one_of(REGISTRY_STATUSES)),
                       site_id: StrId | None = None, search: str | None = Query(None, max_length=200),
                       tag: list[str] | None = Query(None, description="repeatable: devices carrying every tag"),
                       group_id: StrId | None = Query(None, description="members of a static or dynamic group"),
                       template_id: DbId | None = None,
                       sort: str = Query("device_id", pattern="^-?(device_id|name|site_id|status|created_at|updated_at)$"),
                       pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await service.list_devices(svc, p.tenant_id, status=status, site_id=site_id, search=search,
                                              tags=tag, group_id=group_id, template_id=template_id,
                                              sort=sort, limit=pg.limit, offset=pg.offset)
    return {"tenant_id": p.tenant_id, **page("devices", items, total, pg)}


@router.get("/devices/summary", response_model=DeviceSummary)
async def summary(p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.summary(svc, p.tenant_id)


@router.get("/devices/{device_id}", response_model=DeviceDetail)
async def get_device(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    device = await service.get(svc, p.tenant_id, device_id)
    device["telemetry"] = latest_rows(device.pop("latest"))
    return {**device, "tenant_id": p.tenant_id, "device": device}


@router.patch("/devices/{device_id}", response_model=DeviceUpdated)
async def patch_device(device_id: StrId, body: DevicePatch, p: Principal = Depends(customer("devices.update")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    device = await service.update(svc, p.tenant_id, device_id, body.model_dump(exclude_unset=True))
    return {**device, "tenant_id": p.tenant_id, "device": device}


@router.patch("/devices/{device_id}/decommission", response_model=Decommissioned)
async def decommission(device_id: StrId, body: DecommissionBody | None = None,
                       p: Principal = Depends(customer("devices.decommission")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.decommission(svc, p.tenant_id, device_id, p.sub, body.reason if body else None)


@router.delete("/devices/{device_id}", response_model=DeviceDeleted)
async def delete_device(device_id: StrId, p: Principal = Depends(customer("devices.delete")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await service.delete(svc, p.tenant_id, device_id, p.sub)
    return {"device_id": device_id, "status": "deleted"}


# ---- tokens --------------------------------------------------------------------------------------
@router.get("/devices/{device_id}/tokens", response_model=TokenList)
async def list_tokens(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items = await service.list_tokens(svc, p.tenant_id, device_id)
    return {"device_id": device_id, "tokens": items, "total": len(items)}


@router.post("/devices/{device_id}/tokens/rotate", status_code=201, response_model=RotatedToken)
async def rotate_token(device_id: StrId, body: RotateBody | None = None,
                       p: Principal = Depends(customer("devices.tokens.rotate")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Revokes the device's active tokens and returns the new secret (shown only this once).
    The body (`{"label"}`) is optional."""
    return await service.rotate_token(svc, p.tenant_id, device_id, (body or RotateBody()).label)


@router.delete("/devices/{device_id}/tokens/{token_id}", status_code=204, response_class=Response)
async def revoke_token(device_id: StrId, token_id: StrId, p: Principal = Depends(customer("devices.tokens.revoke")),
                       svc: ServiceContext = Depends(services)) -> Response:
    await service.revoke_token(svc, p.tenant_id, device_id, token_id)
    return Response(status_code=204)
