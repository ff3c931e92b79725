"""IoT jobs (docs/jobs.md): jobs customers create for a device, a group or the whole fleet, and the
executions devices move on over MQTT (`…/jobs/{job_id}/update`) or the device HTTP API; both go through
`update_execution`, so the rules and the optimistic lock are the same whichever way a device talks.

A new job is announced on `…/jobs/notify` to each target device at once (QoS 1); a device that was
offline gets the notifications of its open executions when it is listening again (`notifications`,
called by the device shards through field_ops). The scheduler times out what expired (`expire_due`).
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pulse.domain import jobs as rules
from pulse.domain.envelope import job_update_topic
from pulse.domain.messages import JobUpdate, Publish
from pulse.errors import BadRequest
from pulse.storage import jobs as store
from pulse.storage.db import Database, utcnow

if TYPE_CHECKING:  # the device shards import this module (field_ops): no need for the API's context there
    from pulse.services.context import ServiceContext

log = logging.getLogger(__name__)
NO_MEMBERS = {"group": "Group has no members", "all": "No devices in tenant"}


async def create(ctx: ServiceContext, tenant_id: str, fields: Mapping[str, Any], expires_in_s: int | None,
                 created_by: str) -> dict[str, Any]:
    """One QUEUED execution per target device, each device notified; `expires_in_s` None: never expires."""
    kind = rules.check_targets(fields.get("target_device_id"), fields.get("target_group_id"),
                               bool(fields.get("target_all")))
    target = fields.get("target_device_id") if kind == "device" else fields.get("target_group_id")
    device_ids = await store.target_devices(ctx.db, tenant_id, kind, target)
    if not device_ids:
        raise BadRequest(NO_MEMBERS[kind])
    now = utcnow()
    values = {**fields, "target_all": bool(fields.get("target_all")),
              "expires_at": now + timedelta(seconds=expires_in_s) if expires_in_s is not None else None}
    job_id = fields.get("job_id") or str(uuid.uuid4())
    job = await store.create(ctx.db, tenant_id, job_id, values, device_ids, created_by, now)
    await ctx.downlink.publish([_notify(tenant_id, {**job, "device_id": d, "status": "QUEUED", "queued_at": now,
                                                    "execution_number": rules.FIRST_EXECUTION_NUMBER})
                                for d in device_ids])
    return {"job_id": job_id, "status": job["status"], "execution_count": len(device_ids),
            "expires_at": job["expires_at"]}


async def list_jobs(ctx: ServiceContext, tenant_id: str, status: str | None, limit: int,
                    offset: int) -> list[dict[str, Any]]:
    return await store.list_jobs(ctx.db, tenant_id, status, limit, offset)


async def get(ctx: ServiceContext, tenant_id: str, job_id: str) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, job_id)


async def cancel(ctx: ServiceContext, tenant_id: str, job_id: str, reason: str | None) -> dict[str, Any]:
    return await store.cancel(ctx.db, tenant_id, job_id, reason, utcnow())


# ---- the device side -------------------------------------------------------------------------------------
async def execution(db: Database, tenant_id: str, device_id: str, job_id: str) -> dict[str, Any]:
    return await store.execution(db, tenant_id, device_id, job_id)


async def pending(db: Database, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
    """The device's open executions of unexpired jobs, oldest first."""
    return await store.open_for(db, [(tenant_id, device_id)], utcnow())


async def update_execution(db: Database, tenant_id: str, device_id: str, job_id: str, status: str,
                           expected_number: int | None, details: dict[str, Any] | None) -> dict[str, Any]:
    """A device moves its execution on (MQTT or HTTP); VersionMismatch, InvalidTransition (409) or
    ExecutionNotFound (404) when refused."""
    now = utcnow()
    return await store.update_execution(db, tenant_id, device_id, job_id,
                                        _advance(status, expected_number, details, now), now)


async def on_updates(db: Database, updates: list[JobUpdate]) -> list[Publish]:
    """Updates devices sent over MQTT, in arrival order and in one transaction per batch: each applied, and
    answered on `…/update/accepted` or `…/update/rejected` (docs/device-protocol.md)."""
    if not updates:
        return []
    now = utcnow()
    outcomes = await store.update_executions(db, [
        ((u.tenant_id, u.device_id, u.job_id), _advance(u.status, u.expected_execution_number, u.status_details, now))
        for u in updates], now)
    replies: list[Publish] = []
    for u, (row, error) in zip(updates, outcomes):
        if error is None:
            reply, body = "accepted", rules.accepted_body(row)
        else:
            reply, body = "rejected", rules.rejected_body(u.job_id, error, row["execution_number"] if row else None)
        replies.append(Publish(job_update_topic(u.tenant_id, u.device_id, u.job_id, reply),
                               json.dumps(body).encode(), qos=1))
    return replies


def _advance(status: str, expected_number: int | None, details: dict[str, Any] | None,
             now: datetime) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda current: rules.advance(current, status, expected_number, details, now)


async def notifications(db: Database, listening: list[tuple[str, str]]) -> list[Publish]:
    """`…/jobs/notify` for every open execution of devices that are listening again: one query per batch."""
    if not listening:
        return []
    return [_notify(e["tenant_id"], e) for e in await store.open_for(db, listening, utcnow())]


def _notify(tenant_id: str, execution: Mapping[str, Any]) -> Publish:
    return Publish(rules.notify_topic(tenant_id, execution["device_id"]),
                   json.dumps(rules.notify_body(execution)).encode(), qos=1)


async def expire_due(db: Database, now: datetime | None = None) -> int:
    """Open executions of expired jobs TIMED_OUT, and jobs with none open left COMPLETED; how many timed out."""
    timed_out = await store.expire_due(db, now or utcnow())
    if timed_out:
        log.info("jobs: %d executions timed out", timed_out)
    return timed_out
