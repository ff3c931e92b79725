"""Device actor snapshots and the registry facts a device shard needs at activation."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pulse.storage import sensors
from pulse.storage.db import Database, upsert, utcnow
from pulse.storage.tables import device_state, devices

Key = tuple[str, str]


async def load_many(db: Database, keys: list[Key]) -> dict[Key, tuple[str, dict[str, Any] | None]]:
    """(tenant, device) -> (registry status, snapshot or None), for registered devices only."""
    if not keys:
        return {}
    out: dict[Key, tuple[str, dict[str, Any] | None]] = {}
    async with db.connect() as conn:
        for chunk in _chunks(keys, 400):
            cond = sa.tuple_(devices.c.tenant_id, devices.c.device_id).in_(chunk)
            q = (
                sa.select(devices.c.tenant_id, devices.c.device_id, devices.c.status, device_state.c.state)
                .select_from(devices.outerjoin(
                    device_state,
                    sa.and_(device_state.c.tenant_id == devices.c.tenant_id,
                            device_state.c.device_id == devices.c.device_id),
                ))
                .where(cond)
            )
            for r in await conn.execute(q):
                out[(r.tenant_id, r.device_id)] = (r.status, r.state)
    return out


async def save_many(db: Database, snapshots: dict[Key, dict[str, Any]],
                    sensor_values: dict[Key, dict[str, tuple[float, int]]] | None = None) -> None:
    """One transaction for a whole batch of dirty actors (write-behind), with the sensors' last
    values that changed since the previous one."""
    if not snapshots:
        return
    now = utcnow()
    rows = [{"tenant_id": t, "device_id": d, "state": s, "updated_at": now} for (t, d), s in snapshots.items()]
    async with db.begin() as conn:
        # skip snapshots of devices deleted meanwhile: they would resurrect orphan state
        existing = set()
        for chunk in _chunks(list(snapshots), 400):
            res = await conn.execute(
                sa.select(devices.c.tenant_id, devices.c.device_id).where(
                    sa.tuple_(devices.c.tenant_id, devices.c.device_id).in_(chunk)
                )
            )
            existing.update((r.tenant_id, r.device_id) for r in res)
        await upsert(conn, device_state, [r for r in rows if (r["tenant_id"], r["device_id"]) in existing],
                     ["tenant_id", "device_id"])
        await sensors.record_last_values(conn, {k: v for k, v in (sensor_values or {}).items() if k in existing})


async def delete(db: Database, tenant_id: str, device_id: str) -> None:
    async with db.begin() as conn:
        await conn.execute(
            device_state.delete().where(device_state.c.tenant_id == tenant_id, device_state.c.device_id == device_id)
        )


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i : i + n]
