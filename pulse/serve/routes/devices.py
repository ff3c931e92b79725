"""Device registry and device tokens (HTTP only: parse, authorize, call storage/actors, shape)."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.domain.device import presence_status
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.devices import DecommissionBody, DeviceCreate, DevicePatch
from pulse.storage import devices as store
from pulse.storage import tokens
from pulse.errors import Invalid

router = APIRouter(prefix="/api/v1/customer", tags=["devices"])


def _status(svc: ServiceContext, presence: dict[str, Any], now_ms: int) -> str:
    s = svc.settings
    return presence_status(presence.get("last_seen_ms"), now_ms, s.stale_after_s, s.offline_after_s,
                           presence.get("connected"))


@router.post("/devices", status_code=201)
async def create_device(body: DeviceCreate, p: Principal = Depends(customer("devices.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    device, token = await store.create(svc.db, p.tenant_id, body.model_dump(exclude_none=True))
    await svc.credentials.set_device_secret(p.tenant_id, body.device_id, token["token"])
    return {**device, "token": token["token"], "token_id": token["token_id"]}


@router.get("/devices")
async def list_devices(status: str | None = Query(None, pattern="^(ACTIVE|INACTIVE|SUSPENDED|REVOKED)$"),
                       site_id: str | None = None, search: str | None = Query(None, max_length=200),
                       tag: list[str] | None = Query(None, description="repeatable: devices carrying every tag"),
                       group_id: str | None = Query(None, max_length=36, description="members of a static or dynamic group"),
                       template_id: int | None = None,
                       sort: str = Query("device_id", pattern="^-?(device_id|name|site_id|status|created_at|updated_at)$"),
                       pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    import re

    from pulse.serve.schemas.tags import TAG_PATTERN

    if tag and (len(tag) > 20 or not all(re.match(TAG_PATTERN, t) for t in tag)):
        raise Invalid("tag: at most 20 tags of 1-64 characters from A-Z a-z 0-9 _ . : / -")
    items, total = await store.list_devices(svc.db, p.tenant_id, status=status, site_id=site_id, search=search,
                                            tags=tag, group_id=group_id, template_id=template_id,
                                            sort=sort, limit=pg.limit, offset=pg.offset)
    return page("devices", items, total, pg)


@router.get("/devices/summary")
async def summary(p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    registry = await store.registry_counts(svc.db, p.tenant_id)
    now = int(time.time() * 1000)
    presence = Counter(_status(svc, pr, now) for pr in await store.presences(svc.db, p.tenant_id))
    return {"total": sum(registry.values()), "by_status": registry,
            "connectivity": {k: presence.get(k, 0) for k in ("ONLINE", "STALE", "OFFLINE")}}


@router.get("/devices/{device_id}")
async def get_device(device_id: str, p: Principal = Depends(customer("devices.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    device = await store.get(svc.db, p.tenant_id, device_id)
    presence = await svc.runtime.device_call(p.tenant_id, device_id, "presence_view")
    return {**device, "presence": {**presence, "status": _status(svc, presence, int(time.time() * 1000))}}


@router.patch("/devices/{device_id}")
async def patch_device(device_id: str, body: DevicePatch, p: Principal = Depends(customer("devices.update")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise Invalid("nothing to update")
    device = await store.update(svc.db, p.tenant_id, device_id, fields)
    if "status" in fields:
        await svc.runtime.device_changed(p.tenant_id, device_id, device["status"])
    if {"site_id", "template_id"} & fields.keys():  # rules scoped by site or template
        await svc.runtime.rules_changed(p.tenant_id)
    return device


@router.patch("/devices/{device_id}/decommission")
async def decommission(device_id: str, body: DecommissionBody | None = None,
                       p: Principal = Depends(customer("devices.decommission")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    device = await store.decommission(svc.db, p.tenant_id, device_id)
    await svc.runtime.device_changed(p.tenant_id, device_id, "REVOKED")
    await svc.credentials.remove_device(p.tenant_id, device_id)
    return device


@router.delete("/devices/{device_id}", status_code=204)
async def delete_device(device_id: str, p: Principal = Depends(customer("devices.delete")),
                        svc: ServiceContext = Depends(services)) -> Response:
    await store.delete(svc.db, p.tenant_id, device_id)
    await svc.runtime.device_changed(p.tenant_id, device_id, None)
    await svc.credentials.remove_device(p.tenant_id, device_id)
    return Response(status_code=204)


# ---- tokens --------------------------------------------------------------------------------------
@router.get("/devices/{device_id}/tokens")
async def list_tokens(device_id: str, p: Principal = Depends(customer("devices.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await store.get(svc.db, p.tenant_id, device_id)
    items = await tokens.list_tokens(svc.db, p.tenant_id, device_id)
    return {"tokens": items, "total": len(items)}


@router.post("/devices/{device_id}/tokens/rotate", status_code=201)
async def rotate_token(device_id: str, p: Principal = Depends(customer("devices.tokens.rotate")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Revokes the device's active tokens and returns the new secret (shown only this once)."""
    await store.get(svc.db, p.tenant_id, device_id)
    token = await tokens.rotate(svc.db, p.tenant_id, device_id)
    await svc.credentials.set_device_secret(p.tenant_id, device_id, token["token"])
    return token


@router.delete("/devices/{device_id}/tokens/{token_id}", status_code=204)
async def revoke_token(device_id: str, token_id: str, p: Principal = Depends(customer("devices.tokens.revoke")),
                       svc: ServiceContext = Depends(services)) -> Response:
    await store.get(svc.db, p.tenant_id, device_id)
    await tokens.revoke(svc.db, p.tenant_id, device_id, token_id)
    # A broker that holds one password per device (Mosquitto) cannot tell which token it has:
    # revoking any token removes the device there until the next rotate (docs/mqtt-broker.md).
    await svc.credentials.remove_device(p.tenant_id, device_id)
    return Response(status_code=204)
