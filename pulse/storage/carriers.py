"""Carrier integrations, device links, usage history, carrier requests, callbacks and audit (docs/carriers.md).

Credentials are split on the way in: `SECRET_FIELDS` (and the generated callback credentials) go
into one Fernet token (pulse.storage.secrets), everything else into plain columns. Reads return
`api_key_masked` only; `integration_for_use` is the one place that decrypts, for building a
provider. Functions taking `tenant_id=None` are the operator's cross-tenant variants; with a
tenant, another tenant's rows are simply not found (404).
"""
from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.carriers import PENDING, SECRET_FIELDS
from pulse.domain.masking import mask
from pulse.errors import Conflict, Invalid, NotFound
from pulse.storage.db import Database, page_rows, utcnow, where_given
from pulse.storage.secrets import SecretBox, SecretsUnreadable
from pulse.storage.tables import carrier_audit_log as audit_log
from pulse.storage.tables import carrier_callbacks as callbacks
from pulse.storage.tables import carrier_integrations as integrations
from pulse.storage.tables import carrier_links as links
from pulse.storage.tables import carrier_requests as requests
from pulse.storage.tables import carrier_usage_snapshots as snapshots
from pulse.storage.tables import devices, tenants

PLAIN_FIELDS = ("display_name", "enabled", "sync_enabled", "sync_interval_minutes", "api_base_url", "account_id",
                "config")
LINK_STATE_FIELDS = ("iccid", "sim_status", "network_status", "network_type", "ip_address", "signal_strength",
                     "msisdn", "plan", "last_connection")
LINK_USAGE_FIELDS = ("data_used_bytes", "data_limit_bytes", "sms_count", "billing_cycle_start", "billing_cycle_end")
SNAPSHOT_RETENTION = timedelta(days=400)  # a year of charts plus a billing cycle


# ---- integrations ------------------------------------------------------------------------------
def _stored_secrets(box: SecretBox, token: str | None) -> dict[str, Any]:
    try:
        return box.decrypt(token)
    except SecretsUnreadable:
        return {}  # the key was lost: reads show nothing set, every secret has to be sent again


def _public(box: SecretBox, row: Any, with_tenant: bool) -> dict[str, Any]:
    d = dict(row._mapping)
    stored = _stored_secrets(box, d.pop("secrets"))
    d["id"] = d.pop("integration_id")
    d["api_key_masked"] = mask(stored["api_key"]) if stored.get("api_key") else None
    d["secrets_set"] = [k for k in SECRET_FIELDS if stored.get(k)]
    if not with_tenant:
        d.pop("tenant_id")
    return d


def _scoped(q: Any, integration_id: int, tenant_id: str | None) -> Any:
    q = q.where(integrations.c.integration_id == integration_id)
    return q.where(integrations.c.tenant_id == tenant_id) if tenant_id is not None else q


async def _integration_row(conn: AsyncConnection, integration_id: int, tenant_id: str | None) -> Any:
    row = (await conn.execute(_scoped(sa.select(integrations), integration_id, tenant_id))).first()
    if row is None:
        raise NotFound(f"carrier integration {integration_id} not found")
    return row


async def _linked_counts(conn: AsyncConnection, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await conn.execute(sa.select(links.c.integration_id, sa.func.count()).where(
        links.c.integration_id.in_(ids)).group_by(links.c.integration_id))
    return {i: n for i, n in rows}


async def list_integrations(db: Database, box: SecretBox, *, tenant_id: str | None, limit: int, offset: int,
                            carrier_name: str | None = None, enabled: bool | None = None,
                            with_tenant: bool = False) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(integrations)
    if tenant_id is not None:
        q = q.where(integrations.c.tenant_id == tenant_id)
    q = where_given(q, integrations, carrier_name=carrier_name, enabled=enabled)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [integrations.c.tenant_id, integrations.c.integration_id], limit,
                                      offset)
        linked = await _linked_counts(conn, [r.integration_id for r in rows])
    items = [_public(box, r, with_tenant) | {"linked_devices": linked.get(r.integration_id, 0)} for r in rows]
    return items, total


async def get_integration(db: Database, box: SecretBox, integration_id: int, tenant_id: str | None = None,
                          with_tenant: bool = False) -> dict[str, Any]:
    async with db.connect() as conn:
        row = await _integration_row(conn, integration_id, tenant_id)
        linked = await _linked_counts(conn, [integration_id])
    return _public(box, row, with_tenant) | {"linked_devices": linked.get(integration_id, 0)}


async def integration_for_use(db: Database, box: SecretBox, integration_id: int,
                              tenant_id: str | None = None) -> dict[str, Any]:
    """The integration with its secrets decrypted (under "secrets"): to build a provider, never a response."""
    async with db.connect() as conn:
        row = await _integration_row(conn, integration_id, tenant_id)
    d = dict(row._mapping)
    try:
        d["secrets"] = box.decrypt(d["secrets"])
    except SecretsUnreadable:
        raise Conflict(f"the credentials of carrier integration {integration_id} do not decrypt with the "
                       "configured secrets_key: send them again with PUT") from None
    return d


async def _require_tenant(conn: AsyncConnection, tenant_id: str) -> None:
    if (await conn.execute(sa.select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id))).first() is None:
        raise NotFound(f"tenant {tenant_id} not found")


def _duplicate(carrier_name: str) -> Conflict:
    return Conflict(f"this tenant already has a {carrier_name} integration (one per carrier): update it instead")


async def create_integration(db: Database, box: SecretBox, tenant_id: str, fields: dict[str, Any],
                             with_tenant: bool = False) -> dict[str, Any]:
    """`fields`: carrier_name, api_base_url and the optional plain and secret fields (validated at the edge)."""
    now = utcnow()
    sealed = {k: fields[k] for k in SECRET_FIELDS if fields.get(k)}
    sealed |= {"callback_username": f"pulse-{pysecrets.token_hex(6)}", "callback_password": pysecrets.token_urlsafe(24)}
    values = {k: fields[k] for k in PLAIN_FIELDS if fields.get(k) is not None}
    values.setdefault("display_name", fields["carrier_name"])
    values.setdefault("config", {})
    async with db.begin() as conn:
        await _require_tenant(conn, tenant_id)
        try:
            result = await conn.execute(integrations.insert().values(
                tenant_id=tenant_id, carrier_name=fields["carrier_name"], secrets=box.encrypt(sealed),
                created_at=now, updated_at=now, **values))
        except sa.exc.IntegrityError:
            raise _duplicate(fields["carrier_name"]) from None
        integration_id = result.inserted_primary_key[0]
    return await get_integration(db, box, integration_id, with_tenant=with_tenant)


def _changes(row: Any, values: dict[str, Any], secret_updates: dict[str, str]) -> dict[str, Any]:
    """What an update changed, for the audit log: plain fields from/to, secrets only by name."""
    out: dict[str, Any] = {k: {"from": getattr(row, k), "to": v} for k, v in values.items() if getattr(row, k) != v}
    out |= {k: "changed" if v else "cleared" for k, v in secret_updates.items()}
    return out


async def update_integration(db: Database, box: SecretBox, integration_id: int, tenant_id: str | None,
                             fields: dict[str, Any], with_tenant: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """A partial update -> (integration, changes). A secret left out or sent masked stays; "" clears it."""
    async with db.begin() as conn:
        row = await _integration_row(conn, integration_id, tenant_id)
        if fields.get("carrier_name") not in (None, row.carrier_name):
            raise Invalid("carrier_name cannot change: create an integration for the other carrier")
        values = {k: fields[k] for k in PLAIN_FIELDS if k in fields and fields[k] is not None}
        stored = _stored_secrets(box, row.secrets)
        secret_updates = {k: fields[k] for k in SECRET_FIELDS
                          if isinstance(fields.get(k), str) and not fields[k].startswith("***")
                          and fields[k] != stored.get(k, "")}
        changes = _changes(row, values, secret_updates)
        if secret_updates:
            merged = {k: v for k, v in (stored | secret_updates).items() if v}
            values["secrets"] = box.encrypt(merged)
        if values:
            await conn.execute(integrations.update().where(integrations.c.integration_id == integration_id)
                               .values(updated_at=utcnow(), **values))
    return await get_integration(db, box, integration_id, with_tenant=with_tenant), changes


async def delete_integration(db: Database, integration_id: int, tenant_id: str | None = None) -> dict[str, Any]:
    """Deletes it and unlinks its devices (their links, usage history and requests go with it).

    -> {"tenant_id", "carrier_name", "unlinked_devices": [device ids]} for the audit log."""
    async with db.begin() as conn:
        row = await _integration_row(conn, integration_id, tenant_id)
        unlinked = [r.device_id for r in await conn.execute(
            sa.select(links.c.device_id).where(links.c.integration_id == integration_id).order_by(links.c.device_id))]
        # explicit, not only the FK cascade: snapshots hang off links, and SQLite needs foreign_keys on
        if unlinked:
            await conn.execute(snapshots.delete().where(snapshots.c.tenant_id == row.tenant_id,
                                                        snapshots.c.device_id.in_(unlinked)))
        await conn.execute(links.delete().where(links.c.integration_id == integration_id))
        await conn.execute(requests.delete().where(requests.c.integration_id == integration_id))
        await conn.execute(integrations.delete().where(integrations.c.integration_id == integration_id))
    return {"tenant_id": row.tenant_id, "carrier_name": row.carrier_name, "unlinked_devices": unlinked}


async def set_callback(db: Database, integration_id: int, url: str | None, error: str | None) -> None:
    async with db.begin() as conn:
        await conn.execute(integrations.update().where(integrations.c.integration_id == integration_id)
                           .values(callback_url=url, callback_error=error))


async def due_integrations(db: Database, now: datetime, limit: int = 100) -> list[int]:
    """Enabled, sync-enabled integrations whose interval has passed since the last sync (never synced first),
    or that got a line linked since their last sync (its usage should not wait a whole interval)."""
    i = integrations.c
    newly_linked = sa.exists().where(links.c.integration_id == i.integration_id, links.c.linked_at > i.last_sync_at)
    q = (sa.select(i.integration_id, i.last_sync_at, i.sync_interval_minutes, newly_linked.label("newly_linked"))
         .where(i.enabled == sa.true(), i.sync_enabled == sa.true())
         .order_by(i.last_sync_at.is_not(None), i.last_sync_at, i.integration_id))
    async with db.connect() as conn:
        rows = (await conn.execute(q)).all()
    due = [r.integration_id for r in rows if r.last_sync_at is None or r.newly_linked
           or r.last_sync_at + timedelta(minutes=r.sync_interval_minutes) <= now]
    return due[:limit]


async def record_sync(db: Database, integration_id: int, status: str, error: str | None, at: datetime) -> None:
    async with db.begin() as conn:
        await conn.execute(integrations.update().where(integrations.c.integration_id == integration_id)
                           .values(last_sync_at=at, last_sync_status=status, last_sync_error=error))


# ---- links -------------------------------------------------------------------------------------
def _public_link(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    return d


async def get_link(db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(links).where(links.c.tenant_id == tenant_id,
                                                         links.c.device_id == device_id))).first()
        if row is None:
            await _require_device(conn, tenant_id, device_id)
            raise NotFound(f"device {device_id} is not linked to a carrier line")
    return _public_link(row)


async def links_of(db: Database, integration_id: int) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(links).where(links.c.integration_id == integration_id)
                                  .order_by(links.c.device_id))
        return [dict(r._mapping) for r in rows]


async def _require_device(conn: AsyncConnection, tenant_id: str, device_id: str) -> None:
    row = (await conn.execute(sa.select(devices.c.device_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if row is None:
        raise NotFound(f"device {device_id} not found")


async def require_device(db: Database, tenant_id: str, device_id: str) -> None:
    async with db.connect() as conn:
        await _require_device(conn, tenant_id, device_id)


async def link_device(db: Database, tenant_id: str, device_id: str, integration_id: int, carrier_device_id: str,
                      state: dict[str, Any]) -> dict[str, Any]:
    """Link (or re-link) a device to a line; `state`: LINK_STATE_FIELDS known now. 409 if another device has the line.

    Re-linking to another line drops the old line's usage history (it described another SIM)."""
    now = utcnow()
    values = {k: state.get(k) for k in LINK_STATE_FIELDS} | {
        "integration_id": integration_id, "carrier_device_id": carrier_device_id, "updated_at": now,
        "last_synced_at": now if state.get("sim_status") else None, "last_sync_error": None}
    async with db.begin() as conn:
        await _require_device(conn, tenant_id, device_id)
        other = (await conn.execute(sa.select(links.c.device_id).where(
            links.c.integration_id == integration_id, links.c.carrier_device_id == carrier_device_id,
            links.c.device_id != device_id))).first()
        if other is not None:
            raise Conflict(f"carrier line {carrier_device_id} is already linked to device {other.device_id}")
        old = (await conn.execute(sa.select(links).where(links.c.tenant_id == tenant_id,
                                                         links.c.device_id == device_id))).first()
        if old is None:
            await conn.execute(links.insert().values(tenant_id=tenant_id, device_id=device_id, linked_at=now, **values))
        else:
            if (old.integration_id, old.carrier_device_id) != (integration_id, carrier_device_id):
                await conn.execute(snapshots.delete().where(snapshots.c.tenant_id == tenant_id,
                                                            snapshots.c.device_id == device_id))
                values |= {k: None for k in LINK_USAGE_FIELDS} | {"usage_alert_active": False, "linked_at": now}
            await conn.execute(links.update().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id)
                               .values(**values))
    return await get_link(db, tenant_id, device_id)


async def unlink_device(db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    """Remove a device's link (and its usage history) -> the link as it was."""
    link = await get_link(db, tenant_id, device_id)
    async with db.begin() as conn:
        await conn.execute(snapshots.delete().where(snapshots.c.tenant_id == tenant_id,
                                                    snapshots.c.device_id == device_id))
        await conn.execute(links.delete().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id))
    return link


async def update_link_state(db: Database, tenant_id: str, device_id: str, state: dict[str, Any],
                            at: datetime | None = None) -> None:
    """Store what the carrier said about the line (only the keys given); a no-op for an unlinked device."""
    values = {k: v for k, v in state.items() if k in LINK_STATE_FIELDS}
    at = at or utcnow()
    async with db.begin() as conn:
        await conn.execute(links.update().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id)
                           .values(updated_at=at, last_synced_at=at, last_sync_error=None, **values))


async def record_link_error(db: Database, tenant_id: str, device_id: str, error: str) -> None:
    async with db.begin() as conn:
        await conn.execute(links.update().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id)
                           .values(last_sync_error=error[:2000], updated_at=utcnow()))


async def record_usage(db: Database, tenant_id: str, device_id: str, usage: dict[str, Any],
                       alert_active: bool | None, at: datetime) -> None:
    """The line's latest usage (LINK_USAGE_FIELDS) plus one snapshot for the chart; `alert_active` is
    the data-usage alert state after this reading (None: unchanged)."""
    values = {k: usage.get(k) for k in LINK_USAGE_FIELDS}
    if alert_active is not None:
        values["usage_alert_active"] = alert_active
    async with db.begin() as conn:
        done = await conn.execute(links.update().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id)
                                  .values(updated_at=at, **values))
        if done.rowcount:
            await conn.execute(snapshots.insert().values(
                tenant_id=tenant_id, device_id=device_id, taken_at=at, data_used_bytes=usage["data_used_bytes"],
                data_limit_bytes=usage.get("data_limit_bytes"), sms_count=usage.get("sms_count")))


async def set_usage_alert(db: Database, tenant_id: str, device_id: str, active: bool) -> None:
    """Whether the line's data-usage alert is open (set once the tenant actor has the event)."""
    async with db.begin() as conn:
        await conn.execute(links.update().where(links.c.tenant_id == tenant_id, links.c.device_id == device_id)
                           .values(usage_alert_active=active))


async def usage_history(db: Database, tenant_id: str, device_id: str, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` snapshots, oldest first (chart order)."""
    q = (sa.select(snapshots.c.taken_at, snapshots.c.data_used_bytes, snapshots.c.data_limit_bytes,
                   snapshots.c.sms_count)
         .where(snapshots.c.tenant_id == tenant_id, snapshots.c.device_id == device_id)
         .order_by(snapshots.c.taken_at.desc(), snapshots.c.id.desc()).limit(limit))
    async with db.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(q)]
    return rows[::-1]


async def prune_snapshots(db: Database, now: datetime) -> int:
    async with db.begin() as conn:
        res = await conn.execute(snapshots.delete().where(snapshots.c.taken_at < now - SNAPSHOT_RETENTION))
        return res.rowcount or 0


# ---- requests ----------------------------------------------------------------------------------
def _public_request(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    return d


async def add_request(db: Database, *, tenant_id: str, integration_id: int, device_id: str, carrier_device_id: str,
                      action: str, request_id: str | None, state: str, detail: str | None,
                      requested_by: str | None) -> dict[str, Any]:
    now = utcnow()
    values = dict(tenant_id=tenant_id, integration_id=integration_id, device_id=device_id,
                  carrier_device_id=carrier_device_id, action=action, request_id=request_id, state=state,
                  detail=detail, requested_by=requested_by, created_at=now,
                  completed_at=None if state == PENDING else now)
    async with db.begin() as conn:
        try:
            result = await conn.execute(requests.insert().values(**values))
        except sa.exc.IntegrityError:
            raise Conflict(f"carrier request {request_id} is already recorded") from None
        row = (await conn.execute(sa.select(requests).where(requests.c.id == result.inserted_primary_key[0]))).one()
    return _public_request(row)


async def recent_requests(db: Database, tenant_id: str, device_id: str, limit: int = 10) -> list[dict[str, Any]]:
    q = (sa.select(requests).where(requests.c.tenant_id == tenant_id, requests.c.device_id == device_id)
         .order_by(requests.c.created_at.desc(), requests.c.id.desc()).limit(limit))
    async with db.connect() as conn:
        return [_public_request(r) for r in await conn.execute(q)]


async def pending_requests(db: Database, limit: int = 500) -> list[dict[str, Any]]:
    q = (sa.select(requests).where(requests.c.state == PENDING, requests.c.request_id.is_not(None))
         .order_by(requests.c.created_at, requests.c.id).limit(limit))
    async with db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]


async def settle_request(db: Database, integration_id: int, request_id: str, state: str,
                         detail: str | None) -> dict[str, Any] | None:
    """pending -> succeeded|failed, once: the row when this call settled it, None when it was unknown
    or already settled (a callback retry, or the poller and a callback racing)."""
    async with db.begin() as conn:
        done = await conn.execute(requests.update().where(
            requests.c.integration_id == integration_id, requests.c.request_id == request_id,
            requests.c.state == PENDING).values(state=state, detail=detail, completed_at=utcnow()))
        if not done.rowcount:
            return None
        row = (await conn.execute(sa.select(requests).where(requests.c.integration_id == integration_id,
                                                            requests.c.request_id == request_id))).one()
    return dict(row._mapping)


async def find_request(db: Database, integration_id: int, request_id: str) -> dict[str, Any] | None:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(requests).where(requests.c.integration_id == integration_id,
                                                            requests.c.request_id == request_id))).first()
    return dict(row._mapping) if row else None


# ---- callbacks, audit --------------------------------------------------------------------------
async def record_callback(db: Database, *, integration_id: int | None, tenant_id: str | None, outcome: str,
                          kind: str | None = None, request_id: str | None = None, detail: str | None = None,
                          remote_ip: str | None = None, body: Any = None) -> None:
    async with db.begin() as conn:
        await conn.execute(callbacks.insert().values(
            integration_id=integration_id, tenant_id=tenant_id, received_at=utcnow(), outcome=outcome, kind=kind,
            request_id=(request_id or None) and request_id[:128], detail=(detail or None) and detail[:2000],
            remote_ip=remote_ip, body=body))


async def record_audit(db: Database, *, tenant_id: str, user_id: str, role: str, action: str,
                       changes: dict[str, Any], integration_id: int | None = None,
                       device_id: str | None = None) -> None:
    async with db.begin() as conn:
        await conn.execute(audit_log.insert().values(
            at=utcnow(), tenant_id=tenant_id, integration_id=integration_id, device_id=device_id,
            user_id=user_id, role=role, action=action, changes=changes))


async def audit_entries(db: Database, tenant_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if tenant_id is not None:
        q = q.where(audit_log.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q)]
