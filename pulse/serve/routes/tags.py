"""Device tags (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.tags import TAG_PATTERN, DeviceTags, TagChanged, TagPage, TagsPut
from pulse.services import tags as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["tags"])

# `:path` because a tag may contain "/" (e.g. "zone/north"); the pattern still bounds it.
TagPath = Path(min_length=1, max_length=64, pattern=TAG_PATTERN)


def _view(tenant_id: str, device_id: str, tags: list[str]) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "device_id": device_id, "tags": tags}


@router.get("/devices/{device_id}/tags", response_model=DeviceTags)
async def get_tags(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return _view(p.tenant_id, device_id, await service.of_device(svc, p.tenant_id, device_id))


@router.put("/devices/{device_id}/tags", response_model=DeviceTags)
async def put_tags(device_id: StrId, body: TagsPut, p: Principal = Depends(customer("devices.tags.write")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Replaces the device's tag set (an empty list removes every tag)."""
    return _view(p.tenant_id, device_id, await service.replace(svc, p.tenant_id, device_id, body.tags))


@router.post("/devices/{device_id}/tags/{tag:path}", response_model=TagChanged)
async def add_tag(device_id: StrId, tag: str = TagPath, p: Principal = Depends(customer("devices.tags.write")),
                  svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Idempotent: adding a tag the device already carries changes nothing."""
    return {**_view(p.tenant_id, device_id, await service.add(svc, p.tenant_id, device_id, tag)), "tag": tag}


@router.delete("/devices/{device_id}/tags/{tag:path}", response_model=TagChanged)
async def remove_tag(device_id: StrId, tag: str = TagPath, p: Principal = Depends(customer("devices.tags.write")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Idempotent: removing a tag the device does not carry is not an error."""
    return {**_view(p.tenant_id, device_id, await service.remove(svc, p.tenant_id, device_id, tag)), "tag": tag}


@router.get("/tags", response_model=TagPage)
async def list_tags(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                    svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Tags in use in the tenant with their device counts, by tag."""
    items, total = await service.in_use(svc, p.tenant_id, pg.limit, pg.offset)
    return {"tenant_id": p.tenant_id, **page("tags", items, total, pg)}
