"""The Telemetron integration of a tenant: configure it, resync it, and see how its sync is doing.

docs/telemetron.md. Delivery itself is `pulse.services.telemetron_sync` (the `telemetron-sync`
service actor); a resync asks that actor through the Runtime port so its drain starts at once."""
from __future__ import annotations

from typing import Any

from pulse.config.settings import Settings
from pulse.errors import Conflict
from pulse.services.ports import Runtime
from pulse.storage import telemetron as store
from pulse.storage.db import Database
from pulse.storage.secrets import box_for

SYNC_SERVICE = "telemetron-sync"


async def get_integration(settings: Settings, db: Database, tenant_id: str) -> dict[str, Any]:
    """404 until configured; the API key reads back masked."""
    return await store.get_integration(db, box_for(settings), tenant_id)


async def put_integration(settings: Settings, db: Database, tenant_id: str,
                          fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or update -> (integration, created). Creating queues every owned device for the first sync."""
    return await store.put_integration(db, box_for(settings), tenant_id, fields)


async def delete_integration(db: Database, tenant_id: str) -> None:
    """Removes the integration, its undelivered changes and the customer-id map; owners stay."""
    await store.delete_integration(db, tenant_id)


async def resync(settings: Settings, db: Database, runtime: Runtime, tenant_id: str) -> int:
    """Queue every owned device again and start a drain; returns the rows queued (409 when disabled)."""
    integration = await store.get_integration(db, box_for(settings), tenant_id)
    if not integration["enabled"]:
        raise Conflict("the Telemetron integration is disabled: enable it before syncing")
    return await runtime.service_call(SYNC_SERVICE, "resync", tenant_id)


async def status(db: Database, tenant_id: str) -> dict[str, Any]:
    """Last clean sync, last error, and the outbox: pending, failed (with the latest failures), delivered."""
    return await store.status(db, tenant_id)
