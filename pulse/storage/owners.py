"""Device owners: a tenant's end customers (kept by e-mail) and which devices each one owns.

`replace_owners` sets a device's owners in one transaction; a transfer is a replace with another
set. The caller's `on_change` runs in that transaction with what changed: the owners service
passes `pulse.storage.telemetron.owners_changed`, so an owner change and its Telemetron outbox
rows commit together (the Telemetron store builds on owners, never the other way round).
A customer's profile is shared by all the devices they own: a replace updates the fields it
gives (name always; phone and address when sent) and leaves the others as stored.
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.errors import Conflict, NotFound
from pulse.storage.db import Database, utcnow
from pulse.storage.tables import device_owners, devices, end_customers

PROFILE = ("name", "phone", "address")
# (conn, tenant_id, device_id, customers to sync, e-mails removed, e-mails added), in the replace's transaction
OwnersChanged = Callable[[AsyncConnection, str, str, list[dict[str, Any]], list[str], list[str]], Awaitable[Any]]


async def owners_by_device(conn: AsyncConnection, tenant_id: str,
                           device_ids: Iterable[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """device_id -> its owners (customer fields plus `since`) in the order last given; owned devices only."""
    q = (sa.select(device_owners.c.device_id, device_owners.c.created_at.label("since"), end_customers)
         .join(end_customers, sa.and_(end_customers.c.tenant_id == device_owners.c.tenant_id,
                                      end_customers.c.customer_id == device_owners.c.customer_id))
         .where(device_owners.c.tenant_id == tenant_id)
         .order_by(device_owners.c.device_id, device_owners.c.position, end_customers.c.email))
    if device_ids is not None:
        q = q.where(device_owners.c.device_id.in_(list(device_ids)))
    out: dict[str, list[dict[str, Any]]] = {}
    for row in await conn.execute(q):
        d = dict(row._mapping)
        d.pop("tenant_id", None)
        out.setdefault(d.pop("device_id"), []).append(d)
    return out


async def _device_exists(conn: AsyncConnection, tenant_id: str, device_id: str) -> None:
    found = (await conn.execute(sa.select(devices.c.device_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if found is None:
        raise NotFound(f"device {device_id} not found")


async def list_owners(db: Database, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        await _device_exists(conn, tenant_id, device_id)
        return (await owners_by_device(conn, tenant_id, [device_id])).get(device_id, [])


async def _upsert_customer(conn: AsyncConnection, tenant_id: str, owner: dict[str, Any],
                           now: datetime) -> tuple[dict[str, Any], bool]:
    """(the customer row, whether it was created or its profile changed)."""
    row = (await conn.execute(sa.select(end_customers).where(
        end_customers.c.tenant_id == tenant_id, end_customers.c.email == owner["email"]))).first()
    if row is None:
        values = {"tenant_id": tenant_id, "customer_id": str(uuid.uuid4()), "email": owner["email"],
                  "name": owner["name"], "phone": owner.get("phone"), "address": owner.get("address"),
                  "created_at": now, "updated_at": now}
        await conn.execute(end_customers.insert().values(**values))
        return values, True
    current = dict(row._mapping)
    changes = {k: owner[k] for k in PROFILE if k in owner and owner[k] != current[k]}
    if changes:
        await conn.execute(end_customers.update().where(
            end_customers.c.tenant_id == tenant_id, end_customers.c.customer_id == current["customer_id"])
            .values(updated_at=now, **changes))
        current.update(changes, updated_at=now)
    return current, bool(changes)


async def replace_owners(db: Database, tenant_id: str, device_id: str, owners: list[dict[str, Any]],
                         on_change: OwnersChanged) -> list[dict[str, Any]]:
    """Make `owners` (validated: unique lower-case e-mails, at most MAX_OWNERS) the device's owners."""
    try:
        await _replace(db, tenant_id, device_id, owners, on_change)
    except sa.exc.IntegrityError:  # a concurrent replace created one of these customers first
        raise Conflict("the owners of this device or their customers changed concurrently; try again") from None
    return await list_owners(db, tenant_id, device_id)


async def _replace(db: Database, tenant_id: str, device_id: str, owners: list[dict[str, Any]],
                   on_change: OwnersChanged) -> None:
    now = utcnow()
    async with db.begin() as conn:
        # Touching the device row first takes its lock: owner and device changes of one device
        # commit one after the other, so their outbox rows are in id order.
        res = await conn.execute(devices.update().where(
            devices.c.tenant_id == tenant_id, devices.c.device_id == device_id).values(updated_at=now))
        if res.rowcount == 0:
            raise NotFound(f"device {device_id} not found")
        before = {c["email"]: c for c in (await owners_by_device(conn, tenant_id, [device_id])).get(device_id, [])}
        customers, changed = [], []
        for owner in owners:
            customer, was_changed = await _upsert_customer(conn, tenant_id, owner, now)
            customers.append(customer)
            if was_changed:
                changed.append(customer)
        await _store_links(conn, tenant_id, device_id, before, customers, now)
        added = [c for c in customers if c["email"] not in before]
        kept = {c["email"] for c in customers}
        removed = [email for email in before if email not in kept]
        sync_ids = {c["customer_id"] for c in changed + added}
        await on_change(conn, tenant_id, device_id, [c for c in customers if c["customer_id"] in sync_ids],
                        removed, [c["email"] for c in added])


async def _store_links(conn: AsyncConnection, tenant_id: str, device_id: str, before: dict[str, dict[str, Any]],
                       customers: list[dict[str, Any]], now: datetime) -> None:
    """Diff, not rewrite, so a kept owner keeps its `since`."""
    wanted = {c["customer_id"] for c in customers}
    gone = [c["customer_id"] for c in before.values() if c["customer_id"] not in wanted]
    if gone:
        await conn.execute(device_owners.delete().where(
            device_owners.c.tenant_id == tenant_id, device_owners.c.device_id == device_id,
            device_owners.c.customer_id.in_(gone)))
    for position, c in enumerate(customers):
        if c["email"] in before:
            await conn.execute(device_owners.update().where(
                device_owners.c.tenant_id == tenant_id, device_owners.c.device_id == device_id,
                device_owners.c.customer_id == c["customer_id"]).values(position=position))
        else:
            await conn.execute(device_owners.insert().values(tenant_id=tenant_id, device_id=device_id,
                                                             customer_id=c["customer_id"], position=position,
                                                             created_at=now))


async def release(conn: AsyncConnection, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    """End every ownership of a device (decommissioned or deleted); returns the former owners."""
    former = (await owners_by_device(conn, tenant_id, [device_id])).get(device_id, [])
    if former:
        await conn.execute(device_owners.delete().where(
            device_owners.c.tenant_id == tenant_id, device_owners.c.device_id == device_id))
    return former


async def first_owner(db: Database, tenant_id: str, device_id: str) -> dict[str, Any] | None:
    """The device's first owner (by the order last given), or None."""
    async with db.connect() as conn:
        owners = (await owners_by_device(conn, tenant_id, [device_id])).get(device_id, [])
    return owners[0] if owners else None
