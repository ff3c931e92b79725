"""On-call schedules, layers, overrides and who is on call (HTTP only: parse, authorize, call the service)."""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.oncall import (CurrentOnCall, LayerCreate, LayerOut, LayerUpdate, OverrideCreate, OverrideOut,
                                        OverridePage, ScheduleCreate, ScheduleOut, SchedulePage, ScheduleUpdate, Timeline)
from pulse.services import oncall as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/oncall-schedules", tags=["on-call schedules"])

READ = customer("oncall.read")
LAYERS_WRITE = customer("oncall.layers.write")
OVERRIDES_WRITE = customer("oncall.overrides.write")


@router.get("", response_model=SchedulePage)
async def list_schedules(pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                         svc: ServiceContext = Depends(services)) -> dict:
    """By name, each with its layers by priority."""
    items, total = await service.list_schedules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("schedules", items, total, pg)


@router.post("", status_code=201, response_model=ScheduleOut)
async def create_schedule(body: ScheduleCreate, p: Principal = Depends(customer("oncall.create")),
                          svc: ServiceContext = Depends(services)) -> dict:
    """`layers` (documented) are created with the schedule."""
    return await service.create_schedule(svc.db, p.tenant_id, body.model_dump(),
                                         [layer.model_dump() for layer in body.layers])


@router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: StrId, p: Principal = Depends(READ),
                       svc: ServiceContext = Depends(services)) -> dict:
    return await service.get_schedule(svc.db, p.tenant_id, schedule_id)


@router.put("/{schedule_id}", response_model=ScheduleOut)
async def update_schedule(schedule_id: StrId, body: ScheduleUpdate, p: Principal = Depends(customer("oncall.update")),
                          svc: ServiceContext = Depends(services)) -> dict:
    """A partial update: fields left out stay as they are."""
    return await service.update_schedule(svc.db, p.tenant_id, schedule_id, body.changes())


@router.delete("/{schedule_id}", status_code=204, response_class=Response)
async def delete_schedule(schedule_id: StrId, p: Principal = Depends(customer("oncall.delete")),
                          svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_schedule(svc.db, p.tenant_id, schedule_id)
    return Response(status_code=204)


# ---- layers ------------------------------------------------------------------------------------
@router.post("/{schedule_id}/layers", status_code=201, response_model=LayerOut)
async def add_layer(schedule_id: StrId, body: LayerCreate, p: Principal = Depends(LAYERS_WRITE),
                    svc: ServiceContext = Depends(services)) -> dict:
    return await service.add_layer(svc.db, p.tenant_id, schedule_id, body.model_dump())


@router.put("/{schedule_id}/layers/{layer_id}", response_model=LayerOut)
async def update_layer(schedule_id: StrId, layer_id: StrId, body: LayerUpdate, p: Principal = Depends(LAYERS_WRITE),
                       svc: ServiceContext = Depends(services)) -> dict:
    """A partial update, checked as a whole with the stored layer."""
    return await service.update_layer(svc.db, p.tenant_id, schedule_id, layer_id, body.changes())


@router.delete("/{schedule_id}/layers/{layer_id}", status_code=204, response_class=Response)
async def delete_layer(schedule_id: StrId, layer_id: StrId, p: Principal = Depends(LAYERS_WRITE),
                       svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_layer(svc.db, p.tenant_id, schedule_id, layer_id)
    return Response(status_code=204)


# ---- overrides ---------------------------------------------------------------------------------
@router.get("/{schedule_id}/overrides", response_model=OverridePage)
async def list_overrides(schedule_id: StrId,
                         start: AwareDatetime | None = Query(None, description="only overrides ending after this"),
                         end: AwareDatetime | None = Query(None, description="only overrides starting before this"),
                         pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                         svc: ServiceContext = Depends(services)) -> dict:
    items, total = await service.list_overrides(svc.db, p.tenant_id, schedule_id, start=start, end=end,
                                              limit=pg.limit, offset=pg.offset)
    return page("overrides", items, total, pg)


@router.post("/{schedule_id}/overrides", status_code=201, response_model=OverrideOut)
async def create_override(schedule_id: StrId, body: OverrideCreate, p: Principal = Depends(OVERRIDES_WRITE),
                          svc: ServiceContext = Depends(services)) -> dict:
    """Where overrides overlap, the one created last wins."""
    return await service.create_override(svc.db, p.tenant_id, schedule_id, body.model_dump(), created_by=p.sub)


@router.delete("/{schedule_id}/overrides/{override_id}", status_code=204, response_class=Response)
async def delete_override(schedule_id: StrId, override_id: StrId, p: Principal = Depends(OVERRIDES_WRITE),
                          svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_override(svc.db, p.tenant_id, schedule_id, override_id)
    return Response(status_code=204)


# ---- views -------------------------------------------------------------------------------------
@router.get("/{schedule_id}/current", response_model=CurrentOnCall)
async def current(schedule_id: StrId, at: AwareDatetime | None = Query(None, description="default: now"),
                  p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    """Who is on call at `at`: `on_call` / `responders` (final), and each layer's own rotation."""
    return await service.current(svc.db, p.tenant_id, schedule_id, at)


@router.get("/{schedule_id}/timeline", response_model=Timeline)
async def timeline(schedule_id: StrId, start: AwareDatetime | None = Query(None, description="default: now"),
                   end: AwareDatetime | None = Query(None, description="default: start + days; at most 60 days"),
                   days: int = Query(14, ge=1, le=60, description="documented: the length when `end` is not given"),
                   p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    return await service.timeline(svc.db, p.tenant_id, schedule_id, start, end, timedelta(days=days))
