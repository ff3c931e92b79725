"""Device sensors, per device and fleet-wide (HTTP only)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.sensors import (DeviceSensorPage, SensorCreate, SensorOut, SensorPage, SensorSource,
                                         SensorStatus, SensorUpdate)
from pulse.serve.schemas.templates import METRIC_KEY
from pulse.services import sensors as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["device sensors"])
READ, UPDATE = customer("devices.read"), customer("devices.update")


@router.get("/sensors", response_model=SensorPage)
async def list_fleet_sensors(device_id: StrId | None = None,
                             metric_key: str | None = Query(None, pattern=METRIC_KEY),
                             status: SensorStatus | None = None, source: SensorSource | None = None,
                             pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                             svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Every sensor of the tenant's fleet."""
    items, total = await service.list_sensors(svc, p.tenant_id, device_id=device_id, metric_key=metric_key,
                                              status=status, source=source, limit=pg.limit, offset=pg.offset)
    return page("sensors", items, total, pg)


@router.get("/devices/{device_id}/sensors", response_model=DeviceSensorPage)
async def list_sensors(device_id: StrId, status: SensorStatus | None = None, source: SensorSource | None = None,
                       pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await service.of_device(svc, p.tenant_id, device_id, status=status, source=source,
                                           limit=pg.limit, offset=pg.offset)
    return {"device_id": device_id, **page("sensors", items, total, pg)}


@router.post("/devices/{device_id}/sensors", status_code=201, response_model=SensorOut)
async def add_sensor(device_id: StrId, body: SensorCreate, p: Principal = Depends(UPDATE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create(svc, p.tenant_id, device_id, body.model_dump(exclude_none=True))


@router.put("/devices/{device_id}/sensors/{sensor_id}", response_model=SensorOut)
async def update_sensor(device_id: StrId, sensor_id: DbId, body: SensorUpdate, p: Principal = Depends(UPDATE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update(svc, p.tenant_id, device_id, sensor_id, body.changes())


@router.delete("/devices/{device_id}/sensors/{sensor_id}", status_code=204, response_class=Response)
async def delete_sensor(device_id: StrId, sensor_id: DbId, p: Principal = Depends(UPDATE),
                        svc: ServiceContext = Depends(services)) -> Response:
    """409 for source=required: deactivate it instead."""
    await service.delete(svc, p.tenant_id, device_id, sensor_id)
    return Response(status_code=204)
