"""Maintenance windows (HTTP only: parse, authorize, call storage, shape)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime

from pulse.domain.maintenance import is_active, next_occurrences
from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.maintenance import WindowCreate, WindowPatch
from pulse.storage import devices
from pulse.storage import maintenance as store
from pulse.storage.db import utcnow

router = APIRouter(prefix="/api/v1/customer/maintenance-windows", tags=["maintenance windows"])

NOT_NULL = ("name", "enabled", "starts_at", "scope")


def _view(window: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The stored window plus whether it is active at `at` and its next period after `at`."""
    upcoming = next_occurrences(window, at, count=1)
    nxt = {"starts_at": upcoming[0][0], "ends_at": upcoming[0][1]} if upcoming else None
    return {**window, "active": is_active(window, at), "next_occurrence": nxt}


@router.get("")
async def list_windows(active_at: AwareDatetime | None = Query(None, description="only windows active at this instant"),
                       device_id: str | None = Query(None, description="only windows whose scope covers this device"),
                       enabled: bool | None = None, pg: PageParams = Depends(page_params),
                       p: Principal = Depends(customer("maintenance.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """With both `active_at` and `device_id`: the windows that suppress that device's alerts then."""
    if device_id is not None:
        await devices.get(svc.db, p.tenant_id, device_id)
    items, total = await store.list_windows(svc.db, p.tenant_id, enabled=enabled, active_at=active_at,
                                            device_id=device_id, limit=pg.limit, offset=pg.offset)
    at = active_at or utcnow()
    return page("windows", [_view(w, at) for w in items], total, pg)


@router.post("", status_code=201)
async def create_window(body: WindowCreate, p: Principal = Depends(customer("maintenance.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    return _view(await store.create(svc.db, p.tenant_id, fields), utcnow())


@router.patch("/{window_id}")
async def patch_window(window_id: str, body: WindowPatch, p: Principal = Depends(customer("maintenance.update")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    fields = {k: v for k, v in body.model_dump().items() if k in body.model_fields_set}  # nested bodies whole
    if not fields:
        raise Invalid("nothing to update")
    for key in NOT_NULL:
        if key in fields and fields[key] is None:
            raise Invalid(f"{key} cannot be null")
    return _view(await store.update(svc.db, p.tenant_id, window_id, fields), utcnow())


@router.delete("/{window_id}", status_code=204)
async def delete_window(window_id: str, p: Principal = Depends(customer("maintenance.delete")),
                        svc: ServiceContext = Depends(services)) -> Response:
    await store.delete(svc.db, p.tenant_id, window_id)
    return Response(status_code=204)
