"""Device groups, static and dynamic (HTTP only: parse, authorize, call storage, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.groups import GroupCreate, GroupPatch
from pulse.storage import devices
from pulse.storage import groups as store

router = APIRouter(prefix="/api/v1/customer/device-groups", tags=["device groups"])


@router.get("")
async def list_groups(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await store.list_groups(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("groups", items, total, pg)


@router.post("", status_code=201)
async def create_group(body: GroupCreate, p: Principal = Depends(customer("devices.groups.write")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Without `query` the group is static (members added one by one); with it, dynamic."""
    return await store.create(svc.db, p.tenant_id, body.model_dump())


@router.patch("/{group_id}")
async def patch_group(group_id: str, body: GroupPatch, p: Principal = Depends(customer("devices.groups.write")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    fields = {k: v for k, v in body.model_dump().items() if k in body.model_fields_set}  # nested bodies whole
    if not fields:
        raise Invalid("nothing to update")
    if "name" in fields and fields["name"] is None:
        raise Invalid("name cannot be null")
    group = await store.update(svc.db, p.tenant_id, group_id, fields)
    await svc.runtime.rules_changed(p.tenant_id)  # a dynamic group's query may have changed
    return group


@router.delete("/{group_id}", status_code=204)
async def delete_group(group_id: str, p: Principal = Depends(customer("devices.groups.write")),
                       svc: ServiceContext = Depends(services)) -> Response:
    await store.delete(svc.db, p.tenant_id, group_id)
    await svc.runtime.rules_changed(p.tenant_id)  # rules scoped by group see the new membership
    return Response(status_code=204)


@router.get("/{group_id}/devices")
async def group_devices(group_id: str, pg: PageParams = Depends(page_params),
                        p: Principal = Depends(customer("devices.read")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Current members by device_id; a dynamic group's are computed from its query now."""
    items, total = await devices.list_devices(svc.db, p.tenant_id, group_id=group_id, limit=pg.limit, offset=pg.offset)
    return page("devices", items, total, pg)


@router.put("/{group_id}/devices/{device_id}", status_code=204)
async def add_member(group_id: str, device_id: str, p: Principal = Depends(customer("devices.groups.write")),
                     svc: ServiceContext = Depends(services)) -> Response:
    await store.add_member(svc.db, p.tenant_id, group_id, device_id)
    await svc.runtime.rules_changed(p.tenant_id)  # rules scoped by group see the new membership
    return Response(status_code=204)


@router.delete("/{group_id}/devices/{device_id}", status_code=204)
async def remove_member(group_id: str, device_id: str, p: Principal = Depends(customer("devices.groups.write")),
                        svc: ServiceContext = Depends(services)) -> Response:
    await store.remove_member(svc.db, p.tenant_id, group_id, device_id)
    await svc.runtime.rules_changed(p.tenant_id)  # rules scoped by group see the new membership
    return Response(status_code=204)
