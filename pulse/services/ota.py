"""OTA campaigns (docs/ota.md): create one over a group or explicit devices, start, pause and abort it,
roll it out in waves, and take the devices' reports.

- The rules (transitions, reports, what a tick decides) are `pulse.domain.ota`; the rows and their
  locking `pulse.storage.ota`. This module resolves targets, builds the `…/ota` instructions (with a
  fresh signed link for an image Pulse hosts) and hands them to the `Downlink`.
- `run_waves` is the scheduler's `tick_ota_waves`; starting a campaign sends its first wave at once.
- `handle_reports` and `reinstruct` are what `field_ops` calls for device shards: progress reports,
  and the instruction again for a device that reconnects while dispatched and not finished.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Mapping

from pulse.config.settings import Settings
from pulse.domain import ota as rules
from pulse.domain.messages import OtaStatus, Publish
from pulse.errors import BadRequest, NotFound
from pulse.services import firmware
from pulse.services.context import ServiceContext
from pulse.services.ports import Downlink
from pulse.storage import firmware as firmware_store
from pulse.storage import ota as store
from pulse.storage.db import Database, utcnow

log = logging.getLogger(__name__)


async def list_campaigns(ctx: ServiceContext, tenant_id: str, status: str | None, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_campaigns(ctx.db, tenant_id, status, limit, offset)


async def get(ctx: ServiceContext, tenant_id: str, campaign_id: int) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, campaign_id)


async def list_devices(ctx: ServiceContext, tenant_id: str, campaign_id: int, status: str | None, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    return await store.list_devices(ctx.db, tenant_id, campaign_id, status, limit, offset)


async def create(ctx: ServiceContext, tenant_id: str, fields: Mapping[str, Any], created_by: str) -> dict[str, Any]:
    """A CREATED campaign with one PENDING row per target: the members of `target_group_id` (static or
    dynamic, resolved now) or the `device_ids` given."""
    try:
        version = await firmware_store.get(ctx.db, tenant_id, fields["firmware_version_id"])
    except NotFound:
        raise NotFound("Firmware version not found") from None
    if not version["file_url"]:
        raise BadRequest("Firmware version has no image: upload one or register its file_url")
    if fields.get("target_group_id") is not None:
        targets = await store.group_members(ctx.db, tenant_id, fields["target_group_id"])
        if not targets:
            raise BadRequest("Device group has no members")
    else:
        targets = list(dict.fromkeys(fields["device_ids"]))
        missing = await store.missing_devices(ctx.db, tenant_id, targets)
        if missing:
            raise NotFound(f"Devices not found: {', '.join(missing[:10])}" + (" …" if len(missing) > 10 else ""))
    return await store.create(ctx.db, tenant_id, fields, targets, created_by, utcnow())


async def start(ctx: ServiceContext, tenant_id: str, campaign_id: int) -> dict[str, Any]:
    """RUNNING (from CREATED or PAUSED), and the first wave goes out now rather than at the next tick."""
    done = await store.transition(ctx.db, tenant_id, campaign_id, "start", utcnow())
    await advance(ctx.db, ctx.settings, ctx.downlink, campaign_id)
    return done


async def pause(ctx: ServiceContext, tenant_id: str, campaign_id: int) -> dict[str, Any]:
    """No new waves; dispatched devices go on (and still get their instruction when they reconnect)."""
    return await store.transition(ctx.db, tenant_id, campaign_id, "pause", utcnow())


async def abort(ctx: ServiceContext, tenant_id: str, campaign_id: int, by: str) -> dict[str, Any]:
    """ABORTED: PENDING devices are SKIPPED; dispatched ones may still report how they ended."""
    return await store.transition(ctx.db, tenant_id, campaign_id, "abort", utcnow(), f"aborted by {by}")


# ---- waves -----------------------------------------------------------------------------------------
async def run_waves(db: Database, settings: Settings, downlink: Downlink) -> int:
    """One tick over every RUNNING campaign (the scheduler's `tick_ota_waves`); -> devices instructed."""
    sent = 0
    for campaign_id in await store.running(db):
        try:
            sent += await advance(db, settings, downlink, campaign_id)
        except Exception:  # one broken campaign must not hold up the others; retried next tick
            log.exception("OTA campaign %s: wave tick failed", campaign_id)
    return sent


async def advance(db: Database, settings: Settings, downlink: Downlink, campaign_id: int) -> int:
    """Time-outs, auto-abort, completion, or the next wave of one campaign; -> devices instructed."""
    tick = await store.advance(db, campaign_id, utcnow(), settings.ota_wave_interval_s,
                               settings.ota_device_timeout_s)
    if tick is None:
        return 0
    c = tick.campaign
    if tick.timed_out:
        log.info("OTA campaign %s: %d devices timed out", campaign_id, tick.timed_out)
    if tick.decision.abort:
        log.warning("OTA campaign %s aborted: %s", campaign_id, tick.decision.reason)
    if not tick.dispatched:
        return 0
    instruction = _instruction(settings, c["tenant_id"], campaign_id, tick.firmware)
    await downlink.publish([instruction.publish(c["tenant_id"], d) for d in tick.dispatched])
    log.info("OTA campaign %s: wave %d instructs %d devices", campaign_id, c["waves"] + 1, len(tick.dispatched))
    return len(tick.dispatched)


def _instruction(settings: Settings, tenant_id: str, campaign_id: int, version: Mapping[str, Any]) -> rules.Instruction:
    """The `…/ota` message: a hosted image's URL is a signed link made now (it expires), absolute."""
    url = version["file_url"]
    if version["blob_key"] is not None:
        url = firmware.signed_image_url(settings, tenant_id, version["id"], time.time())
    return rules.Instruction(campaign_id, version["id"], version["version"], _absolute(settings, url),
                             version["checksum_sha256"], version["file_size_bytes"])


def _absolute(settings: Settings, url: str) -> str:
    """A path on Pulse (no `PULSE_PUBLIC_BASE_URL`) made absolute on the HTTP address Pulse listens on."""
    if url.startswith("/"):
        return f"http://{settings.http_host}:{settings.http_port}{url}"
    return url


# ---- the device side (field_ops) -------------------------------------------------------------------
async def handle_reports(db: Database, reports: Sequence[OtaStatus], now: datetime | None = None) -> None:
    """Devices' `…/ota/status` reports; those that change nothing (unknown campaign, not a target, a
    step back, a finished device) are logged, never raised."""
    if not reports:
        return
    for r, why in await store.apply_reports(db, reports, now or utcnow()):
        # a device talking about a campaign it is not in is worth a look; a repeat is routine (QoS 1)
        level = logging.INFO if why == store.UNKNOWN else logging.DEBUG
        log.log(level, "OTA report %s/%s on campaign %s %s ignored: %s", r.tenant_id, r.device_id, r.campaign_id,
                r.status, why)


async def reinstruct(db: Database, settings: Settings, listening: Sequence[tuple[str, str]]) -> list[Publish]:
    """The instruction again for every listening device dispatched in a RUNNING or PAUSED campaign and
    not finished: a device offline during its wave gets it when it reconnects, until the campaign ends."""
    if not listening:
        return []
    return [_instruction(settings, r["tenant_id"], r["campaign_id"], {
        "id": r["fw_id"], "version": r["fw_version"], "file_url": r["fw_url"], "blob_key": r["fw_blob_key"],
        "checksum_sha256": r["fw_checksum"], "file_size_bytes": r["fw_size"],
    }).publish(r["tenant_id"], r["device_id"]) for r in await store.open_instructions(db, listening)]
