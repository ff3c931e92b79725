"""On-call schedules, layers, overrides and who is on call.

Changing a schedule needs nothing but the store (pulse.storage.oncall keeps its invariants), so
those use cases are the store's functions, exported here for the routes; the views add their
default period (now; a timeline of DEFAULT_TIMELINE). The rotation maths is pulse.domain.oncall.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pulse.storage import oncall as store
from pulse.storage.db import Database, utcnow
from pulse.storage.oncall import (MAX_LAYERS, add_layer, create_override, delete_layer, delete_override,
                                  delete_schedule, get_schedule, list_overrides, list_schedules, update_layer,
                                  update_schedule)

__all__ = ["current", "timeline", "list_schedules", "create_schedule", "get_schedule", "update_schedule",
           "delete_schedule", "add_layer", "update_layer", "delete_layer", "list_overrides", "create_override",
           "delete_override", "MAX_LAYERS"]

DEFAULT_TIMELINE = timedelta(days=14)


async def create_schedule(db: Database, tenant_id: str, fields: dict[str, Any],
                          layers: list[dict[str, Any]] = ()) -> dict[str, Any]:
    """A schedule and (as the documented API allows) its layers; if a layer is refused, the
    schedule is removed again, so a refused request leaves nothing behind."""
    schedule = await store.create_schedule(db, tenant_id, fields)
    try:
        for layer in layers:
            await add_layer(db, tenant_id, schedule["schedule_id"], layer)
    except Exception:
        await delete_schedule(db, tenant_id, schedule["schedule_id"])
        raise
    return await get_schedule(db, tenant_id, schedule["schedule_id"]) if layers else schedule


async def current(db: Database, tenant_id: str, schedule_id: str, at: datetime | None) -> dict[str, Any]:
    """Who is on call at `at` (default: now): `on_call` / `responders` (final), and each layer's own rotation."""
    return await store.current(db, tenant_id, schedule_id, at or utcnow())


async def timeline(db: Database, tenant_id: str, schedule_id: str, start: datetime | None,
                   end: datetime | None, length: timedelta = DEFAULT_TIMELINE) -> dict[str, Any]:
    """Shifts per layer and the final timeline over [start, end) (default: now, for `length`)."""
    start = start or utcnow()
    return await store.timeline(db, tenant_id, schedule_id, start, end or start + length)
