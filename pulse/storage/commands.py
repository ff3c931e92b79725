"""Commands sent to devices and their status history."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from pulse.domain.commands import OPEN_STATUSES
from pulse.domain.messages import CommandStatus
from pulse.errors import NotFound
from pulse.storage.db import Database, page_rows, utcnow, where_given
from pulse.storage.tables import device_commands


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _public(row) -> dict[str, Any]:
    return dict(row._mapping)


async def create(db: Database, tenant_id: str, device_id: str, command_type: str, params: dict[str, Any],
                 expires_in_s: int, created_by: str) -> dict[str, Any]:
    now = utcnow()
    values = dict(command_id=str(uuid.uuid4()), tenant_id=tenant_id, device_id=device_id,
                  command_type=command_type, params=params, status="pending", created_by=created_by,
                  created_at=now, expires_at=now + timedelta(seconds=expires_in_s))
    async with db.begin() as conn:
        await conn.execute(device_commands.insert().values(**values))
    return values


def as_actor_command(cmd: dict[str, Any]) -> dict[str, Any]:
    """The device actor's copy: what goes on the wire, plus times in ms for ordering and expiry."""
    return {"command_id": cmd["command_id"], "type": cmd["command_type"], "params": cmd["params"],
            "expires_at": cmd["expires_at"].isoformat(), "expires_ms": int(cmd["expires_at"].timestamp() * 1000),
            "created_ms": int(cmd["created_at"].timestamp() * 1000)}


async def get(db: Database, tenant_id: str, device_id: str, command_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        row = (await conn.execute(sa.select(device_commands).where(
            device_commands.c.tenant_id == tenant_id, device_commands.c.device_id == device_id,
            device_commands.c.command_id == command_id))).first()
    if row is None:
        raise NotFound(f"command {command_id} not found")
    return _public(row)


async def list_commands(db: Database, tenant_id: str, device_id: str, status: str | None,
                        limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(device_commands).where(device_commands.c.tenant_id == tenant_id,
                                         device_commands.c.device_id == device_id)
    q = where_given(q, device_commands, status=status)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [device_commands.c.created_at.desc(), device_commands.c.command_id],
                                      limit, offset)
        return [_public(r) for r in rows], total


async def open_for_device(db: Database, tenant_id: str, device_id: str, now: datetime) -> list[dict[str, Any]]:
    """The device's commands not yet settled nor expired, oldest first (the device HTTP API's pending list)."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(device_commands).where(
            device_commands.c.tenant_id == tenant_id, device_commands.c.device_id == device_id,
            device_commands.c.status.in_(OPEN_STATUSES), device_commands.c.expires_at > now,
        ).order_by(device_commands.c.created_at, device_commands.c.command_id))
        return [_public(r) for r in rows]


async def apply_statuses(db: Database, updates: list[tuple[str, str, CommandStatus]]) -> int:
    """Move open commands on; a command already final (or expired) keeps its status."""
    changed = 0
    async with db.begin() as conn:
        for tenant_id, device_id, u in updates:
            values: dict[str, Any] = {"status": u.status}
            if u.status == "delivered":
                values["published_at"] = _dt(u.ts_ms)
                allowed = ("pending",)
            else:
                values.update(acked_at=_dt(u.ts_ms), ack_details=u.details)
                allowed = OPEN_STATUSES
            res = await conn.execute(device_commands.update().where(
                device_commands.c.tenant_id == tenant_id, device_commands.c.device_id == device_id,
                device_commands.c.command_id == u.command_id, device_commands.c.status.in_(allowed)).values(**values))
            changed += res.rowcount
    return changed


async def expire_due(db: Database, now: datetime | None = None) -> int:
    """The scheduler's sweep: open commands past their expiry become `expired`."""
    async with db.begin() as conn:
        res = await conn.execute(device_commands.update().where(
            device_commands.c.status.in_(OPEN_STATUSES),
            device_commands.c.expires_at <= (now or utcnow())).values(status="expired"))
        return res.rowcount
