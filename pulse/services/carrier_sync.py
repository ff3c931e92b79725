"""Carrier integrations at work: the scheduled sync, request polling, and the operations the API calls.

`CarrierSync` is a plain async class; `pulse up` hosts it as the `carrier-sync` Ray actor and the
scheduler calls `sync_due` and `poll_requests` (docs/carriers.md):
- `sync_due`: every enabled, sync-enabled integration whose `sync_interval_minutes` has passed is
  synced on its own (one failing never stops the others): usage of all its lines (bulk), then each
  line's device info. Outcome per integration: success (every line), partial (some lines failed),
  error (none, or the carrier refused the credentials or was unreachable).
- `poll_requests`: asynchronous carrier requests still pending ask the carrier where they stand;
  a finished one is settled (once, also against a racing callback) and its line refreshed.

The module-level functions are the carrier service the routes call (actions, link, provision,
live refreshes, callbacks): they turn provider errors into domain errors with an HTTP status
(`CarrierFailure`), so no carrier problem ever surfaces as a 500.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, defaultdict
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from pulse.domain.messages import AlertEvent
from pulse.config.settings import Settings
from pulse.errors import Conflict, Invalid, NotFound, PulseError
from pulse.integrations.carriers import provider_class, provider_for
from pulse.integrations.carriers.base import (ActionResult, CallbackEvent, CarrierAuthError, CarrierError,
                                              CarrierProvider, Credentials, DeviceInfo, NotSupported, Usage)
from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.services.ports import Runtime
from pulse.storage import carriers as store
from pulse.storage.db import Database, utcnow
from pulse.storage.secrets import SecretBox, box_for

log = logging.getLogger(__name__)

ACTIONS = ("activate", "suspend", "restore", "deactivate", "reboot")
REBOOT_SMS = "REBOOT"
# what a line's sim_status becomes once an action succeeded (reboot changes nothing)
STATUS_AFTER = {"activate": "active", "suspend": "suspended", "restore": "active", "deactivate": "deactivated"}
USAGE_ALERT_TYPE = "CARRIER_DATA_USAGE"
USAGE_ALERT_SEVERITY = 3
REQUEST_GIVE_UP = timedelta(hours=72)  # ThingSpace activations may take up to 24 h under load
CALLBACK_PATH = "/api/v1/carrier/callbacks/{integration_id}"
ERROR_MAX = 2000
SYNC_CONCURRENCY = 4  # integrations synced at once (each talks to its own carrier account)
# callback services registered per carrier: action results, and SMS results (the reboot action)
CALLBACK_SERVICES = {"thingspace": ("CarrierService", "EnhancedConnectivityService")}


class CarrierFailure(PulseError):
    """A carrier problem as an HTTP answer: 501 not supported, 502 credentials refused or bad answer,
    503 unreachable, 404/409/422 the carrier refused the request."""

    def __init__(self, detail: str, status_code: int) -> None:
        super().__init__(detail)
        self.status_code = status_code


def failure(e: Exception, carrier: str) -> PulseError:
    """Map a provider exception to the domain error the API answers with."""
    if isinstance(e, NotSupported):
        return CarrierFailure(str(e), 501)
    if isinstance(e, CarrierAuthError):
        return CarrierFailure(f"{carrier} refused the integration's credentials ({e}); update the integration", 502)
    if isinstance(e, Unavailable):
        return CarrierFailure(f"{carrier} is unavailable: {e}", 503)
    if isinstance(e, CarrierError):
        status = e.status if e.status in (404, 409, 422) else 422 if e.status == 400 else 502
        prefix = f"{carrier} refused the request" if status != 502 else f"{carrier} failed"
        return CarrierFailure(f"{prefix}: {e}" + (f" ({e.code})" if e.code else ""), status)
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


def used_pct(used: int | None, limit: int | None) -> float | None:
    if used is None or not limit:
        return None
    return round(100.0 * used / limit, 2)


def usage_alert(tenant_id: str, device_id: str, was_active: bool, pct: float | None, threshold: float,
                at: datetime, details: dict[str, Any]) -> tuple[bool | None, AlertEvent | None]:
    """(alert state after this reading or None if unknown, the open/clear event on a crossing)."""
    if pct is None:
        return None, None
    active = pct >= threshold
    if active == was_active:
        return active, None
    event = AlertEvent("open" if active else "clear", tenant_id, device_id, "", "Carrier data usage",
                       USAGE_ALERT_SEVERITY, "data_used_pct", pct, int(at.timestamp() * 1000),
                       alert_type=USAGE_ALERT_TYPE, details={"threshold_pct": threshold, **details})
    return active, event


async def open_usage_alerts(runtime: Any, events: list[AlertEvent]) -> int:
    """Hand data-usage crossings to the tenant actors (the alert path device rules use)."""
    if not events or runtime is None:
        return 0
    try:
        return await runtime.tenant_events(events)
    except Exception:  # the usage itself is stored; the alert opens on the next crossing
        log.exception("could not open %d carrier data-usage alerts", len(events))
        return 0


async def store_usage(db: Database, settings: Settings, link: dict[str, Any], tenant_id: str, usage: Usage,
                      at: datetime) -> AlertEvent | None:
    """Latest usage + snapshot for a line; returns the data-usage alert event on a threshold crossing."""
    values = usage_values(usage)
    pct = used_pct(values["data_used_bytes"], values["data_limit_bytes"])
    active, event = usage_alert(tenant_id, link["device_id"], bool(link.get("usage_alert_active")), pct,
                                settings.carrier_data_usage_alert_pct, at,
                                {"carrier_device_id": link["carrier_device_id"],
                                 "data_used_bytes": values["data_used_bytes"],
                                 "data_limit_bytes": values["data_limit_bytes"]})
    await store.record_usage(db, tenant_id, link["device_id"], values, active, at)
    return event


async def apply_settled(db: Database, request: dict[str, Any]) -> None:
    """A request settled as succeeded: its line takes the action's status (if still the same line)."""
    status = STATUS_AFTER.get(request["action"])
    if request["state"] != store.SUCCEEDED or status is None:
        return
    try:
        link = await store.get_link(db, request["tenant_id"], request["device_id"])
    except NotFound:
        return
    if (link["integration_id"], link["carrier_device_id"]) == (request["integration_id"], request["carrier_device_id"]):
        await store.update_link_state(db, request["tenant_id"], request["device_id"], {"sim_status": status})


# ---- the scheduled actor -------------------------------------------------------------------------
class CarrierSync:
    def __init__(self, settings: Settings, db: Database | None = None, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.db = db
        self._owns_db = db is None
        self.box: SecretBox = box_for(settings)
        self.runtime = runtime  # for data-usage alerts; handed over by the actor runtime at start
        self._stats = {"synced": 0, "sync_errors": 0, "requests_settled": 0, "alerts": 0}

    async def start(self, runtime: Runtime | None = None) -> bool:
        if runtime is not None:
            self.runtime = runtime
        if self.db is None:
            self.db = Database(self.settings.db_url)
        return True

    async def stop(self) -> None:
        if self._owns_db and self.db is not None:
            await self.db.dispose()
            self.db = None

    async def stats(self) -> dict[str, int]:
        return dict(self._stats)

    # ---- sync ------------------------------------------------------------------------------
    async def sync_due(self) -> int:
        """Sync every due integration, a few at a time (a slow carrier does not hold up the others);
        returns how many were synced, whatever their outcome."""
        ids = await store.due_integrations(self.db, utcnow())
        gate = asyncio.Semaphore(SYNC_CONCURRENCY)

        async def one(integration_id: int) -> None:
            async with gate:
                try:
                    await self.sync_integration(integration_id)
                except Exception as e:  # a bug or a lost database: record it and go on with the others
                    log.exception("carrier sync of integration %s failed", integration_id)
                    await store.record_sync(self.db, integration_id, "error", f"internal error: {e}"[:ERROR_MAX],
                                            utcnow())

        await asyncio.gather(*(one(i) for i in ids))
        if ids:
            await store.prune_snapshots(self.db, utcnow())
        return len(ids)

    async def sync_integration(self, integration_id: int) -> dict[str, Any]:
        """Sync one integration now -> {integration_id, status, lines, synced, failed, error}."""
        started = utcnow()
        out: dict[str, Any] = {"integration_id": integration_id, "lines": 0, "synced": 0, "failed": 0, "error": None}
        try:
            integration = await store.integration_for_use(self.db, self.box, integration_id)
        except Conflict as e:  # secrets unreadable
            return await self._finish(out, "error", e.detail, started)
        lines = await store.links_of(self.db, integration_id)
        out["lines"] = len(lines)
        events: list[AlertEvent] = []
        try:
            async with open_provider(self.settings, integration) as provider:
                errors = await self._sync_lines(provider, integration, lines, events)
        except CarrierAuthError as e:
            return await self._finish(out | {"failed": len(lines)}, "error",
                                      f"credentials refused: {e}", started)
        except (Unavailable, CarrierError) as e:
            return await self._finish(out | {"failed": len(lines)}, "error", f"carrier unavailable: {e}", started)
        out["failed"], out["synced"] = len(errors), len(lines) - len(errors)
        if events:
            self._stats["alerts"] += await open_usage_alerts(self.runtime, events)
        status = "success" if not errors else "partial" if out["synced"] else "error"
        summary = "; ".join(f"{d}: {err}" for d, err in list(errors.items())[:5]) if errors else None
        if errors and len(errors) > 5:
            summary += f"; and {len(errors) - 5} more"
        return await self._finish(out, status, summary, started)

    async def _finish(self, out: dict[str, Any], status: str, error: str | None, at: datetime) -> dict[str, Any]:
        await store.record_sync(self.db, out["integration_id"], status, error[:ERROR_MAX] if error else None, at)
        self._stats["synced" if status != "error" else "sync_errors"] += 1
        return out | {"status": status, "error": error}

    async def _sync_lines(self, provider: CarrierProvider, integration: dict[str, Any], lines: list[dict[str, Any]],
                          events: list[AlertEvent]) -> dict[str, str]:
        """Usage (bulk) then device info, line by line -> {device_id: error} of the lines that failed.

        Credentials refused, or the carrier unreachable before any line worked, raise (the whole
        integration is in error); unreachable after some lines worked fails the rest (partial)."""
        if not lines:
            return {}
        tenant_id, now = integration["tenant_id"], utcnow()
        errors: dict[str, str] = {}
        try:
            usage: dict[str, Usage] | None = await provider.get_bulk_usage([ln["carrier_device_id"] for ln in lines])
        except (CarrierAuthError, Unavailable):
            raise
        except CarrierError as e:  # e.g. one unknown line ended the batch: read usage line by line instead
            log.info("integration %s: bulk usage failed (%s), reading lines one by one", integration["integration_id"], e)
            usage = None
        synced_any = False
        for i, line in enumerate(lines):
            device_id, cid = line["device_id"], line["carrier_device_id"]
            try:
                info = await provider.get_device_info(cid)
                line_usage = usage.get(cid) if usage is not None else await provider.get_usage(cid)
            except CarrierAuthError:
                raise
            except Unavailable as e:
                if not synced_any:
                    raise
                for rest in lines[i:]:
                    errors[rest["device_id"]] = f"carrier unavailable: {e}"
                    await store.record_link_error(self.db, tenant_id, rest["device_id"], errors[rest["device_id"]])
                break
            except CarrierError as e:
                errors[device_id] = str(e)
                await store.record_link_error(self.db, tenant_id, device_id, errors[device_id])
                continue
            synced_any = True
            await store.update_link_state(self.db, tenant_id, device_id, state_values(info), now)
            if line_usage is None:
                errors[device_id] = "the carrier reported no usage for this line"
                await store.record_link_error(self.db, tenant_id, device_id, errors[device_id])
                continue
            event = await store_usage(self.db, self.settings, line, tenant_id, line_usage, now)
            if event is not None:
                events.append(event)
        return errors

    # ---- asynchronous requests -------------------------------------------------------------
    async def poll_requests(self) -> int:
        """Ask the carriers about pending requests; returns how many were settled."""
        by_integration: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for req in await store.pending_requests(self.db):
            by_integration[req["integration_id"]].append(req)
        settled = 0
        for integration_id, reqs in by_integration.items():
            try:
                settled += await self._poll_integration(integration_id, reqs)
            except Exception:
                log.exception("polling carrier requests of integration %s failed", integration_id)
        self._stats["requests_settled"] += settled
        return settled

    async def _poll_integration(self, integration_id: int, reqs: list[dict[str, Any]]) -> int:
        try:
            integration = await store.integration_for_use(self.db, self.box, integration_id)
        except (NotFound, Conflict):
            return 0
        settled = 0
        async with open_provider(self.settings, integration) as provider:
            for req in reqs:
                try:
                    result = self._given_up(req) or await provider.request_status(req["request_id"])
                except (CarrierAuthError, Unavailable) as e:
                    log.warning("carrier requests of integration %s not polled: %s", integration_id, e)
                    break
                except NotSupported:
                    continue  # no polling on this carrier: the callback settles it (or the give-up time)
                except CarrierError as e:
                    if e.status != 404:
                        continue  # refused this once: asked again next time
                    result = ActionResult(state="failed", request_id=req["request_id"], detail=f"carrier: {e}")
                if result.state == store.PENDING:
                    continue
                row = await store.settle_request(self.db, integration_id, req["request_id"], result.state,
                                                 result.detail)
                if row is not None:
                    settled += 1
                    await apply_settled(self.db, row)
                    await self._refresh_line(provider, row)
        return settled

    @staticmethod
    def _given_up(req: dict[str, Any]) -> ActionResult | None:
        if utcnow() - req["created_at"] < REQUEST_GIVE_UP:
            return None
        return ActionResult(state="failed", request_id=req["request_id"],
                            detail=f"no result from the carrier within {int(REQUEST_GIVE_UP.total_seconds() // 3600)} h")

    async def _refresh_line(self, provider: CarrierProvider, req: dict[str, Any]) -> None:
        """Re-read a settled request's line, so its status is what the carrier now says."""
        try:
            link = await store.get_link(self.db, req["tenant_id"], req["device_id"])
        except NotFound:
            return
        if link["carrier_device_id"] != req["carrier_device_id"]:
            return
        try:
            info = await provider.get_device_info(req["carrier_device_id"])
        except (CarrierError, Unavailable) as e:  # the settled state is stored; the next sync refreshes
            log.info("line %s not refreshed after request %s: %s", req["device_id"], req["request_id"], e)
            return
        await store.update_link_state(self.db, req["tenant_id"], req["device_id"], state_values(info))


# ---- operations the API calls ----------------------------------------------------------------------
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


async def execute_action(settings: Settings, db: Database, who: Any, device_id: str,
                         action: str) -> tuple[int, dict[str, Any]]:
    """An action on a device's line -> (HTTP status, body): 202 with request_id while the carrier works
    on it, 200 when done. Every attempt is recorded in carrier_requests (refusals too) and audited."""
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
    except CarrierFailure as e:
        await store.add_request(db, **record, request_id=None, state=store.FAILED, detail=e.detail[:ERROR_MAX])
        await _audit_line(db, who, link["integration_id"], device_id, f"line.{action}",
                          {"carrier_device_id": cid, "state": "refused", "detail": e.detail})
        raise
    req = await store.add_request(db, **record, request_id=result.request_id,
                                  state=result.state, detail=result.detail)
    await _audit_line(db, who, link["integration_id"], device_id, f"line.{action}",
                      {"carrier_device_id": cid, "state": result.state, "request_id": result.request_id})
    if result.state == store.SUCCEEDED:
        await apply_settled(db, req | {"tenant_id": tenant_id})
    elif result.state == store.FAILED:
        raise Conflict(f"{integration['carrier_name']} did not {action} line {cid}: {result.detail or 'failed'}")
    body = {"device_id": device_id, "action": action, "state": result.state, "request_id": result.request_id,
            "detail": result.detail, "carrier_name": integration["carrier_name"], "carrier_device_id": cid,
            "sim_status": (await store.get_link(db, tenant_id, device_id))["sim_status"]}
    return (202 if result.state == store.PENDING else 200), body


async def _audit_line(db: Database, who: Any, integration_id: int, device_id: str, action: str,
                      changes: dict[str, Any]) -> None:
    await store.record_audit(db, tenant_id=who.tenant_id, user_id=who.sub, role=who.role, action=action,
                             integration_id=integration_id, device_id=device_id, changes=changes)


async def link_line(settings: Settings, db: Database, who: Any, device_id: str, integration_id: int,
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


async def unlink_line(db: Database, who: Any, device_id: str) -> None:
    old = await store.unlink_device(db, who.tenant_id, device_id)
    await _audit_line(db, who, old["integration_id"], device_id, "line.unlink",
                      {"carrier_device_id": old["carrier_device_id"], "iccid": old["iccid"]})


async def provision_line(settings: Settings, db: Database, who: Any, device_id: str, integration_id: int,
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
                                request_id=str(request_id), state=store.PENDING, detail="provisioning",
                                requested_by=who.sub)
    await _audit_line(db, who, integration_id, device_id, "line.provision",
                      {"iccid": iccid, "plan_id": plan_id, "carrier_device_id": link["carrier_device_id"],
                       "sim_status": link["sim_status"], "request_id": request_id})
    return {"provisioned": True, "device_id": device_id, "carrier_device_id": link["carrier_device_id"],
            "iccid": link["iccid"], "carrier_name": integration["carrier_name"],
            "claim_result": {k: link[k] for k in ("sim_status", "network_status", "ip_address", "plan", "msisdn")}
            | {"request_id": request_id}}


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
    link = await store.get_link(db, tenant_id, device_id)
    integration = await _usable(db, box_for(settings), link["integration_id"], tenant_id)
    diag = await _call(settings, integration, lambda p: p.get_diagnostics(link["carrier_device_id"]))
    return {"device_id": device_id, "carrier_name": integration["carrier_name"],
            "carrier_device_id": link["carrier_device_id"], "diagnostics": diag.data, "fetched_at": utcnow()}


async def plans(settings: Settings, db: Database, tenant_id: str, integration_id: int) -> dict[str, Any]:
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


# ---- integration writes (customer and operator routes) ----------------------------------------------
def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """400 for a carrier Pulse has no provider for; the provider's public URL when none is given."""
    try:
        cls = provider_class(fields["carrier_name"])
    except CarrierError as e:
        raise PulseError(str(e)) from None  # 400, as the documented system answers
    url = fields.get("api_base_url") or getattr(cls, "default_base_url", None)
    if not url:
        raise Invalid(f"api_base_url is required for {fields['carrier_name']}")
    return fields | {"api_base_url": url}


async def create_integration(settings: Settings, db: Database, tenant_id: str, fields: dict[str, Any],
                             who: Any, with_tenant: bool = False) -> dict[str, Any]:
    """Store it, register the callback with the carrier, audit it. `who`: the principal (sub, role)."""
    box = box_for(settings)
    created = await store.create_integration(db, box, tenant_id, _checked(fields), with_tenant=with_tenant)
    await register_callbacks(settings, db, created["id"])
    plain = {k: v for k, v in fields.items() if k not in store.SECRET_FIELDS and v is not None}
    await store.record_audit(db, tenant_id=tenant_id, user_id=who.sub, role=who.role, action="integration.create",
                             integration_id=created["id"],
                             changes=plain | {k: "set" for k in store.SECRET_FIELDS if fields.get(k)})
    return await store.get_integration(db, box, created["id"], with_tenant=with_tenant)


async def update_integration(settings: Settings, db: Database, integration_id: int, tenant_id: str | None,
                             fields: dict[str, Any], who: Any, with_tenant: bool = False) -> dict[str, Any]:
    box = box_for(settings)
    updated, changes = await store.update_integration(db, box, integration_id, tenant_id, fields, with_tenant=True)
    if changes:
        await register_callbacks(settings, db, integration_id)
    await store.record_audit(db, tenant_id=updated["tenant_id"], user_id=who.sub, role=who.role,
                             action="integration.update", integration_id=integration_id, changes=_json_safe(changes))
    return await store.get_integration(db, box, integration_id, with_tenant=with_tenant)


async def delete_integration(db: Database, integration_id: int, tenant_id: str | None, who: Any) -> dict[str, Any]:
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


def _redacted(body: Any) -> Any:
    """The callback body without the echoed credentials (never stored)."""
    if not isinstance(body, dict):
        return body
    return {k: ("***" if k.lower() in ("username", "password") else v) for k, v in body.items()}


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
        raise CarrierFailure("callback credentials do not match", 401) from None
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
    if event.kind != "request_result" or not event.request_id or event.state not in (store.SUCCEEDED, store.FAILED):
        return "recorded"
    row = await store.settle_request(db, integration_id, event.request_id, event.state, event.detail)
    if row is not None:
        await apply_settled(db, row)
        return "settled"
    return "duplicate" if await store.find_request(db, integration_id, event.request_id) else "unmatched"
