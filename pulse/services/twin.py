"""The device twin: desired state set here, reported state from the device, both held by the device actor."""
from __future__ import annotations

import time
from typing import Any, Literal

from pulse.errors import Invalid, PreconditionRequired
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store


async def view(ctx: ServiceContext, tenant_id: str, device_id: str) -> dict[str, Any]:
    """The actor's twin view: desired, reported, their versions and times (ms) and the delta."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await ctx.runtime.device_call(tenant_id, device_id, "twin_view", _now_ms())


async def patch_desired(ctx: ServiceContext, tenant_id: str, device_id: str, patch: dict[str, Any],
                        if_match: int | Literal["*"] | None, replace: bool = False) -> dict[str, Any]:
    """JSON merge patch of the desired state, or with `replace` the new desired document (an empty
    one clears it); bumps the version and publishes it retained (QoS 1).

    `if_match` is the desired_version the client read (documented: required, so two writers cannot
    overwrite each other unseen); "*" writes whatever the current version is."""
    if not patch and not replace:
        raise Invalid("empty patch")
    await device_store.get(ctx.db, tenant_id, device_id)
    if if_match is None:
        raise PreconditionRequired('If-Match is required: send the ETag of GET …/twin (e.g. If-Match: "3"), '
                                   'or If-Match: * to write over any version')
    expected = None if if_match == "*" else if_match
    twin, publishes = await ctx.runtime.device_call(tenant_id, device_id, "patch_desired", patch,
                                                    _now_ms(), replace, expected)
    await ctx.downlink.publish(publishes)
    return twin


def _now_ms() -> int:
    return int(time.time() * 1000)
