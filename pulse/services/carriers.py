"""Carrier use cases: what the customer, operator and callback routes do, and what the scheduled sync shares.

The routes call these functions (docs/carriers.md): integrations (one per carrier and tenant, the
operator's cross-tenant variants with `tenant_id=None`), a device's line (status, usage, live
refreshes, diagnostics, plans, actions, link, provision) and the carrier's inbound callbacks.
Provider exceptions become domain errors here (`failure`), so no carrier problem ever surfaces as
a 500: not supported -> `Unsupported`, credentials refused or a bad answer -> `BadGateway`,
unreachable -> `ServiceUnavailable`, a refused request -> `NotFound`/`Conflict`/`Invalid`.

`pulse.services.carrier_sync` (the scheduled sync) builds on the providers, conversions and
settling below.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any
from weakref import WeakKeyDictionary

from pulse.config.settings import Settings
from pulse.domain.carriers import (ACTIONS, FAILED, OUTCOME_UNKNOWN, PENDING, REBOOT_SMS, SECRET_FIELDS, SENT,
                                   STATUS_AFTER, SUCCEEDED, usage_alert, used_pct)
from pulse.domain.messages import AlertEvent
from pulse.domain.permissions import Principal
from pulse.errors import (BadGateway, Conflict, Invalid, NotFound, PulseError, ServiceUnavailable, Unauthorized,
                          Unsupported)
from pulse.integrations.carriers import provider_class, provider_for
from pulse.integrations.carriers.base import (ActionResult, CallbackEvent, CarrierAuthError, CarrierError,
                                              CarrierProvider, Credentials, DeviceInfo, NotSupported, Usage)
from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.services.ports import Runtime
from pulse.storage import carriers as store
from pulse.storage.db import Database, utcnow
from pulse.storage.secrets import SecretBox, box_for

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/v1/carrier/callbacks/{integration_id}"
MAX_CALLBACK_BYTES = 1_000_000
ERROR_MAX = 2000
# callback services registered per carrier: action results, and SMS results (the reboot action)
CALLBACK_SERVICES = {"thingspace": ("CarrierService", "EnhancedConnectivityService")}
_REFUSED = {404: NotFound, 409: Conflict, 422: Invalid, 400: Invalid}  # the carrier refused the request


def failure(e: Exception, carrier: str) -> PulseError:
    """Map a provider exception to the domain error the API answers with."""
    if isinstance(e, NotSupported):
        return Unsupported(str(e))
    if isinstance(e, CarrierAuthError):
        return BadGateway(f"{carrier} refused the integration's credentials ({e}); update the integration")
    if isinstance(e, Unavailable):
        return ServiceUnavailable(f"{carrier} is unavailable: {e}")
    if isinstance(e, CarrierError):
        error = _REFUSED.get(e.status or 0)
        prefix = f"{carrier} refused the request" if error else f"{carrier} failed"
        return (error or BadGateway)(f"{prefix}: {e}" + (f" ({e.code})" if e.code else ""))
    raise TypeError(f"not a carrier error: {e!r}")


# ---- providers and conversions -------------------------------------------------------------------
def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(attempts=max(1, settings.carrier_retry_attempts), base_delay_s=settings.carrier_retry_base_s,
                       max_delay_s=max(settings.carrier_retry_base_s, 30.0))


def credentials_of(integration: dict[str, Any]) -> Credentials:
    """Stored integration (secrets decrypted) -> provider credentials; username/password travel in `config`."""
    secret = integration["secrets"]
    config = dict(integration.get("config") or {})
    config.update({k: secret[k] for k in ("username", "password") if secret.get(k)})
    return Credentials(api_base_url=integration["api_base_url"], api_key=secret.get("api_key", ""),
                       api_secret=secret.get("api_secret", ""), account_id=integration.get("account_id") or "",
                       config=config)


def open_provider(settings: Settings, integration: dict[str, Any]) -> CarrierProvider:
    """A provider for one unit of work; use it as `async with` so its HTTP client is closed."""
    return provider_for(integration["carrier_name"], credentials_of(integration), retry=retry_policy(settings),
                        timeout_s=settings.carrier_http_timeout_s)


class ProviderPool:
    """Providers kept between API calls, so a carrier's tokens — ThingSpace's OAuth token and session
    login above all — are reused instead of logging in for every request.

    Keyed by integration and its `updated_at` (new credentials -> a new provider; the old one is
    closed), and per event loop, because a provider's HTTP client belongs to the loop it was made on.
    A provider whose login was refused stays in the pool and refuses at once: that is what keeps a
    wrong password from locking the carrier account."""

    MAX_PER_LOOP = 64

    def __init__(self) -> None:
        self._by_loop: WeakKeyDictionary[asyncio.AbstractEventLoop, OrderedDict[int, tuple[Any, CarrierProvider]]] = (
            WeakKeyDictionary())

    def get(self, settings: Settings, integration: dict[str, Any]) -> CarrierProvider:
        pool = self._by_loop.setdefault(asyncio.get_running_loop(), OrderedDict())
        iid, version = integration["integration_id"], integration["updated_at"]
        held = pool.get(iid)
        if held is not None and held[0] == version:
            pool.move_to_end(iid)
            return held[1]
        if held is not None:
            self._retire(held[1])
        provider = open_provider(settings, integration)
        pool[iid] = (version, provider)
        while len(pool) > self.MAX_PER_LOOP:
            self._retire(pool.popitem(last=False)[1][1])
        return provider

    @staticmethod
    def _retire(provider: CarrierProvider) -> None:
        task = asyncio.get_running_loop().create_task(provider.aclose())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # closing is best effort


PROVIDERS = ProviderPool()


def state_values(info: DeviceInfo) -> dict[str, Any]:
    return {"iccid": info.iccid, "sim_status": info.sim_status, "network_status": info.network_status,
            "network_type": info.network_type, "ip_address": info.ip_address,
            "signal_strength": info.signal_strength, "msisdn": info.msisdn, "plan": info.plan,
            "last_connection": info.last_connection}


def usage_values(usage: Usage) -> dict[str, Any]:
    return {"data_used_bytes": usage.data_used_bytes, "data_limit_bytes": usage.data_limit_bytes,
            "sms_count": usage.sms_count, "billing_cycle_start": usage.billing_cycle_start,
            "billing_cycle_end": usage.billing_cycle_end}


async def open_usage_alerts(db: Database, runtime: Any, events: list[AlertEvent]) -> int:
    """Hand data-usage crossings to the tenant actors (the alert path device rules use), then mark
    the lines: only an alert the tenant actor has counts as open, so a crossing whose hand-off
    failed is seen again, and sent again, by the next sync."""
    if not events or runtime is None:
        return 0
    try:
        opened = await runtime.tenant_events(events)
    except Exception:
        log.exception("could not open %d carrier data-usage alerts; the next sync tries again", len(events))
        return 0
    for ev in events:
        await store.set_usage_alert(db, ev.tenant_id, ev.device_id, ev.kind == "open")
    return opened


async def store_usage(db: Database, settings: Settings, link: dict[str, Any], tenant_id: str, usage: Usage,
                      at: datetime) -> AlertEvent | None:
    """Latest usage + snapshot for a line; returns the data-usage alert event on a threshold crossing
    (the line's alert flag changes when that event is delivered, see `open_usage_alerts`)."""
    values = usage_values(usage)
    pct = used_pct(values["data_used_bytes"], values["data_limit_bytes"])
    active, event = usage_alert(tenant_id, link["device_id"], bool(link.get("usage_alert_active")), pct,
                                settings.carrier_data_usage_alert_pct, at,
                                {"carrier_device_id": link["carrier_device_id"],
                                 "data_used_bytes": values["data_used_bytes"],
                                 "data_limit_bytes": values["data_limit_bytes"]})
    await store.record_usage(db, tenant_id, link["device_id"], values, None if event else active, at)
    return event


async def apply_settled(db: Database, request: dict[str, Any]) -> None:
    """A request settled as succeeded: its line takes the action's status (if still the same line)."""
    status = STATUS_AFTER.get(request["action"])
    if request["state"] != SUCCEEDED or status is None:
        return
    try:
        link = await store.get_link(db, request["tenant_id"], request["device_id"])
    except NotFound:
        return
    if (link["integration_id"], link["carrier_device_id"]) == (request["integration_id"], request["carrier_device_id"]):
        await store.update_link_state(db, request["tenant_id"], request["device_id"], {"sim_status": status})


# ---- integrations (customer and operator routes) ------------------------------------------------
async def list_integrations(settings: Settings, db: Database, tenant_id: str | None, limit: int, offset: int,
                            carrier_name: str | None = None, enabled: bool | None = None,
                            with_tenant: bool = False) -> tuple[list[dict[str, Any]], int]:
    """(a page of integrations, the total); `tenant_id=None` lists every tenant's (operator)."""
    return await store.list_integrations(db, box_for(settings), tenant_id=tenant_id, limit=limit, offset=offset,
                                         carrier_name=carrier_name, enabled=enabled, with_tenant=with_tenant)


async def get_integration(settings: Settings, db: Database, integration_id: int, tenant_id: str | None = None,
                          with_tenant: bool = False) -> dict[str, Any]:
    return await store.get_integration(db, box_for(settings), integration_id, tenant_id, with_tenant=with_tenant)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """400 for a carrier Pulse has no provider for, 422 for a `config` it cannot use; the provider's public URL
    when none is given."""
    try:
        cls = provider_class(fields["carrier_name"])
    except CarrierError as e:
        raise PulseError(str(e)) from None  # 400, as the documented system answers
    try:
        cls.check_config(fields.get("config") or {})
    except CarrierError as e:
        raise Invalid(str(e)) from None
    url = fields.get("api_base_url") or getattr(cls, "default_base_url", None)
    if not url:
        raise Invalid(f"api_base_url is required for {fields['carrier_name']}")
    return fields | {"api_base_url": url}


async def create_integration(settings: Settings, db: Database, tenant_id: str, fields: dict[str, Any],
                             who: Principal, with_tenant: bool = False) -> dict[str, Any]:
    """Store it, register the callback with the carrier, audit it."""
    box = box_for(settings)
    created = await store.create_integration(db, box, tenant_id, _checked(fields), with_tenant=with_tenant)
    await register_callbacks(settings, db, created["id"])
    plain = {k: v for k, v in fields.items() if k not in SECRET_FIELDS and v is not None}
    await store.record_audit(db, tenant_id=tenant_id, user_id=who.sub, role=who.role, action="integration.create",
                             integration_id=created["id"],
                             changes=plain | {k: "set" for k in SECRET_FIELDS if fields.get(k)})
    return await store.get_integration(db, box, created["id"], with_tenant=with_tenant)


async def update_integration(settings: Settings, db: Database, integration_id: int, tenant_id: str | None,
                             fields: dict[str, Any], who: Principal, with_tenant: bool = False) -> dict[str, Any]:
    box = box_for(settings)
    updated, changes = await store.update_integration(db, box, integration_id, tenant_id, fields, with_tenant=True)
    if changes:
        await register_callbacks(settings, db, integration_id)
    await store.record_audit(db, tenant_id=updated["tenant_id"], user_id=who.sub, role=who.role,
                             action="integration.update", integration_id=integration_id, changes=_json_safe(changes))
    return await store.get_integration(db, box, integration_id, with_tenant=with_tenant)


async def delete_integration(db: Database, integration_id: int, tenant_id: str | None,
                             who: Principal) -> dict[str, Any]:
    """Deletes it and unlinks its devices (recorded in the audit log with the device ids)."""
    gone = await store.delete_integration(db, integration_id, tenant_id)
    await store.record_audit(db, tenant_id=gone["tenant_id"], user_id=who.sub, role=who.role,
                             action="integration.delete", integration_id=integration_id, changes=gone)
    return gone


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value.isoformat() if isinstance(value, datetime) else value


async def plans(settings: Settings, db: Database, tenant_id: str, integration_id: int) -> dict[str, Any]:
    """The carrier's data plans; an empty list where the carrier sells none."""
    integration = await _usable(db, box_for(settings), integration_id, tenant_id)
    found = await _call(settings, integration, lambda p: p.list_plans())
    return {"carrier_name": integration["carrier_name"],
            "plans": [{"id": p.plan_id, "name": p.name, "data_limit_bytes": p.data_limit_bytes} for p in found]}


def callback_url(settings: Settings, integration_id: int) -> str | None:
    if not settings.public_base_url:
        return None
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH.format(integration_id=integration_id)


async def register_callbacks(settings: Settings, db: Database, integration_id: int) -> None:
    """Tell the carrier where to call back (when `public_base_url` is set and the carrier has callbacks).

    Never fails the write that triggered it: a refusal is kept in `callback_error` for the user."""
    url = callback_url(settings, integration_id)
    if url is None:
        return
    integration = await store.integration_for_use(db, box_for(settings), integration_id)
    if not integration["enabled"]:
        return
    secret = integration["secrets"]
    try:
        async with open_provider(settings, integration) as provider:
            for service in CALLBACK_SERVICES.get(integration["carrier_name"], ("CarrierService",)):
                await provider.register_callback(service, url, secret["callback_username"],
                                                 secret["callback_password"])
    except NotSupported:
        return
    except (CarrierError, Unavailable) as e:
        await store.set_callback(db, integration_id, None, f"callback registration failed: {e}"[:ERROR_MAX])
        return
    await store.set_callback(db, integration_id, url, None)


# ---- a device's line -----------------------------------------------------------------------------
async def _usable(db: Database, box: SecretBox, integration_id: int, tenant_id: str) -> dict[str, Any]:
    integration = await store.integration_for_use(db, box, integration_id, tenant_id)
    if not integration["enabled"]:
        raise Conflict(f"carrier integration {integration_id} is disabled: enable it first")
    return integration


async def _call(settings: Settings, integration: dict[str, Any], fn: Any) -> Any:
    """Run `fn(provider)` on the integration's pooled provider, carrier errors mapped to domain errors."""
    try:
        return await fn(PROVIDERS.get(settings, integration))
    except (CarrierError, Unavailable) as e:
        raise failure(e, integration["carrier_name"]) from None


async def _carrier_name(settings: Settings, db: Database, tenant_id: str, integration_id: int) -> str:
    return (await store.get_integration(db, box_for(settings), integration_id, tenant_id))["carrier_name"]


def _usage_numbers(link: dict[str, Any], threshold: float) -> dict[str, Any]:
    pct = used_pct(link["data_used_bytes"], link["data_limit_bytes"])
    return {"data_used_bytes": link["data_used_bytes"], "data_limit_bytes": link["data_limit_bytes"],
            "data_used_pct": pct, "usage_alert_threshold_pct": threshold,
            "over_usage_threshold": pct is not None and pct >= threshold,
            "usage_alert_active": link["usage_alert_active"]}


async def line_status(settings: Settings, db: Database, tenant_id: str, device_id: str,
                      refresh: bool = False) -> dict[str, Any]:
    """The line as last synced (or asked of the carrier now), with its pending and recent requests."""
    if refresh:
        await refresh_status(settings, db, tenant_id, device_id)
    link = await store.get_link(db, tenant_id, device_id)
    recent = await store.recent_requests(db, tenant_id, device_id)
    state = {k: link[k] for k in ("integration_id", "carrier_device_id", *store.LINK_STATE_FIELDS,
                                  "last_synced_at", "last_sync_error", "linked_at")}
    carrier_name = await _carrier_name(settings, db, tenant_id, link["integration_id"])
    return {"device_id": device_id, "carrier_name": carrier_name, **state,
            **_usage_numbers(link, settings.carrier_data_usage_alert_pct),
            "pending_requests": [r for r in recent if r["state"] == PENDING], "recent_requests": recent}


async def line_usage(settings: Settings, db: Database, runtime: Runtime | None, tenant_id: str, device_id: str,
                     history_limit: int, refresh: bool = False) -> dict[str, Any]:
    """Latest usage (asked of the carrier first on `refresh`, opening the alert on a crossing), the
    share of the plan used against the alert threshold, and the history for charts."""
    if refresh:
        event = await refresh_usage(settings, db, tenant_id, device_id)
        if event is not None:
            await open_usage_alerts(db, runtime, [event])
    link = await store.get_link(db, tenant_id, device_id)
    carrier_name = await _carrier_name(settings, db, tenant_id, link["integration_id"])
    return {"device_id": device_id, "carrier_name": carrier_name, "carrier_device_id": link["carrier_device_id"],
            **_usage_numbers(link, settings.carrier_data_usage_alert_pct),
            **{k: link[k] for k in ("sms_count", "billing_cycle_start", "billing_cycle_end", "last_synced_at")},
            "history": await store.usage_history(db, tenant_id, device_id, history_limit)}


async def refresh_status(settings: Settings, db: Database, tenant_id: str, device_id: str) -> None:
    link = await store.get_link(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), link["integration_id"], tenant_id)
    info: DeviceInfo = await _call(settings, integration, lambda p: p.get_device_info(link["carrier_device_id"]))
    await store.update_link_state(db, tenant_id, device_id, state_values(info))


async def refresh_usage(settings: Settings, db: Database, tenant_id: str, device_id: str) -> AlertEvent | None:
    link = await store.get_link(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), link["integration_id"], tenant_id)
    usage: Usage = await _call(settings, integration, lambda p: p.get_usage(link["carrier_device_id"]))
    return await store_usage(db, settings, link, tenant_id, usage, utcnow())


async def diagnostics(settings: Settings, db: Database, tenant_id: str, device_id: str) -> dict[str, Any]:
    """Asked of the carrier on every call (never synced)."""
    link = await store.get_link(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), link["integration_id"], tenant_id)
    diag = await _call(settings, integration, lambda p: p.get_diagnostics(link["carrier_device_id"]))
    return {"device_id": device_id, "carrier_name": integration["carrier_name"],
            "carrier_device_id": link["carrier_device_id"], "diagnostics": diag.data, "fetched_at": utcnow()}


async def execute_action(settings: Settings, db: Database, who: Principal, device_id: str,
                         action: str) -> dict[str, Any]:
    """An action on a device's line; `state` is "pending" (with request_id) while the carrier works on
    it. Every attempt is recorded in carrier_requests (refusals too) and audited."""
    tenant_id = who.tenant_id
    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}")
    link = await store.get_link(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), link["integration_id"], tenant_id)
    cid = link["carrier_device_id"]

    async def run(p: CarrierProvider) -> ActionResult:
        return await (p.send_sms(cid, REBOOT_SMS) if action == "reboot" else p.action(cid, action))

    record = dict(tenant_id=tenant_id, integration_id=link["integration_id"], device_id=device_id,
                  carrier_device_id=cid, action=action, requested_by=who.sub)
    if action == "deactivate":  # destructive: a deactivated line loses its number, IP and plan
        log.warning("tenant %s: %s deactivates carrier line %s of device %s", tenant_id, who.sub, cid, device_id)
    try:
        result = await _call(settings, integration, run)
    except PulseError as e:  # the carrier refused or failed (`failure`)
        await store.add_request(db, **record, request_id=None, state=FAILED, detail=e.detail[:ERROR_MAX])
        await _audit_line(db, who, link["integration_id"], device_id, f"line.{action}",
                          {"carrier_device_id": cid, "state": "refused", "detail": e.detail})
        raise
    state, detail = result.state, result.detail
    if (state == PENDING and not integration.get("callback_url")
            and not provider_class(integration["carrier_name"]).polls(action)):
        state, detail = SENT, OUTCOME_UNKNOWN.format(carrier=integration["carrier_name"], action=action)
    req = await store.add_request(db, **record, request_id=result.request_id, state=state, detail=detail)
    await _audit_line(db, who, link["integration_id"], device_id, f"line.{action}",
                      {"carrier_device_id": cid, "state": state, "request_id": result.request_id})
    if result.state == SUCCEEDED:
        await apply_settled(db, req | {"tenant_id": tenant_id})
    elif result.state == FAILED:
        raise Conflict(f"{integration['carrier_name']} did not {action} line {cid}: {result.detail or 'failed'}")
    return {"device_id": device_id, "action": action, "state": state, "request_id": result.request_id,
            "detail": detail, "carrier_name": integration["carrier_name"], "carrier_device_id": cid,
            "sim_status": (await store.get_link(db, tenant_id, device_id))["sim_status"]}


async def _audit_line(db: Database, who: Principal, integration_id: int, device_id: str, action: str,
                      changes: dict[str, Any]) -> None:
    await store.record_audit(db, tenant_id=who.tenant_id, user_id=who.sub, role=who.role, action=action,
                             integration_id=integration_id, device_id=device_id, changes=changes)


async def link_line(settings: Settings, db: Database, who: Principal, device_id: str, integration_id: int,
                    carrier_device_id: str) -> dict[str, Any]:
    """Link a device to a line the carrier confirms exists (its current state is stored with it)."""
    tenant_id = who.tenant_id
    await store.require_device(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), integration_id, tenant_id)
    info: DeviceInfo = await _call(settings, integration, lambda p: p.get_device_info(carrier_device_id))
    link = await store.link_device(db, tenant_id, device_id, integration_id,
                                   info.carrier_device_id or carrier_device_id, state_values(info))
    await _audit_line(db, who, integration_id, device_id, "line.link",
                      {"carrier_device_id": link["carrier_device_id"], "iccid": link["iccid"]})
    return link


async def unlink_line(db: Database, who: Principal, device_id: str) -> None:
    old = await store.unlink_device(db, who.tenant_id, device_id)
    await _audit_line(db, who, old["integration_id"], device_id, "line.unlink",
                      {"carrier_device_id": old["carrier_device_id"], "iccid": old["iccid"]})


async def provision_line(settings: Settings, db: Database, who: Principal, device_id: str, integration_id: int,
                         iccid: str, plan_id: str | None) -> dict[str, Any]:
    """Claim a SIM by ICCID from the carrier and link the device to it."""
    tenant_id = who.tenant_id
    await store.require_device(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), integration_id, tenant_id)
    info: DeviceInfo = await _call(settings, integration, lambda p: p.claim_sim(iccid, plan_id))
    link = await store.link_device(db, tenant_id, device_id, integration_id, info.carrier_device_id,
                                   state_values(info) | {"iccid": info.iccid or iccid})
    raw = info.raw if isinstance(info.raw, dict) else {}
    request_id = raw.get("requestId") or raw.get("request_id")
    if request_id and info.sim_status == "pending":  # an asynchronous activation: settle it like an action
        await store.add_request(db, tenant_id=tenant_id, integration_id=integration_id, device_id=device_id,
                                carrier_device_id=info.carrier_device_id, action="activate",
                                request_id=str(request_id), state=PENDING, detail="provisioning",
                                requested_by=who.sub)
    await _audit_line(db, who, integration_id, device_id, "line.provision",
                      {"iccid": iccid, "plan_id": plan_id, "carrier_device_id": link["carrier_device_id"],
                       "sim_status": link["sim_status"], "request_id": request_id})
    return {"provisioned": True, "device_id": device_id, "carrier_device_id": link["carrier_device_id"],
            "iccid": link["iccid"], "carrier_name": integration["carrier_name"],
            "claim_result": {k: link[k] for k in ("sim_status", "network_status", "ip_address", "plan", "msisdn")}
            | {"request_id": request_id}}


# ---- inbound callbacks ---------------------------------------------------------------------------
def _redacted(body: Any) -> Any:
    """The callback body without the echoed credentials (never stored)."""
    if not isinstance(body, dict):
        return body
    return {k: ("***" if k.lower() in ("username", "password") else v) for k, v in body.items()}


async def receive_callback(settings: Settings, db: Database, integration_id: int, raw: bytes,
                           remote_ip: str | None) -> dict[str, Any]:
    """One inbound callback as received: larger than MAX_CALLBACK_BYTES or not JSON is refused (and
    recorded); the rest goes to `handle_callback`."""
    refused = {"integration_id": integration_id, "tenant_id": None, "outcome": "invalid", "remote_ip": remote_ip}
    if len(raw) > MAX_CALLBACK_BYTES:
        await store.record_callback(db, **refused, detail=f"body of {len(raw)} bytes refused")
        raise Invalid(f"callback body larger than {MAX_CALLBACK_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        await store.record_callback(db, **refused, detail="body is not JSON")
        raise Invalid("callback body is not JSON") from None
    return await handle_callback(settings, db, integration_id, body, remote_ip)


async def handle_callback(settings: Settings, db: Database, integration_id: int, body: Any,
                          remote_ip: str | None) -> dict[str, Any]:
    """Verify, record and apply one inbound callback -> the answer for the carrier.

    Unknown integration 404, not JSON object 400, wrong echoed credentials 401 — all recorded. A
    verified callback is answered 200 whatever it says (the carrier retries anything else)."""
    record: dict[str, Any] = {"integration_id": integration_id, "tenant_id": None, "remote_ip": remote_ip,
                              "body": _redacted(body)}
    try:
        integration = await store.integration_for_use(db, box_for(settings), integration_id)
    except (NotFound, Conflict) as e:  # unknown, or its credentials no longer decrypt (409)
        await store.record_callback(db, **record, outcome="invalid", detail=e.detail)
        raise
    record["tenant_id"] = integration["tenant_id"]
    if not isinstance(body, dict):
        await store.record_callback(db, **record, outcome="invalid", detail="body is not a JSON object")
        raise Invalid("callback body must be a JSON object")
    secret = integration["secrets"]
    try:
        async with open_provider(settings, integration) as provider:
            event: CallbackEvent = provider.parse_callback(body, secret.get("callback_username", ""),
                                                           secret.get("callback_password", ""))
    except CarrierAuthError as e:
        await store.record_callback(db, **record, outcome="rejected", detail=str(e))
        raise Unauthorized("callback credentials do not match") from None
    except NotSupported as e:
        await store.record_callback(db, **record, outcome="invalid", detail=str(e))
        raise NotFound(f"carrier integration {integration_id} takes no callbacks") from None
    except CarrierError as e:
        await store.record_callback(db, **record, outcome="invalid", detail=str(e))
        raise Invalid(f"callback not understood: {e}") from None
    outcome = await _apply_callback(db, integration_id, event)
    await store.record_callback(db, **record, outcome=outcome, kind=event.kind, request_id=event.request_id,
                                detail=event.detail)
    return {"received": True, "outcome": outcome}


async def _apply_callback(db: Database, integration_id: int, event: CallbackEvent) -> str:
    if event.kind != "request_result" or not event.request_id or event.state not in (SUCCEEDED, FAILED):
        return "recorded"
    row = await store.settle_request(db, integration_id, event.request_id, event.state, event.detail)
    if row is not None:
        await apply_settled(db, row)
        return "settled"
    return "duplicate" if await store.find_request(db, integration_id, event.request_id) else "unmatched"
