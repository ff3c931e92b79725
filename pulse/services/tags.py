"""Device tags; every change re-resolves the tenant's rules, since rules may be scoped by tag."""
from __future__ import annotations

from typing import Any

from pulse.services.context import ServiceContext
from pulse.storage import tags as store


async def of_device(ctx: ServiceContext, tenant_id: str, device_id: str) -> list[str]:
    return await store.device_tags_of(ctx.db, tenant_id, device_id)


async def replace(ctx: ServiceContext, tenant_id: str, device_id: str, tags: list[str]) -> list[str]:
    """The device's complete tag set (an empty list removes every tag)."""
    result = await store.replace(ctx.db, tenant_id, device_id, tags)
    await ctx.runtime.rules_changed(tenant_id)
    return result


async def add(ctx: ServiceContext, tenant_id: str, device_id: str, tag: str) -> list[str]:
    """Idempotent: adding a tag the device already carries changes nothing."""
    result = await store.add(ctx.db, tenant_id, device_id, tag)
    await ctx.runtime.rules_changed(tenant_id)
    return result


async def remove(ctx: ServiceContext, tenant_id: str, device_id: str, tag: str) -> list[str]:
    """Idempotent: removing a tag the device does not carry is not an error. Returns the tags left."""
    result = await store.remove(ctx.db, tenant_id, device_id, tag)
    await ctx.runtime.rules_changed(tenant_id)
    return result


async def in_use(ctx: ServiceContext, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Tags in use in the tenant with their device counts, by tag."""
    return await store.tenant_tags(ctx.db, tenant_id, limit, offset)
