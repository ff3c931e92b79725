"""Device sensors, per device and fleet-wide."""
from __future__ import annotations

from typing import Any

from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store
from pulse.storage import sensors as store


async def list_sensors(ctx: ServiceContext, tenant_id: str, *, device_id: str | None = None,
                       metric_key: str | None = None, status: str | None = None, source: str | None = None,
                       limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Every sensor of the tenant's fleet matching the filters."""
    return await store.list_sensors(ctx.db, tenant_id, device_id=device_id, metric_key=metric_key, status=status,
                                    source=source, limit=limit, offset=offset)


async def of_device(ctx: ServiceContext, tenant_id: str, device_id: str, *, status: str | None,
                    source: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One device's sensors; NotFound for an unknown device (an empty list would hide the typo)."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await list_sensors(ctx, tenant_id, device_id=device_id, status=status, source=source, limit=limit,
                              offset=offset)


async def create(ctx: ServiceContext, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return await store.create(ctx.db, tenant_id, device_id, fields)


async def update(ctx: ServiceContext, tenant_id: str, device_id: str, sensor_id: int,
                 fields: dict[str, Any]) -> dict[str, Any]:
    return await store.update(ctx.db, tenant_id, device_id, sensor_id, fields)


async def delete(ctx: ServiceContext, tenant_id: str, device_id: str, sensor_id: int) -> None:
    """Conflict for source=required: deactivate it instead."""
    await store.delete(ctx.db, tenant_id, device_id, sensor_id)
