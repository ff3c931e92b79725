"""Expansion modules installed in a device's template slots."""
from __future__ import annotations

from typing import Any

from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store
from pulse.storage import modules as store


async def list_modules(ctx: ServiceContext, tenant_id: str, device_id: str, status: str | None, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    """Removed modules only with status=removed."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await store.list_modules(ctx.db, tenant_id, device_id, status=status, limit=limit, offset=offset)


async def create(ctx: ServiceContext, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    module = await store.create(ctx.db, tenant_id, device_id, fields)
    await ctx.runtime.modules_changed(tenant_id, device_id)  # ingest applies the new key map at once
    return module


async def update(ctx: ServiceContext, tenant_id: str, device_id: str, module_id: int,
                 fields: dict[str, Any]) -> dict[str, Any]:
    module = await store.update(ctx.db, tenant_id, device_id, module_id, fields)
    await ctx.runtime.modules_changed(tenant_id, device_id)
    return module


async def remove(ctx: ServiceContext, tenant_id: str, device_id: str, module_id: int) -> None:
    """Soft delete: status becomes removed and the module's sensors are deactivated."""
    await store.remove(ctx.db, tenant_id, device_id, module_id)
    await ctx.runtime.modules_changed(tenant_id, device_id)
