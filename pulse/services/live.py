"""Live push use cases: what a stream subscription resolves to in the store (docs/live.md)."""
from __future__ import annotations

from pulse.services.context import ServiceContext
from pulse.services.groups import members


async def group_devices(ctx: ServiceContext, tenant_id: str, group_id: str) -> frozenset[str]:
    """The group's members now (NotFound for another tenant's group). Resolved once per subscribe:
    a device added later is streamed after the client subscribes again (docs/live.md)."""
    devices, _ = await members(ctx, tenant_id, group_id, ctx.settings.live_max_group_devices, 0)
    return frozenset(d["device_id"] for d in devices)
