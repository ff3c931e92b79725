"""The scheduled carrier sync: usage and line state from the carriers, and asynchronous requests settled.

`CarrierSync` is a plain async class; `pulse up` hosts it as the `carrier-sync` Ray actor and the
scheduler calls `sync_due` and `poll_requests` (docs/carriers.md):
- `sync_due`: every enabled, sync-enabled integration whose `sync_interval_minutes` has passed is
  synced on its own (one failing never stops the others): usage of all its lines (bulk), then each
  line's device info. Outcome per integration: success (every line), partial (some lines failed),
  error (none, or the carrier refused the credentials or was unreachable).
- `poll_requests`: asynchronous carrier requests still pending ask the carrier where they stand;
  a finished one is settled (once, also against a racing callback) and its line refreshed.

Providers, conversions and settling are shared with the carrier use cases (pulse.services.carriers).
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pulse.config.settings import Settings
from pulse.domain.carriers import PENDING
from pulse.domain.messages import AlertEvent
from pulse.errors import Conflict, NotFound
from pulse.integrations.carriers.base import (ActionResult, CarrierAuthError, CarrierError, CarrierProvider,
                                              NotSupported, Usage)
from pulse.integrations.http import Unavailable
from pulse.services.carriers import (ERROR_MAX, apply_settled, open_provider, open_usage_alerts, state_values,
                                     store_usage)
from pulse.services.ports import Runtime
from pulse.storage import carriers as store
from pulse.storage.db import Database, utcnow
from pulse.storage.secrets import SecretBox, box_for

log = logging.getLogger(__name__)

REQUEST_GIVE_UP = timedelta(hours=72)  # ThingSpace activations may take up to 24 h under load
SYNC_CONCURRENCY = 4  # integrations synced at once (each talks to its own carrier account)


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
            self._stats["alerts"] += await open_usage_alerts(self.db, self.runtime, events)
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
                if not provider.polls(req["action"]) and not self._given_up(req):
                    continue  # the carrier answers this one only by callback
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
                if result.state == PENDING:
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
