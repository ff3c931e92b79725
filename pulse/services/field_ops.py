"""What device shards hand over from field operations: OTA and job progress reported by devices, and
devices that are listening again (reconnected and subscribed), which get what the store holds for them.

Called by the shard once per batch that has any (they are rare next to telemetry); returns the MQTT
messages to publish: replies to job updates, OTA instructions and job notifications."""
from __future__ import annotations

from pulse.config.settings import Settings
from pulse.domain.messages import FieldReport, JobUpdate, OtaStatus, Publish
from pulse.services import jobs, ota
from pulse.storage.db import Database


async def handle(db: Database, settings: Settings, reports: list[FieldReport],
                 listening: list[tuple[str, str]]) -> list[Publish]:
    publishes: list[Publish] = []
    await ota.handle_reports(db, [r for r in reports if isinstance(r, OtaStatus)])
    publishes.extend(await ota.reinstruct(db, settings, listening))
    # jobs (docs/jobs.md): updates answered accepted/rejected; listening devices notified of open executions
    publishes.extend(await jobs.on_updates(db, [r for r in reports if isinstance(r, JobUpdate)]))
    publishes.extend(await jobs.notifications(db, listening))
    return publishes
