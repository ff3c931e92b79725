"""The transactional outbox: changes for external systems, written with the change itself.

A writer calls `enqueue(conn, ...)` inside the transaction that changes Pulse's own data, so a
row exists exactly when the change committed (a rolled-back change leaves none). A consumer
(e.g. `pulse.services.telemetron_sync`) reads PENDING rows per topic and tenant in `id` order and
must deliver each aggregate's rows in that order: ids grow monotonically, and writers lock the
aggregate's own row first, so rows of one aggregate commit in id order too.

Rows end DELIVERED (the remote accepted them) or FAILED (refused for good, with the error); a
retryable failure keeps the row PENDING with `attempts`, `last_error` and `next_attempt_at`.
Delivered rows are pruned after a retention period.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.storage.db import Database, utcnow
from pulse.storage.tables import outbox

PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"
STATUSES = (PENDING, DELIVERED, FAILED)


async def enqueue(conn: AsyncConnection, topic: str, tenant_id: str, aggregate_id: str,
                  operations: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """Append `(operation, payload)` rows for one aggregate, in the order given; returns how many."""
    now = utcnow()
    rows = [{"topic": topic, "tenant_id": tenant_id, "aggregate_id": aggregate_id, "operation": op,
             "payload": dict(payload), "status": PENDING, "attempts": 0, "created_at": now, "updated_at": now}
            for op, payload in operations]
    for row in rows:  # one statement each: executemany may not keep id order on every driver
        await conn.execute(outbox.insert().values(**row))
    return len(rows)


async def pending(db: Database, topic: str, tenant_id: str, limit: int,
                  due_at: datetime | None = None) -> list[dict[str, Any]]:
    """The tenant's oldest undelivered rows of the topic, in id order. With `due_at`, aggregates
    still backing off (a pending row with a later `next_attempt_at`) are left out, so a long queue
    that waits never hides the other aggregates behind `limit`."""
    where = [outbox.c.topic == topic, outbox.c.tenant_id == tenant_id, outbox.c.status == PENDING]
    if due_at is not None:
        waiting = (sa.select(outbox.c.aggregate_id).where(*where, outbox.c.next_attempt_at > due_at)
                   .scalar_subquery())
        where.append(outbox.c.aggregate_id.not_in(waiting))
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(outbox).where(*where).order_by(outbox.c.id).limit(limit))
        return [dict(r._mapping) for r in rows]


async def tenants_with_pending(db: Database, topic: str) -> set[str]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(outbox.c.tenant_id).where(
            outbox.c.topic == topic, outbox.c.status == PENDING).distinct())
        return {r.tenant_id for r in rows}


async def mark_delivered(db: Database, row_id: int, now: datetime | None = None) -> None:
    now = now or utcnow()
    async with db.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.status == PENDING).values(
            status=DELIVERED, attempts=outbox.c.attempts + 1, delivered_at=now, updated_at=now,
            next_attempt_at=None, last_error=None))


async def mark_failed(db: Database, row_id: int, error: str, now: datetime | None = None) -> None:
    """Refused for good: the row stops blocking its aggregate and stays visible with its error."""
    now = now or utcnow()
    async with db.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.status == PENDING).values(
            status=FAILED, attempts=outbox.c.attempts + 1, last_error=error[:2000], updated_at=now,
            next_attempt_at=None))


async def defer(db: Database, row_id: int, error: str, next_attempt_at: datetime, now: datetime | None = None) -> None:
    """A retryable failure: the row stays PENDING (and so holds back its aggregate) until then."""
    now = now or utcnow()
    async with db.begin() as conn:
        await conn.execute(outbox.update().where(outbox.c.id == row_id, outbox.c.status == PENDING).values(
            attempts=outbox.c.attempts + 1, last_error=error[:2000], next_attempt_at=next_attempt_at,
            updated_at=now))


async def requeue(db: Database, topic: str, tenant_id: str, statuses: Iterable[str] = (FAILED,)) -> int:
    """Put rows back to PENDING (e.g. FAILED ones after the cause was fixed); returns how many."""
    async with db.begin() as conn:
        res = await conn.execute(outbox.update().where(
            outbox.c.topic == topic, outbox.c.tenant_id == tenant_id, outbox.c.status.in_(list(statuses)))
            .values(status=PENDING, next_attempt_at=None, delivered_at=None, updated_at=utcnow()))
        return res.rowcount


async def counts(db: Database, topic: str, tenant_id: str) -> dict[str, Any]:
    """{PENDING, DELIVERED, FAILED: n, next_attempt_at: earliest backoff among pending rows}."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(outbox.c.status, sa.func.count()).where(
            outbox.c.topic == topic, outbox.c.tenant_id == tenant_id).group_by(outbox.c.status))
        out: dict[str, Any] = {s: 0 for s in STATUSES} | {s: n for s, n in rows}
        out["next_attempt_at"] = (await conn.execute(sa.select(outbox.c.next_attempt_at).where(
            outbox.c.topic == topic, outbox.c.tenant_id == tenant_id, outbox.c.status == PENDING,
            outbox.c.next_attempt_at.is_not(None)).order_by(outbox.c.next_attempt_at).limit(1))).scalar()
    return out


async def recent_failures(db: Database, topic: str, tenant_id: str, limit: int = 10) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(
            outbox.c.id, outbox.c.aggregate_id, outbox.c.operation, outbox.c.attempts, outbox.c.last_error,
            outbox.c.updated_at).where(outbox.c.topic == topic, outbox.c.tenant_id == tenant_id,
                                       outbox.c.status == FAILED).order_by(outbox.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


async def discard(conn: AsyncConnection, topic: str, tenant_id: str) -> int:
    """Drop every row of the tenant's topic (its integration was removed)."""
    res = await conn.execute(outbox.delete().where(outbox.c.topic == topic, outbox.c.tenant_id == tenant_id))
    return res.rowcount


async def prune_delivered(db: Database, before: datetime) -> int:
    async with db.begin() as conn:
        res = await conn.execute(outbox.delete().where(outbox.c.status == DELIVERED, outbox.c.delivered_at < before))
        return res.rowcount
