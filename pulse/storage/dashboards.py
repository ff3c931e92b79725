"""Dashboards and their widgets (docs/dashboards.md): what a user sees (their own and the tenant's
shared ones), the per-user and per-dashboard limits, layouts and the idempotent bootstrap.

A dashboard another user owns is treated as absent (NotFound), exactly like another tenant's: a
personal dashboard is invisible to everyone but its owner. The rules are pulse/domain/dashboards.py.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from pulse.domain import dashboards as rules
from pulse.errors import BadRequest, NotFound
from pulse.storage.db import Database, count, page_rows
from pulse.storage.tables import dashboard_widgets as widgets, dashboards

NOT_FOUND = "Dashboard not found"
WIDGET_NOT_FOUND = "Widget not found"
TOO_MANY_DASHBOARDS = f"Maximum {rules.MAX_PERSONAL_DASHBOARDS} dashboards per user"
TOO_MANY_WIDGETS = f"Maximum {rules.MAX_WIDGETS} widgets per dashboard"
WidgetChanges = Callable[[dict[str, Any]], dict[str, Any]]


def _visible(tenant_id: str, user_id: str) -> sa.ColumnElement[bool]:
    """The caller's own dashboards and the tenant's shared ones."""
    return sa.and_(dashboards.c.tenant_id == tenant_id,
                   sa.or_(dashboards.c.user_id == user_id, dashboards.c.user_id.is_(None)))


def _view(row: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k not in ("user_id", "bootstrapped_for", "tenant_id")}
    return {**out, "is_shared": row["user_id"] is None, "is_owner": row["user_id"] == user_id}


async def _dashboard(conn: AsyncConnection, tenant_id: str, user_id: str, dashboard_id: int) -> dict[str, Any]:
    row = (await conn.execute(sa.select(dashboards).where(
        _visible(tenant_id, user_id), dashboards.c.id == dashboard_id))).first()
    if row is None:
        raise NotFound(NOT_FOUND)
    return dict(row._mapping)


async def _touch(conn: AsyncConnection, dashboard_id: int, now: datetime, **values: Any) -> None:
    await conn.execute(dashboards.update().where(dashboards.c.id == dashboard_id).values(updated_at=now, **values))


async def _clear_defaults(conn: AsyncConnection, tenant_id: str, user_id: str, keep: int) -> None:
    """One default per user: setting it on a dashboard takes it from the user's others."""
    await conn.execute(dashboards.update().where(
        dashboards.c.tenant_id == tenant_id, dashboards.c.user_id == user_id, dashboards.c.id != keep,
        dashboards.c.is_default.is_(True)).values(is_default=False))


def _widget_counts() -> sa.Subquery:
    return (sa.select(widgets.c.dashboard_id, sa.func.count().label("widget_count"))
            .group_by(widgets.c.dashboard_id).subquery())


# ---- dashboards ----------------------------------------------------------------------------------------
async def list_visible(db: Database, tenant_id: str, user_id: str, limit: int,
                       offset: int) -> tuple[list[dict[str, Any]], int]:
    """Own and shared, the default first, then the most recently updated; and how many there are."""
    counts = _widget_counts()
    q = (sa.select(dashboards, sa.func.coalesce(counts.c.widget_count, 0).label("widget_count"))
         .outerjoin(counts, counts.c.dashboard_id == dashboards.c.id).where(_visible(tenant_id, user_id)))
    order = [dashboards.c.is_default.desc(), dashboards.c.updated_at.desc(), dashboards.c.id.desc()]
    async with db.connect() as conn:
        rows, total = await page_rows(conn, q, order, limit, offset)
    return [_view(r._mapping, user_id) for r in rows], total


async def _insert(conn: AsyncConnection, tenant_id: str, user_id: str, fields: Mapping[str, Any], now: datetime,
                  bootstrapped: bool = False) -> dict[str, Any]:
    await _room_for_one_more(conn, tenant_id, user_id)
    values = {"tenant_id": tenant_id, "user_id": user_id, "name": fields["name"],
              "description": fields.get("description", ""), "is_default": bool(fields.get("is_default")),
              "layout": [], "bootstrapped_for": user_id if bootstrapped else None, "created_at": now,
              "updated_at": now}
    dashboard_id = (await conn.execute(dashboards.insert().values(**values).returning(dashboards.c.id))).scalar_one()
    if values["is_default"]:
        await _clear_defaults(conn, tenant_id, user_id, dashboard_id)
    return _view({"id": dashboard_id, **values}, user_id)


async def _room_for_one_more(conn: AsyncConnection, tenant_id: str, user_id: str) -> None:
    """BadRequest when the user already has the most personal dashboards allowed."""
    personal = sa.select(dashboards.c.id).where(dashboards.c.tenant_id == tenant_id, dashboards.c.user_id == user_id)
    if await count(conn, personal) >= rules.MAX_PERSONAL_DASHBOARDS:
        raise BadRequest(TOO_MANY_DASHBOARDS)


async def create(db: Database, tenant_id: str, user_id: str, fields: Mapping[str, Any],
                 now: datetime) -> dict[str, Any]:
    """A personal dashboard of the caller; BadRequest past the per-user limit."""
    async with db.begin() as conn:
        return {**await _insert(conn, tenant_id, user_id, fields, now), "widgets": []}


async def get(db: Database, tenant_id: str, user_id: str, dashboard_id: int) -> dict[str, Any]:
    """The dashboard and its widgets (in creation order)."""
    async with db.connect() as conn:
        dashboard = _view(await _dashboard(conn, tenant_id, user_id, dashboard_id), user_id)
        rows = await conn.execute(sa.select(widgets).where(
            widgets.c.tenant_id == tenant_id, widgets.c.dashboard_id == dashboard_id).order_by(widgets.c.id))
        dashboard["widgets"] = [dict(r._mapping) for r in rows]
    return dashboard


async def update(db: Database, tenant_id: str, user_id: str, dashboard_id: int, values: Mapping[str, Any],
                 now: datetime) -> dict[str, Any]:
    async with db.begin() as conn:
        row = await _dashboard(conn, tenant_id, user_id, dashboard_id)
        await _touch(conn, dashboard_id, now, **values)
        if values.get("is_default"):
            await _clear_defaults(conn, tenant_id, user_id, dashboard_id)
    return _view({**row, **values, "updated_at": now}, user_id)


async def delete(db: Database, tenant_id: str, user_id: str, dashboard_id: int) -> None:
    """The dashboard and (by cascade) its widgets."""
    async with db.begin() as conn:
        await _dashboard(conn, tenant_id, user_id, dashboard_id)
        await conn.execute(dashboards.delete().where(dashboards.c.id == dashboard_id))


async def share(db: Database, tenant_id: str, user_id: str, dashboard_id: int, shared: bool,
                now: datetime) -> dict[str, Any]:
    """Shared: the tenant's (user_id NULL); not shared: the caller's own. Either way it is no longer the
    one bootstrap made for its first owner, who may bootstrap again if it is gone from their view."""
    async with db.begin() as conn:
        row = await _dashboard(conn, tenant_id, user_id, dashboard_id)
        if not shared and row["user_id"] is None:  # a shared one taken back counts against the per-user limit
            await _room_for_one_more(conn, tenant_id, user_id)
        await _touch(conn, dashboard_id, now, user_id=None if shared else user_id, bootstrapped_for=None)
    return {"id": dashboard_id, "is_shared": shared}


async def set_layout(db: Database, tenant_id: str, user_id: str, dashboard_id: int,
                     layout: list[rules.LayoutItem], now: datetime) -> None:
    """Each listed widget moved to its place; the layout stored as sent. BadRequest for a widget id that is
    not on this dashboard or listed twice."""
    async with db.begin() as conn:
        await _dashboard(conn, tenant_id, user_id, dashboard_id)
        ids = set((await conn.execute(sa.select(widgets.c.id).where(
            widgets.c.tenant_id == tenant_id, widgets.c.dashboard_id == dashboard_id))).scalars())
        rules.check_layout(layout, ids)
        for item in layout:
            await conn.execute(widgets.update().where(widgets.c.id == item.widget_id).values(
                position=item.model_dump(exclude={"widget_id"}), updated_at=now))
        await _touch(conn, dashboard_id, now, layout=[item.model_dump() for item in layout])


# ---- widgets -------------------------------------------------------------------------------------------
async def _add(conn: AsyncConnection, tenant_id: str, dashboard_id: int, widget: Mapping[str, Any],
               now: datetime) -> dict[str, Any]:
    values = {"tenant_id": tenant_id, "dashboard_id": dashboard_id, "widget_type": widget["widget_type"],
              "title": widget.get("title", ""), "config": widget["config"], "position": widget["position"],
              "created_at": now, "updated_at": now}
    widget_id = (await conn.execute(widgets.insert().values(**values).returning(widgets.c.id))).scalar_one()
    return {"id": widget_id, **values}


async def add_widget(db: Database, tenant_id: str, user_id: str, dashboard_id: int, widget: Mapping[str, Any],
                     now: datetime) -> dict[str, Any]:
    """A widget on a visible dashboard; BadRequest past the per-dashboard limit."""
    async with db.begin() as conn:
        await _dashboard(conn, tenant_id, user_id, dashboard_id)
        on_it = sa.select(widgets.c.id).where(widgets.c.tenant_id == tenant_id, widgets.c.dashboard_id == dashboard_id)
        if await count(conn, on_it) >= rules.MAX_WIDGETS:
            raise BadRequest(TOO_MANY_WIDGETS)
        created = await _add(conn, tenant_id, dashboard_id, widget, now)
        await _touch(conn, dashboard_id, now)
    return created


def _of(tenant_id: str, dashboard_id: int, widget_id: int) -> list[sa.ColumnElement[bool]]:
    return [widgets.c.tenant_id == tenant_id, widgets.c.dashboard_id == dashboard_id, widgets.c.id == widget_id]


async def update_widget(db: Database, tenant_id: str, user_id: str, dashboard_id: int, widget_id: int,
                        changes: WidgetChanges, now: datetime) -> dict[str, Any]:
    """`changes(widget) -> values` applied (it validates against the widget's type, and may raise)."""
    async with db.begin() as conn:
        await _dashboard(conn, tenant_id, user_id, dashboard_id)
        row = (await conn.execute(sa.select(widgets).where(*_of(tenant_id, dashboard_id, widget_id)))).first()
        if row is None:
            raise NotFound(WIDGET_NOT_FOUND)
        values = {**changes(dict(row._mapping)), "updated_at": now}
        await conn.execute(widgets.update().where(widgets.c.id == widget_id).values(**values))
        await _touch(conn, dashboard_id, now)
    return {**row._mapping, **values}


async def delete_widget(db: Database, tenant_id: str, user_id: str, dashboard_id: int, widget_id: int,
                        now: datetime) -> None:
    async with db.begin() as conn:
        await _dashboard(conn, tenant_id, user_id, dashboard_id)
        done = await conn.execute(widgets.delete().where(*_of(tenant_id, dashboard_id, widget_id)))
        if done.rowcount != 1:
            raise NotFound(WIDGET_NOT_FOUND)
        await _touch(conn, dashboard_id, now)


# ---- bootstrap -----------------------------------------------------------------------------------------
async def _existing(conn: AsyncConnection, tenant_id: str, user_id: str) -> int | None:
    """The caller's first personal dashboard, else the tenant's first shared one."""
    return (await conn.execute(sa.select(dashboards.c.id).where(_visible(tenant_id, user_id)).order_by(
        dashboards.c.user_id.is_(None), dashboards.c.id).limit(1))).scalar()


async def bootstrap(db: Database, tenant_id: str, user_id: str, fields: Mapping[str, Any],
                    widget_specs: list[dict[str, Any]], now: datetime) -> tuple[int, bool]:
    """(id, created): a dashboard the caller already sees, or a new default one with `widget_specs`.
    Two calls at once create one: the second's insert meets the unique (tenant, bootstrapped_for)."""
    async with db.connect() as conn:
        found = await _existing(conn, tenant_id, user_id)
    if found is not None:
        return found, False
    try:
        async with db.begin() as conn:
            created = await _insert(conn, tenant_id, user_id, fields, now, bootstrapped=True)
            for spec in widget_specs:
                await _add(conn, tenant_id, created["id"], spec, now)
            return created["id"], True
    except sa.exc.IntegrityError:  # bootstrapped by a concurrent call just now
        async with db.connect() as conn:
            found = await _existing(conn, tenant_id, user_id)
        if found is None:
            raise
        return found, False
