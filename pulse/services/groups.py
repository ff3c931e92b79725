"""Device groups, static and dynamic; every change re-resolves the tenant's rules, since rules may be
scoped by group."""
from __future__ import annotations

from typing import Any

from pulse.services.context import ServiceContext
from pulse.storage import devices
from pulse.storage import groups as store


async def list_groups(ctx: ServiceContext, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_groups(ctx.db, tenant_id, limit, offset)


async def create(ctx: ServiceContext, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Without `query` the group is static (members added one by one); with it, dynamic."""
    return await store.create(ctx.db, tenant_id, fields)


async def update(ctx: ServiceContext, tenant_id: str, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    group = await store.update(ctx.db, tenant_id, group_id, fields)
    await ctx.runtime.rules_changed(tenant_id)  # a dynamic group's query may have changed
    return group


async def delete(ctx: ServiceContext, tenant_id: str, group_id: str) -> None:
    await store.delete(ctx.db, tenant_id, group_id)
    await ctx.runtime.rules_changed(tenant_id)


async def members(ctx: ServiceContext, tenant_id: str, group_id: str, limit: int,
                  offset: int) -> tuple[list[dict[str, Any]], int]:
    """Current members by device_id; a dynamic group's are computed from its query now."""
    return await devices.list_devices(ctx.db, tenant_id, group_id=group_id, limit=limit, offset=offset)


async def add_member(ctx: ServiceContext, tenant_id: str, group_id: str, device_id: str) -> None:
    await store.add_member(ctx.db, tenant_id, group_id, device_id)
    await ctx.runtime.rules_changed(tenant_id)


async def remove_member(ctx: ServiceContext, tenant_id: str, group_id: str, device_id: str) -> None:
    await store.remove_member(ctx.db, tenant_id, group_id, device_id)
    await ctx.runtime.rules_changed(tenant_id)
