"""Device templates and their parts (metrics, commands, slots): system templates for everyone, tenant ones
editable until locked."""
from __future__ import annotations

from typing import Any, Literal

from pulse.services.context import ServiceContext
from pulse.storage import templates as store

Kind = Literal["metrics", "commands", "slots"]


async def list_templates(ctx: ServiceContext, tenant_id: str, *, category: str | None, source: str | None,
                         search: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """System templates and the tenant's own."""
    return await store.list_templates(ctx.db, tenant_id, category=category, source=source, search=search,
                                      limit=limit, offset=offset)


async def get(ctx: ServiceContext, tenant_id: str, template_id: int) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, template_id)


async def create(ctx: ServiceContext, tenant_id: str, template: dict[str, Any]) -> dict[str, Any]:
    """A tenant template; the lists under `metrics`, `commands` and `slots` are added in the same transaction."""
    fields = {k: v for k, v in template.items() if k not in store.PARTS}
    parts = {kind: template.get(kind) or [] for kind in store.PARTS}
    return await store.create(ctx.db, tenant_id, fields, parts)


async def update(ctx: ServiceContext, tenant_id: str, template_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """Forbidden for system and locked templates; a locked one accepts `{"is_locked": false}`."""
    return await store.update(ctx.db, tenant_id, template_id, fields)


async def delete(ctx: ServiceContext, tenant_id: str, template_id: int) -> None:
    """Conflict while a device (or an installed module) uses the template."""
    await store.delete(ctx.db, tenant_id, template_id)


async def clone(ctx: ServiceContext, tenant_id: str, template_id: int, name: str | None,
                slug: str | None) -> dict[str, Any]:
    """A tenant-owned, unlocked copy with its metrics, commands and slots."""
    return await store.clone(ctx.db, tenant_id, template_id, name=name, slug=slug)


async def add_part(ctx: ServiceContext, tenant_id: str, template_id: int, kind: Kind,
                   fields: dict[str, Any]) -> dict[str, Any]:
    return await store.add_part(ctx.db, tenant_id, template_id, kind, fields)


async def update_part(ctx: ServiceContext, tenant_id: str, template_id: int, kind: Kind, part_id: int,
                      fields: dict[str, Any]) -> dict[str, Any]:
    return await store.update_part(ctx.db, tenant_id, template_id, kind, part_id, fields)


async def delete_part(ctx: ServiceContext, tenant_id: str, template_id: int, kind: Kind, part_id: int) -> None:
    await store.delete_part(ctx.db, tenant_id, template_id, kind, part_id)
