"""TelemetronSync: delivers the Telemetron outbox — owner and device changes — in order, per device.

A plain async class; `pulse up` hosts it as the `telemetron-sync` service actor and the scheduler
calls `drain()` every `telemetron_drain_interval_s`. Per enabled integration, the tenant's pending
rows are grouped by device and each device's queue is sent in id order:
- accepted -> the row is DELIVERED (only then);
- Telemetron down, timing out or answering 5xx/429 after the client's retries (`Unavailable`) ->
  the row stays PENDING with a backoff (`telemetron_backoff_*`) and the device's queue stops
  there, keeping order; other devices go on (after `UNAVAILABLE_PER_DRAIN` such failures the rest
  of the tenant waits for the next drain: they would only wait for the same dead server);
- 401 -> the tenant stops: nothing of it is sent until its API key changes (or 10 min pass);
- any other refusal (400, 404, 409 the sync cannot resolve) -> the row is FAILED with the error
  and the queue goes on: a change Telemetron will never take must not block the device forever.
Replays are harmless: customers are upserted through our id map (409 -> queryCustomer),
devices are upserted, assigning an assigned pair and unassigning a missing one are no-ops.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError

from pulse.config.settings import Settings
from pulse.domain.telemetron import ASSIGN, TOPIC, UNASSIGN, UPSERT_CUSTOMER, UPSERT_DEVICE
from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.integrations.telemetron import (CustomerUpsert, DeviceAssignment, DeviceUnassignment, DeviceUpsert,
                                           TelemetronAuthError, TelemetronClient, TelemetronError)
from pulse.storage import outbox
from pulse.storage import telemetron as store
from pulse.services.outbound import OutboundWorker
from pulse.storage.db import Database, utcnow

log = logging.getLogger(__name__)

UNAVAILABLE_PER_DRAIN = 3
TENANTS_IN_PARALLEL = 4
AUTH_PAUSE = timedelta(minutes=10)
PRUNE_EVERY_S = 3600.0


class TelemetronSync(OutboundWorker):
    def __init__(self, settings: Settings, db: Database | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings, db, clock)
        self._lock = asyncio.Lock()  # one drain at a time: two would send a device's rows twice
        self._kicked: set[asyncio.Task] = set()  # drains started by resync (they queue on the lock)
        self._refused: dict[str, tuple[Any, datetime]] = {}  # tenant -> (integration updated_at, paused until)
        self._last_prune = 0.0
        self._stats: Counter[str] = Counter()

    async def start(self, runtime: Any = None) -> bool:
        """`runtime` (the actor runtime, handed over by it) is unused: deliveries need no actor."""
        return True  # no loop of its own: the scheduler calls drain()

    async def stop(self) -> None:
        for task in self._kicked:
            task.cancel()
        await asyncio.gather(*self._kicked, return_exceptions=True)
        await self._close_owned()

    async def stats(self) -> dict[str, int]:
        return dict(self._stats)

    # ---- API ------------------------------------------------------------------------------------
    async def drain(self, tenant_id: str | None = None) -> int:
        """Send what is due (of one tenant, or all); returns the rows delivered."""
        async with self._lock:
            now = self.clock()
            with_work = await outbox.tenants_with_pending(self.db, TOPIC)
            todo = [i for i in await store.enabled_integrations(self.db, self.box, tenant_id)
                    if i["tenant_id"] in with_work and not self._paused(i, now)]
            limit = asyncio.Semaphore(TENANTS_IN_PARALLEL)

            async def one(integration: dict[str, Any]) -> int:
                async with limit:
                    return await self._drain_tenant(integration, now)

            delivered = sum(await asyncio.gather(*(one(i) for i in todo)))
            await self._prune(now)
            self._stats["drains"] += 1
            return delivered

    async def resync(self, tenant_id: str) -> int:
        """Enqueue a full snapshot of the tenant's owned devices and start a drain; the rows enqueued."""
        enqueued = await store.resync(self.db, tenant_id)
        task = asyncio.create_task(self._drain_quietly(tenant_id))
        self._kicked.add(task)
        task.add_done_callback(self._kicked.discard)
        return enqueued

    async def status(self, tenant_id: str) -> dict[str, Any]:
        return await store.status(self.db, tenant_id)

    # ---- draining -------------------------------------------------------------------------------
    def _paused(self, integration: Mapping[str, Any], now: datetime) -> bool:
        held = self._refused.get(integration["tenant_id"])
        return held is not None and held[0] == integration["updated_at"] and now < held[1]

    async def _drain_quietly(self, tenant_id: str) -> None:
        try:
            await self.drain(tenant_id)
        except Exception:  # the scheduler's next drain retries; nothing is lost
            log.exception("telemetron: drain after resync of %s failed", tenant_id)

    def _client(self, integration: Mapping[str, Any]) -> TelemetronClient:
        s = self.settings
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=s.telemetron_http_timeout_s, follow_redirects=False)
        policy = RetryPolicy(attempts=s.telemetron_retry_attempts, base_delay_s=s.telemetron_retry_base_s,
                             max_delay_s=max(s.telemetron_retry_base_s * 8, s.telemetron_retry_base_s))
        return TelemetronClient(integration["base_url"], integration["api_key"], timeout_s=s.telemetron_http_timeout_s,
                                policy=policy, http=self._http)

    async def _drain_tenant(self, integration: Mapping[str, Any], now: datetime) -> int:
        tenant_id = integration["tenant_id"]
        if not integration["api_key"]:
            await store.record_drain(self.db, tenant_id, "the stored API key does not decrypt with the configured "
                                     "secrets_key: send it again", now)
            return 0
        queues: dict[str, list[dict[str, Any]]] = {}
        for row in await outbox.pending(self.db, TOPIC, tenant_id, self.settings.telemetron_batch_size, now):
            queues.setdefault(row["aggregate_id"], []).append(row)
        due = list(queues.values())
        if not due:
            return 0
        client, delivered, errors = self._client(integration), 0, []
        try:
            for queue in due:
                try:
                    delivered += await self._drain_device(client, tenant_id, queue)
                except TelemetronAuthError as e:
                    errors.append(f"API key refused: {e.message}")
                    self._refused[tenant_id] = (integration["updated_at"], now + AUTH_PAUSE)
                    break
                except Unavailable as e:
                    errors.append(f"Telemetron unavailable: {e}")
                    if len(errors) >= UNAVAILABLE_PER_DRAIN:
                        break
        except Exception as e:  # a bug or a store failure: this tenant waits, the others go on
            log.exception("telemetron: drain of %s failed", tenant_id)
            errors.append(f"internal error: {type(e).__name__}")
        await store.record_drain(self.db, tenant_id, errors[-1] if errors else None, self.clock())
        return delivered

    async def _drain_device(self, client: TelemetronClient, tenant_id: str, queue: list[dict[str, Any]]) -> int:
        done = 0
        for row in queue:
            try:
                await self._apply(client, tenant_id, row)
            except TelemetronAuthError:
                raise  # the key, not the row: the row stays as it is
            except Unavailable as e:
                await outbox.defer(self.db, row["id"], str(e), self.clock() + self._backoff(row["attempts"] + 1))
                self._stats["deferred"] += 1
                raise
            except TelemetronError as e:
                log.warning("telemetron: %s of %s/%s refused for good: %s", row["operation"], tenant_id,
                            row["aggregate_id"], e)
                await outbox.mark_failed(self.db, row["id"], str(e))
                self._stats["failed"] += 1
                continue
            await outbox.mark_delivered(self.db, row["id"])
            self._stats["delivered"] += 1
            done += 1
        return done

    def _backoff(self, attempts: int) -> timedelta:
        s = self.settings
        seconds = s.telemetron_backoff_base_s * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, s.telemetron_backoff_max_s))

    async def _prune(self, now: datetime) -> None:
        if time.monotonic() - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = time.monotonic()
        await outbox.prune_delivered(self.db, now - timedelta(days=self.settings.telemetron_outbox_retention_days))

    # ---- one row --------------------------------------------------------------------------------
    async def _apply(self, client: TelemetronClient, tenant_id: str, row: Mapping[str, Any]) -> None:
        op, p = row["operation"], row["payload"]
        try:
            if op == UPSERT_CUSTOMER:
                await self._upsert_customer(client, tenant_id, p)
            elif op == UPSERT_DEVICE:
                await client.upsert_device(DeviceUpsert.model_validate(p))
            elif op == ASSIGN:
                result = await client.assign_device_to_owners(DeviceAssignment(
                    deviceIdentifier=p["device_identifier"], customerEmails=p["emails"], autoCreateDevice=True,
                    deviceType=p["device_type"]))
                await self._remember_assigned(tenant_id, result)
            elif op == UNASSIGN:
                await self._unassign(client, p)
            else:
                raise TelemetronError(None, f"unknown outbox operation {op!r}")
        except (ValidationError, KeyError, TypeError) as e:
            raise TelemetronError(None, f"malformed {op} row: {e}") from None

    async def _upsert_customer(self, client: TelemetronClient, tenant_id: str, p: Mapping[str, Any]) -> None:
        """Update through our id map; else create, and on 409 (the e-mail exists there, e.g. our map
        was lost in a crash) find the customer by e-mail and update it."""
        body = CustomerUpsert(email=p["email"], name=p.get("name"), phone=p.get("phone"), address=p.get("address"))
        known = await store.telemetron_customer_id(self.db, tenant_id, p["customer_id"])
        if known:
            try:
                await client.create_or_update_customer(body.model_copy(update={"telemetronCustomerId": known}))
                return
            except TelemetronError as e:
                if e.status != 404:
                    raise
                await store.forget_customer(self.db, tenant_id, p["customer_id"])  # deleted there: create again
        try:
            tid = await client.create_or_update_customer(body)
        except TelemetronError as e:
            if e.status != 409:
                raise
            found = await client.query_customer(body.email)
            if not found or not found.get("id"):
                raise TelemetronError(409, f"customer {body.email} exists but queryCustomer does not find it") from None
            tid = str(found["id"])
            await client.create_or_update_customer(body.model_copy(update={"telemetronCustomerId": tid}))
        await store.remember_customers(self.db, tenant_id, {p["customer_id"]: tid})

    async def _unassign(self, client: TelemetronClient, p: Mapping[str, Any]) -> None:
        try:
            await client.unassign_device_from_owner(DeviceUnassignment(
                deviceIdentifier=p["device_identifier"], customerEmail=p["email"]))
        except TelemetronError as e:
            if e.status != 404:
                raise
            # device or customer unknown there: there is no link to remove, which is what we want

    async def _remember_assigned(self, tenant_id: str, result: Mapping[str, Any]) -> None:
        """Assign answers with each customer's id: keep the map current without another request."""
        entries = [e for e in result.get("assignedCustomers") or [] if isinstance(e, dict)]
        by_email = {str(e.get("email", "")).lower(): str(e["customerId"]) for e in entries if e.get("customerId")}
        ours = await store.customer_ids_by_email(self.db, tenant_id, list(by_email))
        await store.remember_customers(self.db, tenant_id, {cid: by_email[email] for email, cid in ours.items()})
