"""The device registry and device tokens: the store, the device actors and the broker's credentials kept in step.

Every change that decides whether a device may connect or send (create, status, decommission, delete,
token rotate/revoke) reaches the broker's credentials and the device's actor here, in one place."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from pulse.domain.device import presence_status
from pulse.domain.tags import MAX_TAG_FILTER, valid_filter
from pulse.errors import Invalid
from pulse.services.context import ServiceContext
from pulse.storage import devices as store
from pulse.storage import tokens

CONNECTIVITY = ("ONLINE", "STALE", "OFFLINE")
# Registry fields a rule scope selects by, directly (site, template) or through a dynamic group's query
# (status, site): changing one re-resolves the tenant's rule scopes (`storage.rules.scope_device_ids`).
SCOPE_FIELDS = frozenset({"site_id", "template_id", "status"})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _status(ctx: ServiceContext, presence: dict[str, Any], now_ms: int) -> str:
    s = ctx.settings
    return presence_status(presence.get("last_seen_ms"), now_ms, s.stale_after_s, s.offline_after_s)


async def create(ctx: ServiceContext, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Register a device; the result carries its first token's secret (shown only this once)."""
    device, token = await store.create(ctx.db, tenant_id, fields)
    await ctx.credentials.set_device_secret(tenant_id, fields["device_id"], token["token"])
    await ctx.runtime.rules_changed(tenant_id)  # scoped rules loaded before it must see it
    return {**device, "token": token["token"], "token_id": token["token_id"]}


async def list_devices(ctx: ServiceContext, tenant_id: str, *, status: str | None = None, site_id: str | None = None,
                       search: str | None = None, tags: list[str] | None = None, group_id: str | None = None,
                       template_id: int | None = None, sort: str = "device_id", limit: int = 50,
                       offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Devices matching every filter; `tags` keeps those carrying every tag, `group_id` a group's members."""
    if tags and not valid_filter(tags):
        raise Invalid(f"tag: at most {MAX_TAG_FILTER} tags of 1-64 characters from A-Z a-z 0-9 _ . : / -")
    return await store.list_devices(ctx.db, tenant_id, status=status, site_id=site_id, search=search, tags=tags,
                                    group_id=group_id, template_id=template_id, sort=sort, limit=limit,
                                    offset=offset)


async def summary(ctx: ServiceContext, tenant_id: str) -> dict[str, Any]:
    """Registry counts by status and connectivity of the ACTIVE devices (from actor snapshots)."""
    registry = await store.registry_counts(ctx.db, tenant_id)
    now = _now_ms()
    presence = Counter(_status(ctx, pr, now) for pr in await store.presences(ctx.db, tenant_id))
    connectivity = {k: presence.get(k, 0) for k in CONNECTIVITY}
    return {**connectivity, "total": sum(registry.values()), "by_status": registry, "connectivity": connectivity}


async def get(ctx: ServiceContext, tenant_id: str, device_id: str) -> dict[str, Any]:
    """The registry entry with the device actor's live presence and latest values (`latest`:
    metric -> {value, ts_ms})."""
    device = await store.get(ctx.db, tenant_id, device_id)
    live = await ctx.runtime.device_call(tenant_id, device_id, "live_view")
    presence = live["presence"]
    return {**device, "presence": {**presence, "status": _status(ctx, presence, _now_ms())}, "latest": live["latest"]}


async def update(ctx: ServiceContext, tenant_id: str, device_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    if not fields:
        raise Invalid("nothing to update")
    device = await store.update(ctx.db, tenant_id, device_id, fields)
    if "status" in fields:
        await ctx.runtime.device_changed(tenant_id, device_id, device["status"])
    if SCOPE_FIELDS & fields.keys():
        await ctx.runtime.rules_changed(tenant_id)
    return device


async def decommission(ctx: ServiceContext, tenant_id: str, device_id: str, actor: str,
                       reason: str | None = None) -> dict[str, Any]:
    """REVOKED: ingest and the broker refuse the device from now on; its data stays, its alerts close."""
    device = await store.decommission(ctx.db, tenant_id, device_id)
    await ctx.runtime.device_changed(tenant_id, device_id, "REVOKED")
    await ctx.credentials.remove_device(tenant_id, device_id)
    await _close_alerts(ctx, tenant_id, device_id, "DEVICE_DECOMMISSIONED", actor, reason)
    return device


async def delete(ctx: ServiceContext, tenant_id: str, device_id: str, actor: str) -> None:
    await store.delete(ctx.db, tenant_id, device_id)
    await ctx.runtime.device_changed(tenant_id, device_id, None)
    await ctx.credentials.remove_device(tenant_id, device_id)
    await _close_alerts(ctx, tenant_id, device_id, "DEVICE_DELETED", actor, None)


async def _close_alerts(ctx: ServiceContext, tenant_id: str, device_id: str, action: str, actor: str,
                        reason: str | None) -> None:
    """A device that can no longer report cannot resolve its alerts: the tenant actor closes them
    (recording `action`, who and why) and their escalation stops."""
    await ctx.runtime.tenant_call(tenant_id, "device_removed", device_id, action, actor, _now_ms(), reason)


# ---- tokens --------------------------------------------------------------------------------------
def _client_id(tenant_id: str, device_id: str) -> str:
    """The device's MQTT username (docs/device-protocol.md)."""
    return f"{tenant_id}/{device_id}"


async def list_tokens(ctx: ServiceContext, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    """Each token also under the documented names: `id` (= token_id) and `client_id`."""
    await store.get(ctx.db, tenant_id, device_id)
    client_id = _client_id(tenant_id, device_id)
    return [{**t, "id": t["token_id"], "client_id": client_id}
            for t in await tokens.list_tokens(ctx.db, tenant_id, device_id)]


async def rotate_token(ctx: ServiceContext, tenant_id: str, device_id: str, label: str = "rotated") -> dict[str, Any]:
    """Revokes the device's active tokens; the new secret is returned only this once, as `token` and,
    with `client_id` and `broker_url`, as the documented MQTT `password`."""
    await store.get(ctx.db, tenant_id, device_id)
    token = await tokens.rotate(ctx.db, tenant_id, device_id, label)
    ctx.token_cache.invalidate(_client_id(tenant_id, device_id))  # here at once; other replicas: RevocationFeed
    await ctx.credentials.set_device_secret(tenant_id, device_id, token["token"])
    s = ctx.settings
    return {**token, "client_id": _client_id(tenant_id, device_id), "password": token["token"],
            "broker_url": f"mqtt://{s.mqtt_host}:{s.mqtt_port}"}


async def revoke_token(ctx: ServiceContext, tenant_id: str, device_id: str, token_id: str) -> None:
    await store.get(ctx.db, tenant_id, device_id)
    await tokens.revoke(ctx.db, tenant_id, device_id, token_id)
    ctx.token_cache.invalidate(_client_id(tenant_id, device_id))  # here at once; other replicas: RevocationFeed
    # A broker that holds one password per device (Mosquitto) cannot tell which token it has:
    # revoking any token removes the device there until the next rotate (docs/mqtt-broker.md).
    await ctx.credentials.remove_device(tenant_id, device_id)
