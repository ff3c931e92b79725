"""IoT jobs and their executions (docs/jobs.md): rows, the targets a job resolves to, optimistic
updates of one execution, cancel and the expiry sweep. The rules they follow are pulse/domain/jobs.py."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain import jobs as rules
from pulse.errors import Conflict, NotFound
from pulse.storage import groups
from pulse.storage.db import Database
from pulse.storage.tables import devices, job_executions as executions, jobs

JOB_FIELDS = ("document_type", "document_params", "target_device_id", "target_group_id", "target_all", "expires_at")
DUPLICATE = "Job already exists"
NOT_FOUND = "Job not found"
# an execution together with what a device needs of its job (notify, the device HTTP API)
EXECUTION_VIEW = (executions.c.job_id, executions.c.device_id, executions.c.status, executions.c.status_details,
                  executions.c.queued_at, executions.c.started_at, executions.c.last_updated_at,
                  executions.c.execution_number, jobs.c.document_type, jobs.c.document_params, jobs.c.expires_at)
_PAIRS_CHUNK = 500  # (tenant, device) pairs per IN (...) of a batch query


# ---- targets -------------------------------------------------------------------------------------------
async def target_devices(db: Database, tenant_id: str, kind: str, target: str | None) -> list[str]:
    """The device ids a job goes to: the named device (any status; 404 unknown), the current members of a
    static or dynamic group (404 unknown), or every ACTIVE device of the tenant."""
    async with db.connect() as conn:
        if kind == "device":
            found = (await conn.execute(sa.select(devices.c.device_id).where(
                devices.c.tenant_id == tenant_id, devices.c.device_id == target))).first()
            if found is None:
                raise NotFound("Device not found")
            return [target]
        conds: list[sa.ColumnElement[bool]] = [devices.c.status == "ACTIVE"]
        if kind == "group":
            try:
                conds += await groups.member_conditions(conn, tenant_id, target)
            except NotFound:
                raise NotFound("Group not found") from None
        rows = await conn.execute(sa.select(devices.c.device_id).where(devices.c.tenant_id == tenant_id, *conds)
                                  .order_by(devices.c.device_id))
        return [r.device_id for r in rows]


# ---- jobs ----------------------------------------------------------------------------------------------
async def create(db: Database, tenant_id: str, job_id: str, fields: Mapping[str, Any], device_ids: list[str],
                 created_by: str, now: datetime) -> dict[str, Any]:
    """The job and one QUEUED execution per device, in one transaction; Conflict when the id is taken."""
    values = {k: fields.get(k) for k in JOB_FIELDS}
    try:
        async with db.begin() as conn:
            await conn.execute(jobs.insert().values(tenant_id=tenant_id, job_id=job_id, status="IN_PROGRESS",
                                                    created_by=created_by, created_at=now, updated_at=now, **values))
            await conn.execute(executions.insert(), [
                {"tenant_id": tenant_id, "job_id": job_id, "device_id": d, "status": "QUEUED", "queued_at": now,
                 "last_updated_at": now, "execution_number": rules.FIRST_EXECUTION_NUMBER} for d in device_ids])
    except sa.exc.IntegrityError:  # the key (tenant, job_id): perhaps created just now by another request
        raise Conflict(DUPLICATE) from None
    return {"tenant_id": tenant_id, "job_id": job_id, "status": "IN_PROGRESS", "created_by": created_by,
            "created_at": now, "updated_at": now, **values}


def _counts() -> sa.Subquery:
    failed = sa.func.sum(sa.case((executions.c.status.in_(rules.FAILED_LIKE), 1), else_=0))
    succeeded = sa.func.sum(sa.case((executions.c.status == "SUCCEEDED", 1), else_=0))
    return (sa.select(executions.c.tenant_id, executions.c.job_id, sa.func.count().label("total_executions"),
                      succeeded.label("succeeded_count"), failed.label("failed_count"))
            .group_by(executions.c.tenant_id, executions.c.job_id).subquery())


async def list_jobs(db: Database, tenant_id: str, status: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
    """Newest first, with execution counts (`failed_count`: FAILED, TIMED_OUT and REJECTED)."""
    counts = _counts()
    q = (sa.select(jobs, counts.c.total_executions, counts.c.succeeded_count, counts.c.failed_count)
         .outerjoin(counts, sa.and_(counts.c.tenant_id == jobs.c.tenant_id, counts.c.job_id == jobs.c.job_id))
         .where(jobs.c.tenant_id == tenant_id))
    if status is not None:
        q = q.where(jobs.c.status == status)
    async with db.connect() as conn:
        rows = await conn.execute(q.order_by(jobs.c.created_at.desc(), jobs.c.job_id).limit(limit).offset(offset))
        return [{**r._mapping, **{k: int(r._mapping[k] or 0) for k in
                                  ("total_executions", "succeeded_count", "failed_count")}} for r in rows]


async def _job(conn: AsyncConnection, tenant_id: str, job_id: str) -> dict[str, Any]:
    row = (await conn.execute(sa.select(jobs).where(jobs.c.tenant_id == tenant_id, jobs.c.job_id == job_id))).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    return dict(row._mapping)


async def get(db: Database, tenant_id: str, job_id: str) -> dict[str, Any]:
    """The job row and its executions by device id."""
    async with db.connect() as conn:
        job = await _job(conn, tenant_id, job_id)
        rows = await conn.execute(sa.select(executions).where(
            executions.c.tenant_id == tenant_id, executions.c.job_id == job_id).order_by(executions.c.device_id))
        job["executions"] = [dict(r._mapping) for r in rows]
    return job


async def cancel(db: Database, tenant_id: str, job_id: str, reason: str | None, now: datetime) -> dict[str, Any]:
    """CANCELED, and its QUEUED executions REJECTED; only from IN_PROGRESS (400 otherwise)."""
    async with db.begin() as conn:
        job = await _job(conn, tenant_id, job_id)
        rules.check_cancel(job["status"])
        done = await conn.execute(jobs.update().where(
            jobs.c.tenant_id == tenant_id, jobs.c.job_id == job_id, jobs.c.status == "IN_PROGRESS",
        ).values(status="CANCELED", updated_at=now))
        if done.rowcount != 1:  # completed or canceled in between: say what it is now
            rules.check_cancel((await _job(conn, tenant_id, job_id))["status"])
        await conn.execute(executions.update().where(
            executions.c.tenant_id == tenant_id, executions.c.job_id == job_id, executions.c.status == "QUEUED",
        ).values(status="REJECTED", status_details=rules.cancel_details(reason), last_updated_at=now,
                 execution_number=executions.c.execution_number + 1))
    return {"job_id": job_id, "status": "CANCELED"}


# ---- executions ----------------------------------------------------------------------------------------
def _of(tenant_id: str, device_id: str, job_id: str) -> list[sa.ColumnElement[bool]]:
    return [executions.c.tenant_id == tenant_id, executions.c.device_id == device_id, executions.c.job_id == job_id]


def _view(*extra: sa.ColumnElement[Any]) -> sa.Select:
    return sa.select(*extra, *EXECUTION_VIEW).join(jobs, sa.and_(jobs.c.tenant_id == executions.c.tenant_id,
                                                         jobs.c.job_id == executions.c.job_id))


async def execution(db: Database, tenant_id: str, device_id: str, job_id: str) -> dict[str, Any]:
    """One device's execution of a job, with the job's document; ExecutionNotFound otherwise."""
    async with db.connect() as conn:
        row = (await conn.execute(_view().where(*_of(tenant_id, device_id, job_id)))).first()
    if row is None:
        raise rules.ExecutionNotFound(f"No execution of job {job_id} for this device")
    return dict(row._mapping)


ExecutionKey = tuple[str, str, str]  # (tenant, device, job)
Decide = Callable[[dict[str, Any]], dict[str, Any]]


async def update_executions(db: Database, updates: Sequence[tuple[ExecutionKey, Decide]],
                            now: datetime) -> list[tuple[dict[str, Any] | None, Exception | None]]:
    """Apply each `decide(execution) -> changes` (which raises VersionMismatch or InvalidTransition to
    refuse) in order, in one transaction: a batch of devices' updates costs one read, and a later update of
    the same execution sees the earlier one. Each write is a compare-and-set on the execution number, so
    of two writers at once (MQTT and HTTP) the later is refused. Jobs whose last open execution closed are
    COMPLETED. Per update: (the execution after it, None), or (the execution as it is or None, the refusal)."""
    results: list[tuple[dict[str, Any] | None, Exception | None]] = []
    closed: dict[str, set[str]] = {}  # tenant -> jobs that had an execution finish
    async with db.begin() as conn:
        current = await _executions(conn, list(dict.fromkeys(key for key, _ in updates)))
        for key, decide in updates:
            row = current.get(key)
            if row is None:
                results.append((None, rules.ExecutionNotFound(f"No execution of job {key[2]} for this device")))
                continue
            try:
                changes = decide(row)
            except (rules.VersionMismatch, rules.InvalidTransition) as e:
                results.append((row, e))
                continue
            done = await conn.execute(executions.update().where(
                *_of(*key), executions.c.execution_number == row["execution_number"]).values(**changes))
            if done.rowcount != 1:  # another writer came first
                results.append((row, rules.VersionMismatch(
                    f"execution_number {row['execution_number']} was changed meanwhile")))
                continue
            current[key] = row = {**row, **changes}
            results.append((row, None))
            if changes["status"] in rules.TERMINAL:
                closed.setdefault(key[0], set()).add(key[2])
        for tenant_id, job_ids in closed.items():
            await _complete(conn, job_ids, tenant_id, now)
    return results


async def update_execution(db: Database, tenant_id: str, device_id: str, job_id: str, decide: Decide,
                           now: datetime) -> dict[str, Any]:
    """One update (the device HTTP API): the execution after it, or the refusal raised."""
    [(row, error)] = await update_executions(db, [((tenant_id, device_id, job_id), decide)], now)
    if error is not None:
        raise error
    assert row is not None
    return row


async def _executions(conn: AsyncConnection, keys: list[ExecutionKey]) -> dict[ExecutionKey, dict[str, Any]]:
    out: dict[ExecutionKey, dict[str, Any]] = {}
    for i in range(0, len(keys), _PAIRS_CHUNK):
        key = sa.tuple_(executions.c.tenant_id, executions.c.device_id, executions.c.job_id)
        rows = await conn.execute(_view(executions.c.tenant_id).where(key.in_(keys[i:i + _PAIRS_CHUNK])))
        for r in rows:
            row = dict(r._mapping)
            out[(row.pop("tenant_id"), row["device_id"], row["job_id"])] = row
    return out


def _no_open_execution() -> sa.ColumnElement[bool]:
    return ~sa.exists().where(executions.c.tenant_id == jobs.c.tenant_id, executions.c.job_id == jobs.c.job_id,
                              executions.c.status.in_(rules.OPEN))


async def _complete(conn: AsyncConnection, job_ids: Iterable[str] | None, tenant_id: str | None,
                    now: datetime) -> int:
    """IN_PROGRESS jobs without an open execution become COMPLETED (of one tenant's `job_ids`, or all)."""
    q = jobs.update().where(jobs.c.status == "IN_PROGRESS", _no_open_execution())
    if job_ids is not None:
        q = q.where(jobs.c.tenant_id == tenant_id, jobs.c.job_id.in_(list(job_ids)))
    return (await conn.execute(q.values(status="COMPLETED", updated_at=now))).rowcount


async def open_for(db: Database, keys: list[tuple[str, str]], now: datetime) -> list[dict[str, Any]]:
    """The open executions of unexpired jobs of these (tenant, device) pairs, oldest first: one query per
    chunk of pairs, whatever the batch size."""
    out: list[dict[str, Any]] = []
    async with db.connect() as conn:
        for i in range(0, len(keys), _PAIRS_CHUNK):
            pairs = keys[i:i + _PAIRS_CHUNK]
            rows = await conn.execute(_view(executions.c.tenant_id).where(
                sa.tuple_(executions.c.tenant_id, executions.c.device_id).in_(pairs),
                executions.c.status.in_(rules.OPEN),
                sa.or_(jobs.c.expires_at.is_(None), jobs.c.expires_at > now),
            ).order_by(executions.c.queued_at, executions.c.job_id))
            out.extend(dict(r._mapping) for r in rows)
    return out


async def expire_due(db: Database, now: datetime) -> int:
    """The scheduler's sweep: open executions of expired jobs become TIMED_OUT; then every IN_PROGRESS job
    without an open execution is COMPLETED (also one whose last open execution went with its device).
    Returns how many executions timed out."""
    expired = sa.select(jobs.c.tenant_id, jobs.c.job_id).where(
        jobs.c.expires_at.is_not(None), jobs.c.expires_at <= now, jobs.c.status.in_(("IN_PROGRESS", "CANCELED")))
    async with db.begin() as conn:
        done = await conn.execute(executions.update().where(
            executions.c.status.in_(rules.OPEN),
            sa.tuple_(executions.c.tenant_id, executions.c.job_id).in_(expired),
        ).values(status="TIMED_OUT", last_updated_at=now, execution_number=executions.c.execution_number + 1))
        await _complete(conn, None, None, now)
    return done.rowcount
