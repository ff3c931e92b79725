"""OTA campaigns' rows (docs/ota.md): campaigns, their target devices' progress, waves and reports.

Every write that changes a campaign's devices or counters starts by writing the campaign row (a
conditional status update, or its `updated_at`): on PostgreSQL that locks the row, on SQLite it takes
the write lock, so a wave tick, a device report and a user's pause or abort of one campaign happen
one after the other, never interleaved, and `succeeded`/`failed` always match the device rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain import ota as rules
from pulse.domain.messages import OtaStatus
from pulse.errors import NotFound
from pulse.storage import groups
from pulse.storage.db import Database, page_rows
from pulse.storage.tables import devices, firmware_versions as fw, ota_campaigns as campaigns, \
    ota_device_status as targets

NOT_FOUND = "Campaign not found"
CAMPAIGN_FIELDS = ("name", "firmware_version_id", "target_group_id", "rollout_strategy", "rollout_rate",
                   "abort_threshold")
# what a campaign answer repeats of its firmware version (documented names)
FIRMWARE_COLUMNS = (fw.c.version.label("firmware_version"), fw.c.file_url.label("firmware_url"),
                    fw.c.checksum_sha256.label("firmware_checksum"), fw.c.device_type.label("firmware_device_type"))
_CHUNK = 500  # ids per IN (...) list


def _campaign(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    if "firmware_device_type" in d:
        d["firmware_device_type"] = d["firmware_device_type"] or None  # '' = for any device type
    return d


def _with_firmware() -> sa.Select:
    return sa.select(campaigns, *FIRMWARE_COLUMNS).join(fw, fw.c.id == campaigns.c.firmware_version_id)


# ---- targets --------------------------------------------------------------------------------------
async def group_members(db: Database, tenant_id: str, group_id: str) -> list[str]:
    """The devices of a static or dynamic group now (decommissioned ones left out), by id."""
    async with db.connect() as conn:
        try:
            conds = await groups.member_conditions(conn, tenant_id, group_id)
        except NotFound:
            raise NotFound("Device group not found") from None
        rows = await conn.execute(sa.select(devices.c.device_id).where(
            devices.c.tenant_id == tenant_id, devices.c.status != "REVOKED", *conds).order_by(devices.c.device_id))
        return [r.device_id for r in rows]


async def missing_devices(db: Database, tenant_id: str, device_ids: Sequence[str]) -> list[str]:
    """Which of `device_ids` the tenant has not registered (or decommissioned)."""
    found: set[str] = set()
    async with db.connect() as conn:
        for i in range(0, len(device_ids), _CHUNK):
            rows = await conn.execute(sa.select(devices.c.device_id).where(
                devices.c.tenant_id == tenant_id, devices.c.status != "REVOKED",
                devices.c.device_id.in_(device_ids[i:i + _CHUNK])))
            found |= {r.device_id for r in rows}
    return [d for d in device_ids if d not in found]


# ---- campaigns -------------------------------------------------------------------------------------
async def create(db: Database, tenant_id: str, fields: Mapping[str, Any], device_ids: Sequence[str],
                 created_by: str, now: datetime) -> dict[str, Any]:
    """A CREATED campaign and one PENDING row per target device, in one transaction."""
    async with db.begin() as conn:
        campaign_id = (await conn.execute(campaigns.insert().values(
            tenant_id=tenant_id, status=rules.CREATED, total_devices=len(device_ids), succeeded=0, failed=0,
            waves=0, created_at=now, updated_at=now, created_by=created_by,
            **{k: fields.get(k) for k in CAMPAIGN_FIELDS}).returning(campaigns.c.id))).scalar_one()
        await conn.execute(targets.insert(), [
            {"campaign_id": campaign_id, "tenant_id": tenant_id, "device_id": d, "status": rules.PENDING,
             "created_at": now, "updated_at": now} for d in device_ids])
    return await get(db, tenant_id, campaign_id)


async def _breakdown(conn: AsyncConnection, campaign_id: int) -> dict[str, int]:
    rows = await conn.execute(sa.select(targets.c.status, sa.func.count()).where(
        targets.c.campaign_id == campaign_id).group_by(targets.c.status))
    return {status: n for status, n in rows}


async def get(db: Database, tenant_id: str, campaign_id: int) -> dict[str, Any]:
    """The campaign with its firmware's version, URL, checksum and device type, and devices per status."""
    async with db.connect() as conn:
        row = (await conn.execute(_with_firmware().where(
            campaigns.c.tenant_id == tenant_id, campaigns.c.id == campaign_id))).first()
        if row is None:
            raise NotFound(NOT_FOUND)
        breakdown = await _breakdown(conn, campaign_id)
    return {**_campaign(row), "status_breakdown": breakdown}


async def list_campaigns(db: Database, tenant_id: str, status: str | None, limit: int,
                         offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first; `total` counts every campaign the filter matches."""
    q = _with_firmware().where(campaigns.c.tenant_id == tenant_id)
    if status:
        q = q.where(campaigns.c.status == status)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [campaigns.c.created_at.desc(), campaigns.c.id.desc()], limit, offset)
    return [_campaign(r) for r in rows], total


async def list_devices(db: Database, tenant_id: str, campaign_id: int, status: str | None, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    """The campaign's devices, oldest row first (then by id); NotFound for another tenant's campaign."""
    q = sa.select(targets).where(targets.c.campaign_id == campaign_id)
    if status:
        q = q.where(targets.c.status == status)
    async with db.connect() as conn:
        if (await _owned(conn, tenant_id, campaign_id)) is None:
            raise NotFound(NOT_FOUND)
        rows, total = await page_rows(conn, q, [targets.c.created_at, targets.c.device_id], limit, offset)
    return [dict(r._mapping) for r in rows], total


async def _owned(conn: AsyncConnection, tenant_id: str, campaign_id: int) -> sa.Row | None:
    return (await conn.execute(sa.select(campaigns).where(
        campaigns.c.tenant_id == tenant_id, campaigns.c.id == campaign_id))).first()


async def transition(db: Database, tenant_id: str, campaign_id: int, action: str, now: datetime,
                     reason: str | None = None) -> dict[str, Any]:
    """Start, pause or abort (`action`, a function of `pulse.domain.ota` name); the domain refuses a
    transition its status does not allow. Conditional on the status read, so a concurrent change
    (a tick completing the campaign) is seen and decided on again."""
    decide = {"start": rules.start, "pause": rules.pause, "abort": rules.abort}[action]
    while True:
        async with db.begin() as conn:
            row = await _owned(conn, tenant_id, campaign_id)
            if row is None:
                raise NotFound(NOT_FOUND)
            status = decide(row.status)
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if action == "start" and row.started_at is None:
                values["started_at"] = now
            if action == "abort":
                values.update(completed_at=now, abort_reason=reason)
            done = await conn.execute(campaigns.update().where(
                campaigns.c.id == campaign_id, campaigns.c.status == row.status).values(**values))
            if done.rowcount != 1:
                continue  # changed meanwhile: decide on its new status
            if action == "abort":
                await _skip_pending(conn, campaign_id, now)
            return {"id": campaign_id, "status": status}


async def _skip_pending(conn: AsyncConnection, campaign_id: int, now: datetime) -> None:
    await conn.execute(targets.update().where(
        targets.c.campaign_id == campaign_id, targets.c.status == rules.PENDING,
    ).values(status=rules.SKIPPED, completed_at=now, updated_at=now))


# ---- wave ticks ------------------------------------------------------------------------------------
async def running(db: Database) -> list[int]:
    """Ids of every tenant's RUNNING campaigns, oldest first."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(campaigns.c.id).where(campaigns.c.status == rules.RUNNING)
                                  .order_by(campaigns.c.id))
        return [r.id for r in rows]


@dataclass
class Tick:
    """What one tick did to a campaign, and what the service must send."""

    campaign: dict[str, Any]  # the campaign's row with its firmware's columns (`firmware` below)
    firmware: dict[str, Any]
    decision: rules.TickDecision
    timed_out: int
    dispatched: list[str]


async def advance(db: Database, campaign_id: int, now: datetime, wave_interval_s: float,
                  device_timeout_s: float) -> Tick | None:
    """One tick of a campaign, in one transaction: time-outs, then the domain's decision (abort,
    complete, or the next wave's devices marked DOWNLOADING). None when the campaign is not RUNNING."""
    async with db.begin() as conn:
        locked = await conn.execute(campaigns.update().where(
            campaigns.c.id == campaign_id, campaigns.c.status == rules.RUNNING).values(updated_at=now))
        if locked.rowcount != 1:
            return None
        timed_out = await _time_out(conn, campaign_id, now, device_timeout_s)
        row = (await conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id))).one()
        counts = await _breakdown(conn, campaign_id)
        canary_open = 0
        if row.rollout_strategy == rules.CANARY and row.waves >= rules.CANARY_WAVE:
            canary_open = (await conn.execute(sa.select(sa.func.count()).where(
                targets.c.campaign_id == campaign_id, targets.c.wave == rules.CANARY_WAVE,
                targets.c.status.in_(rules.DISPATCHED)))).scalar_one()
        decision = rules.decide(rules.Campaign(
            row.rollout_strategy, row.rollout_rate, row.abort_threshold, row.succeeded, row.failed, counts,
            row.waves, canary_open, row.last_wave_at), now, wave_interval_s)
        dispatched: list[str] = []
        if decision.abort:
            await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(
                status=rules.ABORTED, completed_at=now, abort_reason=decision.reason))
            await _skip_pending(conn, campaign_id, now)
        elif decision.complete:
            await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(
                status=rules.COMPLETED, completed_at=now))
        elif decision.dispatch:
            dispatched = await _dispatch(conn, campaign_id, row.waves + 1, decision.dispatch, now)
        firmware = dict((await conn.execute(sa.select(fw).where(fw.c.id == row.firmware_version_id))).one()._mapping)
    return Tick(dict(row._mapping), firmware, decision, timed_out, dispatched)


async def _time_out(conn: AsyncConnection, campaign_id: int, now: datetime, device_timeout_s: float) -> int:
    """Dispatched devices that did not finish in time FAIL, and count as failed; -> how many."""
    done = await conn.execute(targets.update().where(
        targets.c.campaign_id == campaign_id, targets.c.status.in_(rules.DISPATCHED),
        targets.c.started_at < rules.timeout_cutoff(now, device_timeout_s),
    ).values(status=rules.FAILED, completed_at=now, updated_at=now,
             error_message=f"timed out: not finished {device_timeout_s:g} s after the instruction"))
    if done.rowcount:
        await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(
            failed=campaigns.c.failed + done.rowcount))
    return done.rowcount


async def _dispatch(conn: AsyncConnection, campaign_id: int, wave: int, size: int, now: datetime) -> list[str]:
    """The next `size` PENDING devices (oldest row, then id) become DOWNLOADING in wave `wave`."""
    picked = [r.device_id for r in await conn.execute(
        sa.select(targets.c.device_id).where(targets.c.campaign_id == campaign_id, targets.c.status == rules.PENDING)
        .order_by(targets.c.created_at, targets.c.device_id).limit(size))]
    for i in range(0, len(picked), _CHUNK):
        await conn.execute(targets.update().where(
            targets.c.campaign_id == campaign_id, targets.c.device_id.in_(picked[i:i + _CHUNK]),
        ).values(status=rules.DOWNLOADING, wave=wave, started_at=now, updated_at=now, progress_pct=0))
    await conn.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(
        waves=wave, last_wave_at=now))
    return picked


# ---- devices' reports and reconnects ---------------------------------------------------------------
UNKNOWN = "no started campaign of its tenant has this device as a target"
NO_CHANGE = "nothing new (a repeat, a step back, or the device finished)"


async def apply_reports(db: Database, reports: Sequence[OtaStatus],
                        now: datetime) -> list[tuple[OtaStatus, str]]:
    """Device reports (in arrival order) on their campaigns' rows, with the counters and, on SUCCESS,
    the device's `fw_version`, in one transaction. Reports on a campaign of another tenant, or from a
    device that is not one of its targets, change nothing. -> every report that did not apply, with
    why (UNKNOWN or NO_CHANGE), for the caller to log."""
    keys = sorted({(r.campaign_id, r.tenant_id) for r in reports})
    async with db.begin() as conn:
        await conn.execute(campaigns.update().where(  # the lock, see the top
            sa.tuple_(campaigns.c.id, campaigns.c.tenant_id).in_(keys)).values(updated_at=now))
        current = await _targets_of(conn, [(r.campaign_id, r.device_id) for r in reports])
        ignored: list[tuple[OtaStatus, str]] = []
        changes: dict[tuple[int, str], dict[str, Any]] = {}
        tally: dict[int, list[int]] = {}
        installed: list[dict[str, Any]] = []
        for r in reports:
            row = current.get((r.campaign_id, r.device_id))
            if not _reportable(row, r.tenant_id):
                ignored.append((r, UNKNOWN))
                continue
            change = rules.apply_report(row["status"], row["progress_pct"], r.status, r.progress_pct, r.error)
            if change is None:
                ignored.append((r, NO_CHANGE))
                continue
            row.update(status=change.status, progress_pct=change.progress_pct, error_message=change.error_message,
                       updated_at=now, started_at=row["started_at"] or now,
                       completed_at=now if change.finished else None)
            if change.finished:
                tally.setdefault(r.campaign_id, [0, 0])[0 if change.status == rules.SUCCESS else 1] += 1
                if change.status == rules.SUCCESS:
                    installed.append({"t": r.tenant_id, "d": r.device_id, "v": row["version"], "now": now})
            changes[(r.campaign_id, r.device_id)] = {"c": r.campaign_id, "d": r.device_id,
                                                     **{k: row[k] for k in _REPORTED}}
        await _write_changes(conn, list(changes.values()), tally, installed)
    return ignored


_REPORTED = ("status", "progress_pct", "error_message", "updated_at", "started_at", "completed_at")


def _reportable(row: dict[str, Any] | None, tenant_id: str) -> bool:
    """A target of this tenant's campaign, which was started (a CREATED campaign instructed nobody)."""
    return row is not None and row["tenant_id"] == tenant_id and row["campaign_status"] != rules.CREATED


async def _targets_of(conn: AsyncConnection, keys: list[tuple[int, str]]) -> dict[tuple[int, str], dict[str, Any]]:
    """The rows of these (campaign, device) pairs, with their campaign's tenant and firmware version."""
    out: dict[tuple[int, str], dict[str, Any]] = {}
    unique = sorted(set(keys))
    for i in range(0, len(unique), _CHUNK):
        rows = await conn.execute(
            sa.select(targets.c.campaign_id, targets.c.device_id, targets.c.status, targets.c.progress_pct,
                      targets.c.started_at, campaigns.c.tenant_id, campaigns.c.status.label("campaign_status"),
                      fw.c.version)
            .join(campaigns, campaigns.c.id == targets.c.campaign_id)
            .join(fw, fw.c.id == campaigns.c.firmware_version_id)
            .where(sa.tuple_(targets.c.campaign_id, targets.c.device_id).in_(unique[i:i + _CHUNK])))
        out.update({(r.campaign_id, r.device_id): dict(r._mapping) for r in rows})
    return out


async def _write_changes(conn: AsyncConnection, changes: list[dict[str, Any]], tally: dict[int, list[int]],
                         installed: list[dict[str, Any]]) -> None:
    """Executemany writes: one statement per kind of change, not one per report."""
    if changes:  # parameters named like the columns they set: SQLAlchemy puts them in the SET clause
        await conn.execute(targets.update().where(
            targets.c.campaign_id == sa.bindparam("c"), targets.c.device_id == sa.bindparam("d")), changes)
    if tally:
        await conn.execute(campaigns.update().where(campaigns.c.id == sa.bindparam("cid")).values(
            succeeded=campaigns.c.succeeded + sa.bindparam("s"), failed=campaigns.c.failed + sa.bindparam("f")),
            [{"cid": cid, "s": s, "f": f} for cid, (s, f) in tally.items()])
    if installed:
        await conn.execute(devices.update().where(
            devices.c.tenant_id == sa.bindparam("t"), devices.c.device_id == sa.bindparam("d")).values(
            fw_version=sa.bindparam("v"), updated_at=sa.bindparam("now")), installed)


async def open_instructions(db: Database, listening: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """For devices listening again: each (tenant, device) dispatched and not finished in a campaign that
    still instructs (RUNNING or PAUSED), with the campaign's firmware columns (`fw_*`)."""
    keys = sorted(set(listening))
    out: list[dict[str, Any]] = []
    async with db.connect() as conn:
        for i in range(0, len(keys), _CHUNK):
            rows = await conn.execute(
                sa.select(targets.c.tenant_id, targets.c.device_id, targets.c.campaign_id,
                          fw.c.id.label("fw_id"), fw.c.version.label("fw_version"), fw.c.file_url.label("fw_url"),
                          fw.c.blob_key.label("fw_blob_key"), fw.c.checksum_sha256.label("fw_checksum"),
                          fw.c.file_size_bytes.label("fw_size"))
                .join(campaigns, campaigns.c.id == targets.c.campaign_id)
                .join(fw, fw.c.id == campaigns.c.firmware_version_id)
                .where(sa.tuple_(targets.c.tenant_id, targets.c.device_id).in_(keys[i:i + _CHUNK]),
                       targets.c.status.in_(rules.DISPATCHED), campaigns.c.status.in_(rules.INSTRUCTING))
                .order_by(targets.c.campaign_id))
            out.extend(dict(r._mapping) for r in rows)
    return out

