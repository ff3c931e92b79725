"""What device shards hand over from field operations: OTA and job progress reported by devices, and
devices that are listening again (reconnected and subscribed), which get what the store holds for them.

Called by the shard once per batch that has any (they are rare next to telemetry); returns the MQTT
messages to publish: replies to job updates, OTA instructions and job notifications."""
from __future__ import annotations

from pulse.domain.messages import FieldReport, Publish
from pulse.storage.db import Database


async def handle(db: Database, reports: list[FieldReport], listening: list[tuple[str, str]]) -> list[Publish]:
    publishes: list[Publish] = []
    return publishes
