"""Telemetron integration of a tenant, its customer-id map, and the outbox rows its sync delivers.

Outbox rows (topic "telemetron", ordered per device) are written only for tenants with an
integration configured (enabled or not), in the transaction of the change:
- `owners_changed`: upsert_customer for new or changed owners, upsert_device when owners were
  added, unassign per removed owner, then one assign of the added owners (a transfer = unassign
  the old, assign the new, in that order);
- `device_changed`: upsert_device (full properties) when an owned device's fields change;
- `device_retired`: a decommissioned device is upserted once more (status REVOKED) and every
  owner unassigned; a deleted one is only unassigned; ownership ends in Pulse either way;
- `enqueue_snapshot`: every owned device as customers + device + assign (resync, and when the
  integration is first configured, so owners set before that are not left out).
A disabled integration keeps collecting rows; the sync skips it until it is enabled again.
Removing the integration drops its pending rows and the customer-id map.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.masking import is_masked, mask
from pulse.domain.telemetron import (DEFAULT_BASE_URL, TOPIC, UPSERT_CUSTOMER, UPSERT_DEVICE, assign,
                                     customer_payload, device_payload, unassign)
from pulse.errors import Invalid, NotFound
from pulse.storage import outbox, owners
from pulse.storage.db import Database, upsert, utcnow
from pulse.storage.secrets import SecretBox, SecretsUnreadable
from pulse.storage.tables import devices, end_customers, telemetron_customers, telemetron_integrations

_integrations = telemetron_integrations


# ---- outbox rows (payloads: pulse.domain.telemetron) ---------------------------------------------
async def configured(conn: AsyncConnection, tenant_id: str) -> bool:
    found = await conn.execute(sa.select(_integrations.c.tenant_id).where(_integrations.c.tenant_id == tenant_id))
    return found.first() is not None


async def _device(conn: AsyncConnection, tenant_id: str, device_id: str) -> dict[str, Any]:
    row = (await conn.execute(sa.select(devices).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if row is None:
        raise NotFound(f"device {device_id} not found")
    return dict(row._mapping)


async def owners_changed(conn: AsyncConnection, tenant_id: str, device_id: str, customers: list[Mapping[str, Any]],
                         removed: list[str], added: list[str]) -> int:
    """Rows for one owner replace: `customers` to upsert, e-mails `removed` and `added`."""
    if not (customers or removed or added) or not await configured(conn, tenant_id):
        return 0
    ops = [(UPSERT_CUSTOMER, customer_payload(c)) for c in customers]
    device = await _device(conn, tenant_id, device_id) if added else None
    if device:
        ops.append((UPSERT_DEVICE, device_payload(device)))
    ops += [unassign(device_id, email) for email in removed]
    if device:
        ops.append(assign(device, added))
    return await outbox.enqueue(conn, TOPIC, tenant_id, device_id, ops)


async def device_changed(conn: AsyncConnection, tenant_id: str, device_id: str) -> int:
    """Call after updating the device row, in that transaction."""
    if not await configured(conn, tenant_id):
        return 0
    if not (await owners.owners_by_device(conn, tenant_id, [device_id])).get(device_id):
        return 0
    device = await _device(conn, tenant_id, device_id)
    return await outbox.enqueue(conn, TOPIC, tenant_id, device_id, [(UPSERT_DEVICE, device_payload(device))])


async def device_retired(conn: AsyncConnection, tenant_id: str, device_id: str, deleted: bool) -> int:
    """Call in the transaction that decommissions (after its update) or deletes (before removing the
    device row) a device: ownership ends, and Telemetron is told when an integration is configured."""
    locked = (await conn.execute(sa.select(devices).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id).with_for_update())).first()
    former = await owners.release(conn, tenant_id, device_id)
    if locked is None or not former or not await configured(conn, tenant_id):
        return 0
    ops = [] if deleted else [(UPSERT_DEVICE, device_payload(dict(locked._mapping)))]
    ops += [unassign(device_id, o["email"]) for o in former]
    return await outbox.enqueue(conn, TOPIC, tenant_id, device_id, ops)


async def enqueue_snapshot(conn: AsyncConnection, tenant_id: str) -> int:
    """Every owned device's full state (customers, device, assignment); returns the rows written."""
    owned = await owners.owners_by_device(conn, tenant_id)
    if not owned:
        return 0
    rows = await conn.execute(sa.select(devices).where(devices.c.tenant_id == tenant_id,
                                                       devices.c.device_id.in_(list(owned))))
    written = 0
    for row in rows.all():
        device = dict(row._mapping)
        customers = owned[device["device_id"]]
        ops = [(UPSERT_CUSTOMER, customer_payload(c)) for c in customers]
        ops += [(UPSERT_DEVICE, device_payload(device)), assign(device, [c["email"] for c in customers])]
        written += await outbox.enqueue(conn, TOPIC, tenant_id, device["device_id"], ops)
    return written


async def resync(db: Database, tenant_id: str) -> int:
    async with db.begin() as conn:
        if not await configured(conn, tenant_id):
            raise NotFound("Telemetron integration not configured")
        return await enqueue_snapshot(conn, tenant_id)


# ---- the integration ---------------------------------------------------------------------------
def _public(box: SecretBox, row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    try:
        d["api_key"] = mask(box.decrypt(d.pop("secrets")).get("api_key", ""))
        d["api_key_readable"] = True
    except SecretsUnreadable:
        d["api_key"], d["api_key_readable"] = "***", False  # key rotated out: send the API key again
    return d


async def _row(conn: AsyncConnection, tenant_id: str) -> Any:
    row = (await conn.execute(sa.select(_integrations).where(_integrations.c.tenant_id == tenant_id))).first()
    if row is None:
        raise NotFound("Telemetron integration not configured")
    return row


async def get_integration(db: Database, box: SecretBox, tenant_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return _public(box, await _row(conn, tenant_id))


def _api_key(box: SecretBox, row: Any, given: str | None) -> str:
    """The key to store: the one given, or the stored one when the caller sent none or its mask."""
    if given is not None and not is_masked(given):
        return given
    if row is None:
        raise Invalid("api_key: required when configuring the integration")
    try:
        return box.decrypt(row.secrets)["api_key"]
    except (SecretsUnreadable, KeyError):
        raise Invalid("api_key: the stored key is unreadable; send it again") from None


async def put_integration(db: Database, box: SecretBox, tenant_id: str,
                          fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create or update; returns (integration, created). Creating also enqueues a snapshot of the
    tenant's owned devices, in the same transaction."""
    now = utcnow()
    async with db.begin() as conn:
        row = (await conn.execute(sa.select(_integrations).where(_integrations.c.tenant_id == tenant_id))).first()
        values = {"secrets": box.encrypt({"api_key": _api_key(box, row, fields.get("api_key"))}), "updated_at": now}
        if "enabled" in fields and fields["enabled"] is not None:
            values["enabled"] = fields["enabled"]
        if fields.get("base_url"):
            values["base_url"] = fields["base_url"]
        if row is None:
            values.setdefault("base_url", DEFAULT_BASE_URL)
            await conn.execute(_integrations.insert().values(tenant_id=tenant_id, created_at=now, **values))
            await enqueue_snapshot(conn, tenant_id)
        else:
            await conn.execute(_integrations.update().where(_integrations.c.tenant_id == tenant_id).values(**values))
        return _public(box, await _row(conn, tenant_id)), row is None


async def delete_integration(db: Database, tenant_id: str) -> None:
    async with db.begin() as conn:
        await _row(conn, tenant_id)
        await outbox.discard(conn, TOPIC, tenant_id)
        await conn.execute(telemetron_customers.delete().where(telemetron_customers.c.tenant_id == tenant_id))
        await conn.execute(_integrations.delete().where(_integrations.c.tenant_id == tenant_id))


async def enabled_integrations(db: Database, box: SecretBox, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """Enabled integrations with their API key decrypted (for the sync only, never a response).
    One whose key no longer decrypts comes back with `"api_key": None`."""
    q = sa.select(_integrations).where(_integrations.c.enabled == sa.true())
    if tenant_id is not None:
        q = q.where(_integrations.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows = (await conn.execute(q.order_by(_integrations.c.tenant_id))).all()
    out = []
    for row in rows:
        try:
            key = box.decrypt(row.secrets).get("api_key")
        except SecretsUnreadable:
            key = None
        out.append({"tenant_id": row.tenant_id, "base_url": row.base_url, "api_key": key, "updated_at": row.updated_at})
    return out


async def integration_for_delivery(db: Database, box: SecretBox, tenant_id: str) -> dict[str, Any] | None:
    found = await enabled_integrations(db, box, tenant_id)
    return found[0] if found else None


async def record_drain(db: Database, tenant_id: str, error: str | None, now: datetime) -> None:
    """A drain that had work finished: cleanly (last_sync_at) or held back by `error`."""
    values: dict[str, Any] = ({"last_sync_at": now, "last_error": None} if error is None
                              else {"last_error": error[:2000], "last_error_at": now})
    async with db.begin() as conn:
        await conn.execute(_integrations.update().where(_integrations.c.tenant_id == tenant_id).values(**values))


async def status(db: Database, tenant_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = await _row(conn, tenant_id)
    counts = await outbox.counts(db, TOPIC, tenant_id)
    return {"enabled": row.enabled, "base_url": row.base_url, "last_sync_at": row.last_sync_at,
            "last_error": row.last_error, "last_error_at": row.last_error_at,
            "pending": counts[outbox.PENDING], "failed": counts[outbox.FAILED],
            "delivered": counts[outbox.DELIVERED], "next_retry_at": counts["next_attempt_at"],
            "recent_failures": await outbox.recent_failures(db, TOPIC, tenant_id)}


# ---- our customer <-> Telemetron's customer id ---------------------------------------------------
async def telemetron_customer_id(db: Database, tenant_id: str, customer_id: str) -> str | None:
    async with db.connect() as conn:
        return (await conn.execute(sa.select(telemetron_customers.c.telemetron_customer_id).where(
            telemetron_customers.c.tenant_id == tenant_id,
            telemetron_customers.c.customer_id == customer_id))).scalar_one_or_none()


async def remember_customers(db: Database, tenant_id: str, ids: Mapping[str, str]) -> None:
    """{our customer_id: telemetronCustomerId} (customers deleted meanwhile are skipped)."""
    if not ids:
        return
    now = utcnow()
    async with db.begin() as conn:
        existing = {r.customer_id for r in await conn.execute(sa.select(end_customers.c.customer_id).where(
            end_customers.c.tenant_id == tenant_id, end_customers.c.customer_id.in_(list(ids))))}
        await upsert(conn, telemetron_customers, [
            {"tenant_id": tenant_id, "customer_id": c, "telemetron_customer_id": t, "synced_at": now}
            for c, t in ids.items() if c in existing], ["tenant_id", "customer_id"])


async def forget_customer(db: Database, tenant_id: str, customer_id: str) -> None:
    async with db.begin() as conn:
        await conn.execute(telemetron_customers.delete().where(
            telemetron_customers.c.tenant_id == tenant_id, telemetron_customers.c.customer_id == customer_id))


async def customer_ids_by_email(db: Database, tenant_id: str, emails: list[str]) -> dict[str, str]:
    """e-mail -> our customer_id."""
    if not emails:
        return {}
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(end_customers.c.email, end_customers.c.customer_id).where(
            end_customers.c.tenant_id == tenant_id, end_customers.c.email.in_(emails)))
        return {r.email: r.customer_id for r in rows}


async def ticket_customer(db: Database, tenant_id: str, device_id: str) -> dict[str, Any] | None:
    """Whom a ticket about this device is for: its first owner, with the Telemetron id when synced."""
    owner = await owners.first_owner(db, tenant_id, device_id)
    if owner is None:
        return None
    return {"email": owner["email"], "name": owner["name"],
            "telemetron_customer_id": await telemetron_customer_id(db, tenant_id, owner["customer_id"])}
