"""Device groups, static and dynamic (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params, set_fields
from pulse.serve.schemas.groups import (GroupCreate, GroupDeleted, GroupMembers, GroupOut, GroupPage, GroupPatch,
                                        MemberChanged)
from pulse.services import groups as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/device-groups", tags=["device groups"])
WRITE = customer("devices.groups.write")


@router.get("", response_model=GroupPage)
async def list_groups(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await service.list_groups(svc, p.tenant_id, pg.limit, pg.offset)
    return page("groups", items, total, pg)


@router.post("", status_code=201, response_model=GroupOut)
async def create_group(body: GroupCreate, p: Principal = Depends(WRITE),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Without `query` the group is static (members added one by one); with it, dynamic."""
    return await service.create(svc, p.tenant_id, body.model_dump())


@router.patch("/{group_id}", response_model=GroupOut)
async def patch_group(group_id: StrId, body: GroupPatch, p: Principal = Depends(WRITE),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update(svc, p.tenant_id, group_id, set_fields(body, not_null=("name",)))


@router.delete("/{group_id}", response_model=GroupDeleted)
async def delete_group(group_id: StrId, p: Principal = Depends(WRITE),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await service.delete(svc, p.tenant_id, group_id)
    return {"group_id": group_id, "deleted": True}


@router.get("/{group_id}/devices", response_model=GroupMembers)
async def group_devices(group_id: StrId, pg: PageParams = Depends(page_params),
                        p: Principal = Depends(customer("devices.read")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Current members by device_id; a dynamic group's are computed from its query now."""
    items, total = await service.members(svc, p.tenant_id, group_id, pg.limit, pg.offset)
    return {"group_id": group_id, **page("devices", items, total, pg)}


@router.put("/{group_id}/devices/{device_id}", response_model=MemberChanged)
async def add_member(group_id: StrId, device_id: StrId, p: Principal = Depends(WRITE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await service.add_member(svc, p.tenant_id, group_id, device_id)
    return {"group_id": group_id, "device_id": device_id, "action": "added"}


@router.delete("/{group_id}/devices/{device_id}", response_model=MemberChanged)
async def remove_member(group_id: StrId, device_id: StrId, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await service.remove_member(svc, p.tenant_id, group_id, device_id)
    return {"group_id": group_id, "device_id": device_id, "action": "removed"}
