"""Device sensors, per device and fleet-wide (HTTP only)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.devices import ID_PATTERN
from pulse.serve.schemas.sensors import SensorCreate, SensorSource, SensorStatus, SensorUpdate
from pulse.serve.schemas.templates import METRIC_KEY
from pulse.storage import devices as device_store
from pulse.storage import sensors as store

router = APIRouter(prefix="/api/v1/customer", tags=["device sensors"])


@router.get("/sensors")
async def list_fleet_sensors(device_id: str | None = Query(None, pattern=ID_PATTERN),
                             metric_key: str | None = Query(None, pattern=METRIC_KEY),
                             status: SensorStatus | None = None, source: SensorSource | None = None,
                             pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                             svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Every sensor of the tenant's fleet."""
    items, total = await store.list_sensors(svc.db, p.tenant_id, device_id=device_id, metric_key=metric_key,
                                            status=status, source=source, limit=pg.limit, offset=pg.offset)
    return page("sensors", items, total, pg)


@router.get("/devices/{device_id}/sensors")
async def list_sensors(device_id: str, status: SensorStatus | None = None, source: SensorSource | None = None,
                       pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await device_store.get(svc.db, p.tenant_id, device_id)
    items, total = await store.list_sensors(svc.db, p.tenant_id, device_id=device_id, status=status, source=source,
                                            limit=pg.limit, offset=pg.offset)
    return page("sensors", items, total, pg)


@router.post("/devices/{device_id}/sensors", status_code=201)
async def add_sensor(device_id: str, body: SensorCreate, p: Principal = Depends(customer("devices.update")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.create(svc.db, p.tenant_id, device_id, body.model_dump(exclude_none=True))


@router.put("/devices/{device_id}/sensors/{sensor_id}")
async def update_sensor(device_id: str, sensor_id: int, body: SensorUpdate,
                        p: Principal = Depends(customer("devices.update")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.update(svc.db, p.tenant_id, device_id, sensor_id, body.changes())


@router.delete("/devices/{device_id}/sensors/{sensor_id}", status_code=204)
async def delete_sensor(device_id: str, sensor_id: int, p: Principal = Depends(customer("devices.update")),
                        svc: ServiceContext = Depends(services)) -> Response:
    """409 for source=required: deactivate it instead."""
    await store.delete(svc.db, p.tenant_id, device_id, sensor_id)
    return Response(status_code=204)
