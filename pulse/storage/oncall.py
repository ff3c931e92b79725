"""On-call schedules of a tenant: schedules, their layers and overrides, and who is on call.

The rotation maths lives in `pulse.domain.oncall`; this module loads what an answer needs (the
schedule, its layers, the overrides overlapping the period asked about) and keeps the invariants:
schedule names unique per tenant, layer orders unique per schedule, at most MAX_LAYERS layers, an
override's layer belongs to its schedule. Escalation asks `responders_now`.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain.oncall import (CURRENT_HORIZON, Layer, Override, check_range, final_timeline, layer_on_call,
                                 layer_shifts, on_call_at, responder_at)
from pulse.domain.timezones import as_utc, zone
from pulse.domain.windows import wall_clock
from pulse.errors import Conflict, Invalid, NotFound
from pulse.storage.db import Database, delete_tenant_row, page_rows, tenant_row, update_row, utcnow
from pulse.storage.tables import oncall_layers as layers
from pulse.storage.tables import oncall_overrides as overrides
from pulse.storage.tables import oncall_schedules as schedules

SCHEDULE_FIELDS = ("name", "description", "timezone")
LAYER_FIELDS = ("name", "order", "rotation_type", "shift_hours", "handoff_time", "handoff_day", "start_at", "end_at",
                "participants", "restrictions")
MAX_LAYERS = 20  # each layer adds its shifts to every timeline merge


# ---- schedules ---------------------------------------------------------------------------------
def _schedule_public(row) -> dict[str, Any]:
    return dict(row._mapping)


def _layer_public(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d["order"] = d.pop("layer_order")
    d.pop("tenant_id")
    return d


async def _schedule(conn: AsyncConnection, tenant_id: str, schedule_id: str) -> dict[str, Any]:
    return _schedule_public(await tenant_row(conn, schedules, tenant_id, "schedule_id", schedule_id,
                                             "on-call schedule"))


async def _layers_of(conn: AsyncConnection, tenant_id: str, schedule_ids: Iterable[str]) -> dict[str, list[dict]]:
    """Each schedule's layers by priority (order)."""
    ids = list(schedule_ids)
    found: dict[str, list[dict]] = {sid: [] for sid in ids}
    if ids:
        rows = await conn.execute(sa.select(layers).where(layers.c.tenant_id == tenant_id,
                                                          layers.c.schedule_id.in_(ids))
                                  .order_by(layers.c.layer_order, layers.c.layer_id))
        for row in rows:
            found[row.schedule_id].append(_layer_public(row))
    return found


async def _with_layers(conn: AsyncConnection, tenant_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_schedule = await _layers_of(conn, tenant_id, [s["schedule_id"] for s in items])
    return [{**s, "layers": by_schedule[s["schedule_id"]]} for s in items]


async def get_schedule(db: Database, tenant_id: str, schedule_id: str) -> dict[str, Any]:
    """The schedule with its layers by priority."""
    async with db.connect() as conn:
        return (await _with_layers(conn, tenant_id, [await _schedule(conn, tenant_id, schedule_id)]))[0]


async def list_schedules(db: Database, tenant_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    q = sa.select(schedules).where(schedules.c.tenant_id == tenant_id)
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, [schedules.c.name, schedules.c.schedule_id], limit, offset)
        return await _with_layers(conn, tenant_id, [_schedule_public(r) for r in rows]), total


def _check_zone(name: str) -> None:
    try:
        zone(name)
    except ValueError as e:
        raise Invalid(f"timezone: {e}") from None


def _name_taken(name: str) -> Conflict:
    return Conflict(f"an on-call schedule named {name!r} already exists")


async def create_schedule(db: Database, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    now, schedule_id = utcnow(), str(uuid.uuid4())
    values = {k: fields[k] for k in SCHEDULE_FIELDS if k in fields}
    _check_zone(values.setdefault("timezone", "UTC"))
    async with db.begin() as conn:
        try:
            await conn.execute(schedules.insert().values(schedule_id=schedule_id, tenant_id=tenant_id,
                                                         created_at=now, updated_at=now, **values))
        except sa.exc.IntegrityError:
            raise _name_taken(values["name"]) from None
    return await get_schedule(db, tenant_id, schedule_id)


async def update_schedule(db: Database, tenant_id: str, schedule_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Changing the time zone moves every handoff and restriction to the new zone's wall clock."""
    values = {k: v for k, v in fields.items() if k in SCHEDULE_FIELDS}
    if "timezone" in values:
        _check_zone(values["timezone"])
    async with db.begin() as conn:
        await _schedule(conn, tenant_id, schedule_id)
        await update_row(conn, schedules, "schedule_id", schedule_id, values, _name_taken(values.get("name", "")))
    return await get_schedule(db, tenant_id, schedule_id)


async def delete_schedule(db: Database, tenant_id: str, schedule_id: str) -> None:
    """Layers and overrides go with the schedule."""
    async with db.begin() as conn:
        await delete_tenant_row(conn, schedules, tenant_id, "schedule_id", schedule_id, "on-call schedule")


# ---- layers ------------------------------------------------------------------------------------
def _layer_values(layer: dict[str, Any], timezone: str) -> dict[str, Any]:
    """A complete, checked layer: handoff time and day default to start_at's local ones."""
    tz = zone(timezone)
    out = {k: layer.get(k) for k in LAYER_FIELDS}
    if out["start_at"] is not None:
        local = wall_clock(as_utc(out["start_at"]), tz)
        if out["handoff_time"] is None:
            out["handoff_time"] = f"{local.hour:02d}:{local.minute:02d}"
        if out["rotation_type"] == "weekly" and out["handoff_day"] is None:
            out["handoff_day"] = local.weekday()
    out["restrictions"] = out["restrictions"] or []
    try:
        Layer.from_row(out)
    except (KeyError, TypeError, ValueError) as e:
        raise Invalid(f"invalid on-call layer: {e}") from None
    return out


async def _layer_row(conn: AsyncConnection, tenant_id: str, schedule_id: str, layer_id: str) -> dict[str, Any]:
    row = (await conn.execute(sa.select(layers).where(
        layers.c.tenant_id == tenant_id, layers.c.schedule_id == schedule_id, layers.c.layer_id == layer_id))).first()
    if row is None:
        raise NotFound(f"layer {layer_id} not found in on-call schedule {schedule_id}")
    return _layer_public(row)


async def _check_order_free(conn: AsyncConnection, schedule_id: str, order: int, layer_id: str | None) -> None:
    taken = (await conn.execute(sa.select(layers.c.layer_id).where(
        layers.c.schedule_id == schedule_id, layers.c.layer_order == order))).first()
    if taken is not None and taken.layer_id != layer_id:
        raise _order_taken(order)


def _order_taken(order: int) -> Conflict:
    return Conflict(f"another layer of this schedule has order {order}")


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    stored = {k: v for k, v in values.items() if k != "order"}
    stored["layer_order"] = values["order"]
    return stored


async def add_layer(db: Database, tenant_id: str, schedule_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Without `order` the layer goes after the last one (lowest priority)."""
    now, layer_id = utcnow(), str(uuid.uuid4())
    async with db.begin() as conn:
        schedule = await _schedule(conn, tenant_id, schedule_id)
        orders = [o for (o,) in await conn.execute(sa.select(layers.c.layer_order).where(
            layers.c.tenant_id == tenant_id, layers.c.schedule_id == schedule_id))]
        if len(orders) >= MAX_LAYERS:
            raise Conflict(f"an on-call schedule has at most {MAX_LAYERS} layers")
        values = _layer_values({**fields, "order": fields.get("order")}, schedule["timezone"])
        if values["order"] is None:
            values["order"] = max(orders) + 1 if orders else 0
        await _check_order_free(conn, schedule_id, values["order"], None)
        try:
            await conn.execute(layers.insert().values(layer_id=layer_id, tenant_id=tenant_id, schedule_id=schedule_id,
                                                      created_at=now, updated_at=now, **_stored(values)))
        except sa.exc.IntegrityError:  # a concurrent write took the order
            raise _order_taken(values["order"]) from None
        return await _layer_row(conn, tenant_id, schedule_id, layer_id)


async def update_layer(db: Database, tenant_id: str, schedule_id: str, layer_id: str,
                       fields: dict[str, Any]) -> dict[str, Any]:
    """A partial update, checked as a whole. A new rotation_type drops `shift_hours` and
    `handoff_day` it does not use (unless given), and a weekly one gets start_at's weekday."""
    async with db.begin() as conn:
        schedule = await _schedule(conn, tenant_id, schedule_id)
        current = await _layer_row(conn, tenant_id, schedule_id, layer_id)
        merged = {**current, **{k: v for k, v in fields.items() if k in LAYER_FIELDS}}
        if "rotation_type" in fields:
            for key, kind in (("shift_hours", "custom"), ("handoff_day", "weekly")):
                if key not in fields and merged["rotation_type"] != kind:
                    merged[key] = None
        values = _layer_values(merged, schedule["timezone"])
        await _check_order_free(conn, schedule_id, values["order"], layer_id)
        await update_row(conn, layers, "layer_id", layer_id, _stored(values), _order_taken(values["order"]))
        return await _layer_row(conn, tenant_id, schedule_id, layer_id)


async def delete_layer(db: Database, tenant_id: str, schedule_id: str, layer_id: str) -> None:
    """The layer's own overrides go with it; schedule-wide overrides stay."""
    async with db.begin() as conn:
        await _schedule(conn, tenant_id, schedule_id)
        res = await conn.execute(layers.delete().where(
            layers.c.tenant_id == tenant_id, layers.c.schedule_id == schedule_id, layers.c.layer_id == layer_id))
        if res.rowcount == 0:
            raise NotFound(f"layer {layer_id} not found in on-call schedule {schedule_id}")


# ---- overrides ---------------------------------------------------------------------------------
def _overlapping(start: datetime | None, end: datetime | None) -> list[sa.ColumnElement[bool]]:
    conds = []
    if start is not None:
        conds.append(overrides.c.end_at > start)
    if end is not None:
        conds.append(overrides.c.start_at < end)
    return conds


def _override_public(row) -> dict[str, Any]:
    d = dict(row._mapping)
    d.pop("tenant_id")
    return d


async def list_overrides(db: Database, tenant_id: str, schedule_id: str, *, start: datetime | None = None,
                         end: datetime | None = None, limit: int = 50,
                         offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """By start; `start`/`end` keep those overlapping [start, end) (either bound may be open)."""
    q = sa.select(overrides).where(overrides.c.tenant_id == tenant_id, overrides.c.schedule_id == schedule_id,
                                   *_overlapping(start, end))
    async with db.connect() as conn:
        await _schedule(conn, tenant_id, schedule_id)
        rows, total = await page_rows(conn, q, [overrides.c.start_at, overrides.c.override_id], limit, offset)
        return [_override_public(r) for r in rows], total


async def create_override(db: Database, tenant_id: str, schedule_id: str, fields: dict[str, Any],
                          created_by: str | None = None) -> dict[str, Any]:
    now, override_id = utcnow(), str(uuid.uuid4())
    values = {k: fields.get(k) for k in ("responder", "start_at", "end_at", "layer_id", "reason")}
    if as_utc(values["end_at"]) <= as_utc(values["start_at"]):
        raise Invalid("end_at must be after start_at")
    async with db.begin() as conn:
        await _schedule(conn, tenant_id, schedule_id)
        if values["layer_id"] is not None:
            try:
                await _layer_row(conn, tenant_id, schedule_id, values["layer_id"])
            except NotFound:
                raise Invalid(f"layer_id: no layer {values['layer_id']} in this schedule") from None
        await conn.execute(overrides.insert().values(override_id=override_id, tenant_id=tenant_id,
                                                     schedule_id=schedule_id, created_by=created_by,
                                                     created_at=now, **values))
        row = (await conn.execute(sa.select(overrides).where(overrides.c.override_id == override_id))).one()
        return _override_public(row)


async def delete_override(db: Database, tenant_id: str, schedule_id: str, override_id: str) -> None:
    async with db.begin() as conn:
        await _schedule(conn, tenant_id, schedule_id)
        res = await conn.execute(overrides.delete().where(
            overrides.c.tenant_id == tenant_id, overrides.c.schedule_id == schedule_id,
            overrides.c.override_id == override_id))
        if res.rowcount == 0:
            raise NotFound(f"override {override_id} not found in on-call schedule {schedule_id}")


# ---- who is on call ----------------------------------------------------------------------------
async def _load(db: Database, tenant_id: str, schedule_id: str, start: datetime,
                end: datetime) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The schedule, its layers and the overrides overlapping [start, end)."""
    async with db.connect() as conn:
        schedule = await _schedule(conn, tenant_id, schedule_id)
        found = (await _layers_of(conn, tenant_id, [schedule_id]))[schedule_id]
        rows = await conn.execute(sa.select(overrides).where(
            overrides.c.tenant_id == tenant_id, overrides.c.schedule_id == schedule_id, *_overlapping(start, end))
            .order_by(overrides.c.start_at, overrides.c.override_id))
        return schedule, found, [_override_public(r) for r in rows]


def _layer_head(layer: dict[str, Any]) -> dict[str, Any]:
    return {k: layer[k] for k in ("layer_id", "name", "order")}


def _person(shift) -> dict[str, Any] | None:
    return None if shift is None else {"responder": shift.responder, "start": shift.start, "end": shift.end}


async def current(db: Database, tenant_id: str, schedule_id: str, at: datetime) -> dict[str, Any]:
    """Who is on call at `at`: the final answer (with the stretch it belongs to, clipped to
    CURRENT_HORIZON either side), each layer's own rotation, and the overrides in effect."""
    at = as_utc(at)
    schedule, layer_rows, override_rows = await _load(db, tenant_id, schedule_id, at - CURRENT_HORIZON,
                                                      at + CURRENT_HORIZON)
    tz = zone(schedule["timezone"])
    parsed = [Layer.from_row(r) for r in layer_rows]
    final = on_call_at(parsed, [Override.from_row(r) for r in override_rows], tz, at)
    return {
        "schedule_id": schedule_id, "name": schedule["name"], "timezone": schedule["timezone"], "at": at,
        "on_call": final.as_dict() if final else None,
        "responders": [final.responder] if final else [],
        "layers": [{**_layer_head(row), "on_call": _person(layer_on_call(layer, tz, at))}
                   for row, layer in zip(layer_rows, parsed)],
        "overrides": [o for o in override_rows if o["start_at"] <= at < o["end_at"]],
    }


async def timeline(db: Database, tenant_id: str, schedule_id: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Each layer's shifts (its rotation cut to its restrictions, no overrides), the overrides
    overlapping the range, and the final timeline with overrides applied; at most MAX_RANGE."""
    try:
        start, end = check_range(start, end)
    except ValueError as e:
        raise Invalid(str(e)) from None
    schedule, layer_rows, override_rows = await _load(db, tenant_id, schedule_id, start, end)
    tz = zone(schedule["timezone"])
    parsed = [Layer.from_row(r) for r in layer_rows]
    return {
        "schedule_id": schedule_id, "name": schedule["name"], "timezone": schedule["timezone"],
        "start": start, "end": end,
        "layers": [{**_layer_head(row), "shifts": [_person(s) for s in layer_shifts(layer, tz, start, end)]}
                   for row, layer in zip(layer_rows, parsed)],
        "overrides": override_rows,
        "final": [s.as_dict() for s in final_timeline(parsed, [Override.from_row(r) for r in override_rows],
                                                      tz, start, end)],
    }


async def responders_now(db: Database, tenant_id: str, schedule_id: str, at: datetime) -> list[str]:
    """Who to page for the schedule at `at`: one person, or [] when nobody is on call.
    NotFound for a schedule that does not exist in the tenant (e.g. deleted since it was linked)."""
    at = as_utc(at)
    schedule, layer_rows, override_rows = await _load(db, tenant_id, schedule_id, at, at + timedelta(microseconds=1))
    who = responder_at([Layer.from_row(r) for r in layer_rows], [Override.from_row(r) for r in override_rows],
                       zone(schedule["timezone"]), at)
    return [who] if who else []
