"""Device owners: a device's end customers, read and replaced (docs/telemetron.md, "Device owners").

A replace commits together with the Telemetron outbox rows it implies: the owners store runs
`pulse.storage.telemetron.owners_changed` inside its transaction, so the sync never misses an
owner change nor sends one that was rolled back."""
from __future__ import annotations

from typing import Any

from pulse.storage import owners as store
from pulse.storage import telemetron
from pulse.storage.db import Database


async def list_owners(db: Database, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    """The device's owners in the order last given, each with `since`; 404 for an unknown device."""
    return await store.list_owners(db, tenant_id, device_id)


async def replace_owners(db: Database, tenant_id: str, device_id: str,
                         owners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Make `owners` the device's owners (a transfer is a replace with the new owner); returns them.
    Phone and address left out of an owner keep what is stored for that e-mail."""
    return await store.replace_owners(db, tenant_id, device_id, owners, on_change=telemetron.owners_changed)
