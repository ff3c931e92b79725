"""Alert digest settings: the defaults until stored; a change is merged into the current settings
and checked as a whole. The digests themselves are sent by the Notifier (`send_digests`)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulse.storage import digest as store
from pulse.storage.db import Database
from pulse.storage.digest import get_settings

__all__ = ["get_settings", "put_settings"]


async def put_settings(db: Database, tenant_id: str, changes: dict[str, Any],
                       check: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """`check` validates the merged settings as a whole (the HTTP layer's model) and returns what to store."""
    merged = {**store.document(await store.get_settings(db, tenant_id)), **changes}
    return await store.put_settings(db, tenant_id, check(merged))
