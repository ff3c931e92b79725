"""Notification channels, routing rules and delivery jobs of a tenant (docs/notifications.md).

A channel is stored as it comes from pulse.services.notifications: its plain `config` (secrets
masked) and its secrets sealed as one Fernet token (pulse.storage.secrets); which fields are
secret is the channels' business, not the store's. Reads return the masked config; only the
delivery path (`channel_for_delivery`, `channels_for_delivery`) decrypts. Jobs are written by
the Notifier: `insert_jobs` is idempotent on (tenant, alert, channel, event, occurrence) and
`claim_due` hands each due job to one sender at a time.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.channels import COMPLETED, FAILED, JOB_STATUSES, PENDING, PROCESSING
from pulse.errors import Conflict, Invalid, NotFound
from pulse.storage.db import (Database, delete_tenant_row, insert_missing, page_rows, tenant_row, update_row, utcnow,
                              where_given)
from pulse.storage.secrets import SecretBox, SecretsUnreadable
from pulse.storage.tables import notification_channels as channels
from pulse.storage.tables import notification_jobs as jobs
from pulse.storage.tables import notification_log as log_table
from pulse.storage.tables import notification_routing_rules as routing_rules

ACTIVE = (PENDING, PROCESSING)
RULE_FIELDS = ("name", "enabled", "priority", "stop", "channel_ids", "min_severity", "alert_types", "rule_ids",
               "device_ids", "group_ids", "tags", "site_ids", "events", "active_hours", "throttle_minutes")


# ---- channels ----------------------------------------------------------------------------------
def _public_channel(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("secrets", None)
    d.pop("tenant_id", None)
    return d


async def _channel_row(conn: AsyncConnection, tenant_id: str, channel_id: str) -> Any:
    return await tenant_row(conn, channels, tenant_id, "channel_id", channel_id, "notification channel")


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a notification channel named {name!r} already exists")


async def list_channels(db: Database, tenant_id: str, limit: int, offset: int,
                        channel_type: str | None = None) -> tuple[list[dict[str, Any]], int]:
    q = where_given(sa.select(channels).where(channels.c.tenant_id == tenant_id), channels, channel_type=channel_type)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [channels.c.name, channels.c.channel_id], limit, offset)
        return [_public_channel(r) for r in rows], total


async def get_channel(db: Database, tenant_id: str, channel_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return _public_channel(await _channel_row(conn, tenant_id, channel_id))


async def create_channel(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """`fields["config"]` is the plain config, `fields["secrets"]` the sealed secrets (or None)."""
    now, channel_id = utcnow(), str(uuid.uuid4())
    async with db.begin() as conn:
        try:
            await conn.execute(channels.insert().values(
                channel_id=channel_id, tenant_id=tenant_id, name=fields["name"], channel_type=fields["channel_type"],
                enabled=fields.get("enabled", True), rate_limit_per_minute=fields.get("rate_limit_per_minute"),
                config=fields["config"], secrets=fields["secrets"], created_at=now, updated_at=now))
        except sa.exc.IntegrityError:
            raise _name_taken(fields["name"]) from None
    return await get_channel(db, tenant_id, channel_id)


async def sealed_secrets(db: Database, tenant_id: str, channel_id: str) -> tuple[str, str | None]:
    """(channel type, sealed secrets) of a channel: what an update's new config is merged with."""
    async with db.connect() as conn:
        row = await _channel_row(conn, tenant_id, channel_id)
    return row.channel_type, row.secrets


async def update_channel(db: Database, tenant_id: str, channel_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A partial update of name, enabled, rate limit and (together) plain `config` and sealed `secrets`."""
    values = {k: fields[k] for k in ("name", "enabled", "rate_limit_per_minute", "config", "secrets") if k in fields}
    async with db.begin() as conn:
        await _channel_row(conn, tenant_id, channel_id)
        await update_row(conn, channels, "channel_id", channel_id, values, _name_taken(values.get("name", "")))
    return await get_channel(db, tenant_id, channel_id)


async def delete_channel(db: Database, tenant_id: str, channel_id: str) -> None:
    """Refused (409) while a routing rule names the channel; its undelivered jobs fail."""
    async with db.begin() as conn:
        await _channel_row(conn, tenant_id, channel_id)
        users = [r.rule_id for r in await conn.execute(sa.select(routing_rules.c.rule_id, routing_rules.c.channel_ids)
                                                       .where(routing_rules.c.tenant_id == tenant_id))
                 if channel_id in (r.channel_ids or [])]
        if users:
            raise Conflict(f"notification channel {channel_id} is used by routing rule(s) {', '.join(sorted(users))}")
        now = utcnow()
        await conn.execute(jobs.update().where(jobs.c.tenant_id == tenant_id, jobs.c.channel_id == channel_id,
                                               jobs.c.status.in_(ACTIVE))
                           .values(status=FAILED, last_error="channel deleted", next_attempt_at=None,
                                   updated_at=now, completed_at=now))
        await conn.execute(channels.delete().where(channels.c.channel_id == channel_id))


def _deliverable(box: SecretBox, row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    secrets = box.decrypt(d.pop("secrets"))
    d["config"] = {**d["config"], **secrets}
    return d


async def mail_channel(db: Database, tenant_id: str) -> dict[str, Any] | None:
    """The tenant's first enabled e-mail channel (oldest): how people named by an escalation step
    are reached. Its plain config only (recipients); secrets stay sealed."""
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(channels).where(
            channels.c.tenant_id == tenant_id, channels.c.channel_type == "email", channels.c.enabled.is_(True))
            .order_by(channels.c.created_at, channels.c.channel_id).limit(1))).first()
    return _public_channel(row) if row is not None else None


async def channel_for_delivery(db: Database, box: SecretBox, tenant_id: str, channel_id: str) -> dict[str, Any]:
    """The channel with its secrets decrypted: for sending only, never for a response."""
    async with db.connect() as conn:
        row = await _channel_row(conn, tenant_id, channel_id)
    try:
        return _deliverable(box, row)
    except SecretsUnreadable:
        raise Conflict(f"the secrets of channel {channel_id} do not decrypt with the configured secrets_key: "
                       "send them again with PUT") from None


async def channels_for_delivery(db: Database, box: SecretBox, channel_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Channels by id (any tenant: the caller pairs them with jobs of the same tenant); secrets decrypted.

    A channel whose secrets no longer decrypt comes back with `"unreadable": True` instead."""
    ids = set(channel_ids)
    if not ids:
        return {}
    out: dict[str, dict[str, Any]] = {}
    async with db.connect() as conn:
        for row in await conn.execute(sa.select(channels).where(channels.c.channel_id.in_(ids))):
            try:
                out[row.channel_id] = _deliverable(box, row)
            except SecretsUnreadable:
                out[row.channel_id] = {**_public_channel(row), "tenant_id": row.tenant_id, "unreadable": True}
    return out


async def _existing_channels(conn: AsyncConnection, tenant_id: str, ids: Iterable[str]) -> dict[str, bool]:
    """{channel_id: enabled} of those of `ids` the tenant owns."""
    ids = set(ids)
    if not ids:
        return {}
    rows = await conn.execute(sa.select(channels.c.channel_id, channels.c.enabled).where(
        channels.c.tenant_id == tenant_id, channels.c.channel_id.in_(ids)))
    return {r.channel_id: bool(r.enabled) for r in rows}


# ---- routing rules -----------------------------------------------------------------------------
def _public_rule(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id", None)
    return d


async def _rule_row(conn: AsyncConnection, tenant_id: str, rule_id: str) -> Any:
    return await tenant_row(conn, routing_rules, tenant_id, "rule_id", rule_id, "notification routing rule")


async def _check_channels(conn: AsyncConnection, tenant_id: str, channel_ids: list[str]) -> None:
    missing = set(channel_ids) - set(await _existing_channels(conn, tenant_id, channel_ids))
    if missing:
        raise Invalid(f"channel_ids: unknown notification channel(s) {', '.join(sorted(missing))}")


def _rule_order() -> tuple:
    return routing_rules.c.priority, routing_rules.c.created_at, routing_rules.c.rule_id


async def list_rules(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(routing_rules).where(routing_rules.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [*_rule_order()], limit, offset)
        return [_public_rule(r) for r in rows], total


async def enabled_rules(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's enabled routing rules in evaluation order."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(routing_rules).where(
            routing_rules.c.tenant_id == tenant_id, routing_rules.c.enabled == sa.true()).order_by(*_rule_order()))
        return [_public_rule(r) for r in rows]


async def create_rule(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now, rule_id = utcnow(), str(uuid.uuid4())
    values = {k: fields[k] for k in RULE_FIELDS if k in fields}
    async with db.begin() as conn:
        await _check_channels(conn, tenant_id, values["channel_ids"])
        await conn.execute(routing_rules.insert().values(rule_id=rule_id, tenant_id=tenant_id, created_at=now,
                                                         updated_at=now, **values))
        return _public_rule(await _rule_row(conn, tenant_id, rule_id))


async def update_rule(db: Database, tenant_id: str, rule_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: fields[k] for k in RULE_FIELDS if k in fields}
    async with db.begin() as conn:
        await _rule_row(conn, tenant_id, rule_id)
        if "channel_ids" in values:
            await _check_channels(conn, tenant_id, values["channel_ids"])
        await conn.execute(routing_rules.update().where(routing_rules.c.rule_id == rule_id)
                           .values(updated_at=utcnow(), **values))
        return _public_rule(await _rule_row(conn, tenant_id, rule_id))


async def delete_rule(db: Database, tenant_id: str, rule_id: str) -> None:
    async with db.begin() as conn:
        await delete_tenant_row(conn, routing_rules, tenant_id, "rule_id", rule_id, "notification routing rule")


# ---- jobs --------------------------------------------------------------------------------------
async def insert_jobs(db: Database, tenant_id: str, alert_id: int, event: str, occurrence: int,
                      fingerprint: str | None, channel_ids: list[str], payload: dict[str, Any],
                      now: datetime) -> list[int]:
    """One PENDING job per channel the tenant owns and has enabled, due now; existing ones are kept.

    Returns the job ids in `channel_ids` order (also of jobs that already existed)."""
    async with db.begin() as conn:
        existing = await _existing_channels(conn, tenant_id, channel_ids)
        usable = [c for c in dict.fromkeys(channel_ids) if existing.get(c)]  # job ids follow the given order
        await insert_missing(conn, jobs, [{
            "tenant_id": tenant_id, "alert_id": alert_id, "channel_id": c, "event": event, "occurrence": occurrence,
            "fingerprint": fingerprint, "status": PENDING, "attempts": 0, "next_attempt_at": now,
            "payload": payload, "created_at": now, "updated_at": now} for c in usable])
        if not usable:
            return []
        rows = await conn.execute(sa.select(jobs.c.channel_id, jobs.c.job_id).where(
            jobs.c.tenant_id == tenant_id, jobs.c.alert_id == alert_id, jobs.c.event == event,
            jobs.c.occurrence == occurrence, jobs.c.channel_id.in_(usable)))
        by_channel = {r.channel_id: r.job_id for r in rows}
    return [by_channel[c] for c in dict.fromkeys(channel_ids) if c in by_channel]


async def recently_notified(db: Database, tenant_id: str, alert_id: int, fingerprint: str, event: str,
                            windows: dict[str, datetime]) -> set[str]:
    """Channels (of `windows`: channel -> since) with a job for this fingerprint and event since then,
    for another alert (the same alert's own job is found again by `insert_jobs`)."""
    if not windows:
        return set()
    since = min(windows.values())
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(jobs.c.channel_id, sa.func.max(jobs.c.created_at)).where(
            jobs.c.tenant_id == tenant_id, jobs.c.fingerprint == fingerprint, jobs.c.event == event,
            jobs.c.alert_id != alert_id, jobs.c.channel_id.in_(set(windows)), jobs.c.created_at >= since).group_by(jobs.c.channel_id))
        return {channel_id for channel_id, last in rows if last is not None and _aware(last) >= windows[channel_id]}


def _aware(ts: datetime) -> datetime:
    # max() over a TypeDecorator column comes back raw on SQLite (naive UTC)
    return ts.replace(tzinfo=timezone.utc) if isinstance(ts, datetime) and ts.tzinfo is None else ts


async def claim_due(db: Database, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
    """Take up to `limit` due jobs (PENDING, or PROCESSING whose claim lapsed) for this sender.

    A job waits while an earlier job for the same alert and channel is undelivered, so a channel
    always sees an alert's events in order (a resolve never overtakes its trigger)."""
    earlier = jobs.alias("earlier")
    blocked = sa.exists().where(earlier.c.tenant_id == jobs.c.tenant_id, earlier.c.alert_id == jobs.c.alert_id,
                                earlier.c.channel_id == jobs.c.channel_id, earlier.c.job_id < jobs.c.job_id,
                                earlier.c.status.in_(ACTIVE))
    due = (jobs.c.status.in_(ACTIVE), jobs.c.next_attempt_at <= now)
    async with db.begin() as conn:
        ids = [r.job_id for r in await conn.execute(
            sa.select(jobs.c.job_id).where(*due, ~blocked).order_by(jobs.c.next_attempt_at, jobs.c.job_id).limit(limit))]
        if not ids:
            return []
        # re-checked in the UPDATE: of two concurrent senders only one moves a job's lease
        rows = await conn.execute(jobs.update().where(jobs.c.job_id.in_(ids), *due)
                                  .values(status=PROCESSING, next_attempt_at=lease_until, updated_at=now)
                                  .returning(*jobs.c))
        return sorted((dict(r._mapping) for r in rows), key=lambda j: j["job_id"])


async def finish_job(db: Database, job: dict[str, Any], values: dict[str, Any], log: dict[str, Any] | None) -> None:
    """Record an attempt's outcome (`values` for the job row) and its log line, together."""
    async with db.begin() as conn:
        await conn.execute(jobs.update().where(jobs.c.job_id == job["job_id"], jobs.c.status == PROCESSING)
                           .values(**values))
        if log is not None:
            await conn.execute(log_table.insert().values(**log))


async def log_send(db: Database, row: dict[str, Any]) -> None:
    async with db.begin() as conn:
        await conn.execute(log_table.insert().values(**row))


def _attempt(row: Any) -> dict[str, Any]:
    return {"job_id": row.job_id, "attempt": row.attempt, "ok": row.ok, "status_code": row.status_code,
            "error": row.error, "duration_ms": row.duration_ms, "at": row.at}


async def list_jobs(db: Database, tenant_id: str, *, status: str | None = None, channel_id: str | None = None,
                    alert_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Newest first; each job with its send log (`log`: one line per attempt)."""
    q = sa.select(*[c for c in jobs.c if c.name != "payload"]).where(jobs.c.tenant_id == tenant_id)
    q = where_given(q, jobs, status=status, channel_id=channel_id, alert_id=alert_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [jobs.c.job_id.desc()], limit, offset)
        items = [dict(r._mapping) for r in rows]
        logs: dict[int, list[dict[str, Any]]] = {j["job_id"]: [] for j in items}
        if items:
            rows = await conn.execute(sa.select(log_table).where(log_table.c.job_id.in_(list(logs)))
                                      .order_by(log_table.c.id))
            for r in rows:
                logs[r.job_id].append(_attempt(r))
    for j in items:
        j.pop("tenant_id", None)
        j["log"] = logs[j["job_id"]]
    return items, total


async def job_attempts(db: Database, tenant_id: str, job_id: int) -> list[dict[str, Any]]:
    """The send log of one of the tenant's jobs, first attempt first; NotFound for another tenant's."""
    async with db.connect() as conn:
        owned = await conn.scalar(sa.select(jobs.c.job_id).where(jobs.c.tenant_id == tenant_id, jobs.c.job_id == job_id))
        if owned is None:
            raise NotFound("Delivery job not found")
        rows = await conn.execute(sa.select(log_table).where(log_table.c.job_id == job_id).order_by(log_table.c.id))
        return [_attempt(r) for r in rows]


async def recent_attempts(db: Database, tenant_id: str, limit: int) -> list[dict[str, Any]]:
    """The tenant's latest job send attempts, newest first (channel tests belong to no job: left out)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(log_table).where(log_table.c.tenant_id == tenant_id,
                                                             log_table.c.job_id.is_not(None))
                                  .order_by(log_table.c.at.desc(), log_table.c.id.desc()).limit(limit))
        return [_attempt(r) for r in rows]


async def job_counts(db: Database) -> dict[str, int]:
    """Jobs by status over all tenants (notifier stats / metrics)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status))
        return {s: 0 for s in JOB_STATUSES} | {s: n for s, n in rows}
