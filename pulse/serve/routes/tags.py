"""Device tags (HTTP only: parse, authorize, call storage, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Response

from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.tags import TAG_PATTERN, TagsPut
from pulse.storage import tags as store

router = APIRouter(prefix="/api/v1/customer", tags=["tags"])

# `:path` because a tag may contain "/" (e.g. "zone/north"); the pattern still bounds it.
TagPath = Path(min_length=1, max_length=64, pattern=TAG_PATTERN)


def _view(device_id: str, tags: list[str]) -> dict[str, Any]:
    return {"device_id": device_id, "tags": tags}


@router.get("/devices/{device_id}/tags")
async def get_tags(device_id: str, p: Principal = Depends(customer("devices.read")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return _view(device_id, await store.device_tags_of(svc.db, p.tenant_id, device_id))


@router.put("/devices/{device_id}/tags")
async def put_tags(device_id: str, body: TagsPut, p: Principal = Depends(customer("devices.tags.write")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Replaces the device's tag set (an empty list removes every tag)."""
    tags = await store.replace(svc.db, p.tenant_id, device_id, body.tags)
    await svc.runtime.rules_changed(p.tenant_id)  # rules scoped by tag see the new set
    return _view(device_id, tags)


@router.post("/devices/{device_id}/tags/{tag:path}")
async def add_tag(device_id: str, tag: str = TagPath, p: Principal = Depends(customer("devices.tags.write")),
                  svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Idempotent: adding a tag the device already carries changes nothing."""
    tags = await store.add(svc.db, p.tenant_id, device_id, tag)
    await svc.runtime.rules_changed(p.tenant_id)
    return _view(device_id, tags)


@router.delete("/devices/{device_id}/tags/{tag:path}", status_code=204)
async def remove_tag(device_id: str, tag: str = TagPath, p: Principal = Depends(customer("devices.tags.write")),
                     svc: ServiceContext = Depends(services)) -> Response:
    """Idempotent: removing a tag the device does not carry is not an error."""
    await store.remove(svc.db, p.tenant_id, device_id, tag)
    await svc.runtime.rules_changed(p.tenant_id)
    return Response(status_code=204)


@router.get("/tags")
async def list_tags(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                    svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Tags in use in the tenant with their device counts, by tag."""
    items, total = await store.tenant_tags(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("tags", items, total, pg)
