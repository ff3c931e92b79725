"""Device transports, and the deprecated device connection kept as a view of the primary transport."""
from __future__ import annotations

from typing import Any

from pulse.domain.transports import connection_view, transport_changes
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store
from pulse.storage import transports as store


async def list_transports(ctx: ServiceContext, tenant_id: str, device_id: str, limit: int,
                          offset: int) -> tuple[list[dict[str, Any]], int]:
    """The primary transport first."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await store.list_transports(ctx.db, tenant_id, device_id, limit=limit, offset=offset)


async def create(ctx: ServiceContext, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Primary when is_primary is true, or when left out and the device has no primary yet."""
    return await store.create(ctx.db, tenant_id, device_id, fields)


async def update(ctx: ServiceContext, tenant_id: str, device_id: str, transport_id: int,
                 fields: dict[str, Any]) -> dict[str, Any]:
    """is_primary: true clears it on the device's other transports."""
    return await store.update(ctx.db, tenant_id, device_id, transport_id, fields)


async def delete(ctx: ServiceContext, tenant_id: str, device_id: str, transport_id: int) -> None:
    await store.delete(ctx.db, tenant_id, device_id, transport_id)


# ---- deprecated: the device connection -----------------------------------------------------------
async def connection(ctx: ServiceContext, tenant_id: str, device_id: str) -> dict[str, Any]:
    """The device's primary transport in the legacy connection shape."""
    return connection_view(device_id, await store.primary(ctx.db, tenant_id, device_id))


async def put_connection(ctx: ServiceContext, tenant_id: str, device_id: str,
                         fields: dict[str, Any]) -> dict[str, Any]:
    """Creates or updates the primary transport from legacy connection fields."""
    changes, connectivity = transport_changes(fields)
    return connection_view(device_id, await store.upsert_primary(ctx.db, tenant_id, device_id, changes,
                                                                 connectivity))


async def delete_connection(ctx: ServiceContext, tenant_id: str, device_id: str) -> None:
    await store.delete_primary(ctx.db, tenant_id, device_id)
