"""Maintenance windows, each returned with whether it is active and when it next opens."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pulse.domain.maintenance import is_active, next_occurrences
from pulse.services.context import ServiceContext
from pulse.storage import devices
from pulse.storage import maintenance as store
from pulse.storage.db import utcnow


def _view(window: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The stored window plus whether it is active at `at` and its next period after `at`."""
    upcoming = next_occurrences(window, at, count=1)
    nxt = {"starts_at": upcoming[0][0], "ends_at": upcoming[0][1]} if upcoming else None
    return {**window, "active": is_active(window, at), "next_occurrence": nxt}


async def list_windows(ctx: ServiceContext, tenant_id: str, *, active_at: datetime | None, device_id: str | None,
                       enabled: bool | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """With both `active_at` and `device_id`: the windows that suppress that device's alerts then."""
    if device_id is not None:
        await devices.get(ctx.db, tenant_id, device_id)
    items, total = await store.list_windows(ctx.db, tenant_id, enabled=enabled, active_at=active_at,
                                            device_id=device_id, limit=limit, offset=offset)
    at = active_at or utcnow()
    return [_view(w, at) for w in items], total


async def create(ctx: ServiceContext, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return _view(await store.create(ctx.db, tenant_id, fields), utcnow())


async def update(ctx: ServiceContext, tenant_id: str, window_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return _view(await store.update(ctx.db, tenant_id, window_id, fields), utcnow())


async def delete(ctx: ServiceContext, tenant_id: str, window_id: str) -> None:
    await store.delete(ctx.db, tenant_id, window_id)
