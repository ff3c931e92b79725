"""Scheduler: periodic platform tasks (command and job expiry, timer rules, escalation, syncs, OTA waves, lake
compaction and retention).

A plain async class; `pulse up` runs it as the `scheduler` Ray actor. Each task is one
idempotent `tick_*` method, so tests call them directly and a missed tick is caught up by the next.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Awaitable, Callable

from pulse.config.settings import Settings
from pulse.actors.runtime import RayRuntime, Runtime
from pulse.mqtt.cancel import cancel_until_done
from pulse.mqtt.publisher import Downlink
from pulse.services import audit, jobs, lake_lifecycle, ota, reports
from pulse.services.exports import ExportRunner
from pulse.storage import commands, rules
from pulse.storage.db import Database

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.runtime = runtime
        self.db: Database | None = None
        self.downlink: Downlink | None = None  # OTA waves' instructions
        self.runs: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []

    def _every(self) -> dict[str, tuple[float, Callable[[], Awaitable[int]]]]:
        return {"expire_commands": (self.settings.command_expiry_interval_s, self.tick_expire_commands),
                "expire_jobs": (self.settings.job_expiry_interval_s, self.tick_expire_jobs),
                "telemetry_gaps": (self.settings.timer_rules_interval_s, self.tick_telemetry_gaps),
                "presence": (self.settings.timer_rules_interval_s, self.tick_presence),
                "escalations": (self.settings.escalation_interval_s, self.tick_escalations),
                "digests": (60.0, self.tick_digests),
                "carrier_sync": (self.settings.carrier_check_interval_s, self.tick_carrier_sync),
                "carrier_requests": (self.settings.carrier_request_poll_interval_s, self.tick_carrier_requests),
                "telemetron": (self.settings.telemetron_drain_interval_s, self.tick_telemetron),
                "exports": (self.settings.export_interval_s, self.tick_exports),
                "audit_retention": (self.settings.audit_retention_interval_s, self.tick_audit_retention),
                "sla_reports": (self.settings.sla_report_check_interval_s, self.tick_sla_reports),
                "ota_waves": (self.settings.ota_wave_interval_s, self.tick_ota_waves),
                "lake_compaction": (self.settings.lake_compaction_interval_s, self.tick_lake_compaction),
                "lake_retention": (self.settings.lake_retention_interval_s, self.tick_lake_retention)}

    async def start(self) -> bool:
        if self._tasks:
            return True
        self.db = Database(self.settings.db_url)
        self.downlink = Downlink(self.settings)
        if self.runtime is None:
            rt = RayRuntime(self.settings)
            rt.connect()
            self.runtime = rt
        self._tasks = [asyncio.create_task(self._loop(name, period, fn))
                       for name, (period, fn) in self._every().items()]
        return True

    async def stop(self) -> None:
        await cancel_until_done(self._tasks)  # a loop may be inside an MQTT publish
        self._tasks = []
        if self.downlink:
            await self.downlink.close()
        if self.db:
            await self.db.dispose()

    async def stats(self) -> dict[str, int]:
        return dict(self.runs)

    async def tick_expire_commands(self) -> int:
        return await commands.expire_due(self.db)

    async def tick_expire_jobs(self, now: datetime | None = None) -> int:
        """Open executions of expired jobs time out; jobs left without an open one complete (docs/jobs.md)."""
        return await jobs.expire_due(self.db, now)

    async def tick_telemetry_gaps(self) -> int:
        """Timers for silent devices: no message has to arrive for a gap alert to open."""
        keys = await rules.timer_devices(self.db)
        return await self.runtime.tick(keys, int(time.time() * 1000)) if keys else 0

    async def tick_presence(self) -> int:
        """Built-in NO_HEARTBEAT alerts for devices that went silent (or disconnected)."""
        return await self.runtime.tick(None, int(time.time() * 1000))

    async def tick_escalations(self) -> int:
        """Unacknowledged alerts move up their escalation policy (timers live in the store)."""
        return await self.runtime.notifier_call("escalate_due")

    async def tick_digests(self) -> int:
        return await self.runtime.notifier_call("send_digests")

    async def tick_carrier_sync(self) -> int:
        """Carrier integrations whose own sync interval has passed (docs/carriers.md)."""
        return await self.runtime.service_call("carrier-sync", "sync_due")

    async def tick_carrier_requests(self) -> int:
        """Pending asynchronous carrier requests the callbacks have not settled yet."""
        return await self.runtime.service_call("carrier-sync", "poll_requests")

    async def tick_telemetron(self) -> int:
        """Deliver the Telemetron outbox (docs/telemetron.md); a device Telemetron refused waits its backoff."""
        return await self.runtime.service_call("telemetron-sync", "drain")

    async def tick_exports(self, now: datetime | None = None) -> int:
        """Export jobs: remove files past their 24 h, then run pending jobs (docs/exports.md)."""
        return await ExportRunner(self.settings, self.db, self.runtime).tick(now)

    async def tick_audit_retention(self) -> int:
        """The tenant audit trail keeps `audit_retention_days` (docs/audit-log.md)."""
        return await audit.drop_expired(self.db, self.settings.audit_retention_days)

    async def tick_sla_reports(self) -> int:
        """Yesterday's SLA report of every active tenant, once per tenant-day (docs/reports.md)."""
        return await reports.daily_sla_reports(self.db, self.settings, datetime.now(timezone.utc))

    async def tick_ota_waves(self) -> int:
        """Running OTA campaigns: time-outs, auto-abort, completion and the next wave (docs/ota.md)."""
        return await ota.run_waves(self.db, self.settings, self.downlink)

    async def tick_lake_compaction(self) -> int:
        """Closed tenant-days of the lake become one sorted, de-duplicated file each (docs/lake.md)."""
        return await lake_lifecycle.compact_lake(self.settings)

    async def tick_lake_retention(self) -> int:
        """Tenant-days older than their tenant's retention are deleted whole."""
        return await lake_lifecycle.expire_lake(self.db, self.settings)

    async def _loop(self, name: str, period: float, fn: Callable[[], Awaitable[int]]) -> None:
        while True:
            try:
                await fn()
                self.runs[name] = self.runs.get(name, 0) + 1
            except Exception:  # a failing task must not stop the others; retried next period
                log.exception("scheduled task %s failed", name)
            await asyncio.sleep(period)
