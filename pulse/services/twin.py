"""The device twin: desired state set here, reported state from the device, both held by the device actor."""
from __future__ import annotations

import time
from typing import Any

from pulse.errors import Invalid
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store


async def view(ctx: ServiceContext, tenant_id: str, device_id: str) -> dict[str, Any]:
    """The actor's twin view: desired, reported, their versions and times (ms) and the delta."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await ctx.runtime.device_call(tenant_id, device_id, "twin_view")


async def patch_desired(ctx: ServiceContext, tenant_id: str, device_id: str, patch: dict[str, Any],
                        replace: bool = False) -> dict[str, Any]:
    """JSON merge patch of the desired state, or with `replace` the new desired document (an empty
    one clears it); bumps the version and publishes it retained (QoS 1)."""
    if not patch and not replace:
        raise Invalid("empty patch")
    await device_store.get(ctx.db, tenant_id, device_id)
    twin, publishes = await ctx.runtime.device_call(tenant_id, device_id, "patch_desired", patch,
                                                    int(time.time() * 1000), replace)
    await ctx.downlink.publish(publishes)
    return twin
