"""Device groups of a tenant: static (explicit members) or dynamic (members computed from a query).

A dynamic group's query `{"status", "tags", "site_id"}` is evaluated in SQL whenever it is read, so
membership always reflects the registry and tags as they are now; all given criteria must hold,
and a device must carry every listed tag. A group's kind is fixed when it is created.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.scopes import DeviceFacts
from pulse.errors import Conflict, NotFound
from pulse.storage.db import Database, delete_tenant_row, insert_missing, page_rows, tenant_row, update_row, utcnow
from pulse.storage.tables import device_group_members as members
from pulse.storage.tables import device_groups, device_tags, devices
from pulse.storage.tags import has_all_tags

GROUP_FIELDS = ("name", "description", "query")
_COUNT_CHUNK = 200  # scalar subqueries per statement when counting dynamic groups


def query_conditions(query: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    """Conditions on `devices` rows (of one tenant) that a dynamic group's query selects."""
    conds: list[sa.ColumnElement[bool]] = []
    if query.get("status"):
        conds.append(devices.c.status == query["status"])
    if query.get("site_id"):
        conds.append(devices.c.site_id == query["site_id"])
    return conds + has_all_tags(query.get("tags") or ())


def _criteria(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The query as stored: only the criteria given."""
    return None if query is None else {k: v for k, v in query.items() if v}


def _member_conditions(group: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    if group["query"] is not None:
        return query_conditions(group["query"])
    return [sa.exists().where(members.c.group_id == group["group_id"], members.c.tenant_id == devices.c.tenant_id,
                              members.c.device_id == devices.c.device_id)]


async def _row(conn: AsyncConnection, tenant_id: str, group_id: str) -> dict[str, Any]:
    return dict((await tenant_row(conn, device_groups, tenant_id, "group_id", group_id, "device group"))._mapping)


async def member_conditions(conn: AsyncConnection, tenant_id: str, group_id: str) -> list[sa.ColumnElement[bool]]:
    """Conditions on `devices` rows selecting the group's members; NotFound for another tenant's group."""
    return _member_conditions(await _row(conn, tenant_id, group_id))


async def _with_counts(conn: AsyncConnection, tenant_id: str, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    static = [g["group_id"] for g in groups if g["query"] is None]
    dynamic = [g for g in groups if g["query"] is not None]
    counts: dict[str, int] = {}
    if static:
        rows = await conn.execute(sa.select(members.c.group_id, sa.func.count()).where(
            members.c.tenant_id == tenant_id, members.c.group_id.in_(static)).group_by(members.c.group_id))
        counts.update({gid: n for gid, n in rows})
    for i in range(0, len(dynamic), _COUNT_CHUNK):
        chunk = dynamic[i:i + _COUNT_CHUNK]
        # one round trip: a scalar count subquery per dynamic group
        row = (await conn.execute(sa.select(*[
            sa.select(sa.func.count()).select_from(devices)
            .where(devices.c.tenant_id == tenant_id, *query_conditions(g["query"]))
            .scalar_subquery().label(f"c{j}") for j, g in enumerate(chunk)]))).one()
        counts.update({g["group_id"]: n for g, n in zip(chunk, row)})
    return [{**g, "kind": "static" if g["query"] is None else "dynamic", "device_count": counts.get(g["group_id"], 0)}
            for g in groups]


async def get(db: Database, tenant_id: str, group_id: str) -> dict[str, Any]:
    async with db.connect() as conn:
        return (await _with_counts(conn, tenant_id, [await _row(conn, tenant_id, group_id)]))[0]


async def list_groups(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(device_groups).where(device_groups.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [device_groups.c.name, device_groups.c.group_id], limit, offset)
        return await _with_counts(conn, tenant_id, [dict(r._mapping) for r in rows]), total


def _name_taken(name: str) -> Conflict:
    return Conflict(f"a device group named {name!r} already exists")


async def create(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now, group_id = utcnow(), str(uuid.uuid4())
    async with db.begin() as conn:
        try:
            await conn.execute(device_groups.insert().values(
                group_id=group_id, tenant_id=tenant_id, created_at=now, updated_at=now,
                name=fields["name"], description=fields.get("description"), query=_criteria(fields.get("query"))))
        except sa.exc.IntegrityError:
            raise _name_taken(fields["name"]) from None
    return await get(db, tenant_id, group_id)


async def update(db: Database, tenant_id: str, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in fields.items() if k in GROUP_FIELDS}
    if "query" in values:
        values["query"] = _criteria(values["query"])
    async with db.begin() as conn:
        group = await _row(conn, tenant_id, group_id)
        if "query" in values and (values["query"] is None) != (group["query"] is None):
            raise Conflict("a group stays static or dynamic: create a new group to change its kind")
        await update_row(conn, device_groups, "group_id", group_id, values, _name_taken(values.get("name", "")))
    return await get(db, tenant_id, group_id)


async def delete(db: Database, tenant_id: str, group_id: str) -> None:
    """Memberships go with the group; windows and rules naming it no longer match anything through it."""
    async with db.begin() as conn:
        await delete_tenant_row(conn, device_groups, tenant_id, "group_id", group_id, "device group")


async def _static_group_and_device(conn: AsyncConnection, tenant_id: str, group_id: str, device_id: str) -> None:
    group = await _row(conn, tenant_id, group_id)
    found = (await conn.execute(sa.select(devices.c.device_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    if found is None:
        raise NotFound(f"device {device_id} not found")
    if group["query"] is not None:
        raise Conflict(f"device group {group_id} is dynamic: its members follow its query")


async def add_member(db: Database, tenant_id: str, group_id: str, device_id: str) -> None:
    """Idempotent: adding a member twice keeps one membership (and its first `added_at`)."""
    async with db.begin() as conn:
        await _static_group_and_device(conn, tenant_id, group_id, device_id)
        await insert_missing(conn, members, [{"tenant_id": tenant_id, "group_id": group_id, "device_id": device_id,
                                              "added_at": utcnow()}])


async def remove_member(db: Database, tenant_id: str, group_id: str, device_id: str) -> None:
    """Idempotent: removing a device that is not a member is not an error."""
    async with db.begin() as conn:
        await _static_group_and_device(conn, tenant_id, group_id, device_id)
        await conn.execute(members.delete().where(members.c.tenant_id == tenant_id, members.c.group_id == group_id,
                                                  members.c.device_id == device_id))


async def existing_ids(conn: AsyncConnection, tenant_id: str, group_ids: Iterable[str]) -> set[str]:
    ids = set(group_ids)
    if not ids:
        return set()
    rows = await conn.execute(sa.select(device_groups.c.group_id).where(
        device_groups.c.tenant_id == tenant_id, device_groups.c.group_id.in_(ids)))
    return {r.group_id for r in rows}


async def memberships(conn: AsyncConnection, tenant_id: str, device_id: str, group_ids: Iterable[str]) -> set[str]:
    """Which of `group_ids` (static or dynamic, of this tenant) the device belongs to right now."""
    ids = set(group_ids)
    if not ids:
        return set()
    groups = [dict(r._mapping) for r in await conn.execute(sa.select(device_groups).where(
        device_groups.c.tenant_id == tenant_id, device_groups.c.group_id.in_(ids)))]
    found: set[str] = set()
    static = [g["group_id"] for g in groups if g["query"] is None]
    if static:
        rows = await conn.execute(sa.select(members.c.group_id).where(
            members.c.tenant_id == tenant_id, members.c.device_id == device_id, members.c.group_id.in_(static)))
        found |= {r.group_id for r in rows}
    dynamic = [g for g in groups if g["query"] is not None]
    if dynamic:
        row = (await conn.execute(sa.select(*[
            sa.exists().where(devices.c.tenant_id == tenant_id, devices.c.device_id == device_id,
                              *query_conditions(g["query"])).label(f"m{j}") for j, g in enumerate(dynamic)]))).one()
        found |= {g["group_id"] for g, member in zip(dynamic, row) if member}
    return found


async def device_facts(conn: AsyncConnection, tenant_id: str, device_id: str, group_ids: Iterable[str]) -> DeviceFacts:
    """What a scope can select the device by: its site, template, tags, and its memberships among
    `group_ids` (the groups the caller's scopes name: each dynamic one costs a query). A device
    that is not registered has none of them."""
    row = (await conn.execute(sa.select(devices.c.site_id, devices.c.template_id).where(
        devices.c.tenant_id == tenant_id, devices.c.device_id == device_id))).first()
    tags = await conn.execute(sa.select(device_tags.c.tag).where(
        device_tags.c.tenant_id == tenant_id, device_tags.c.device_id == device_id))
    return DeviceFacts(device_id, row.site_id if row else None, frozenset(r.tag for r in tags),
                       frozenset(await memberships(conn, tenant_id, device_id, group_ids)),
                       row.template_id if row else None)
