"""Dashboards (docs/dashboards.md): a user's own dashboards and the tenant's shared ones, their widgets
and layout, and the default dashboard a new user is given. Every widget config is checked against its
type here (pulse/domain/dashboards.py) before it is stored, so what the console reads back is valid."""
from __future__ import annotations

from typing import Any, Mapping

from pulse.domain import dashboards as rules
from pulse.errors import BadRequest
from pulse.services.context import ServiceContext
from pulse.storage import dashboards as store
from pulse.storage.db import utcnow

NO_FIELDS = "No fields to update"


async def list_dashboards(ctx: ServiceContext, tenant_id: str, user_id: str, limit: int,
                          offset: int) -> dict[str, Any]:
    items, total = await store.list_visible(ctx.db, tenant_id, user_id, limit, offset)
    return {"dashboards": items, "total": total, "limit": limit, "offset": offset}


async def create(ctx: ServiceContext, tenant_id: str, user_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return await store.create(ctx.db, tenant_id, user_id, fields, utcnow())


async def get(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int) -> dict[str, Any]:
    return await store.get(ctx.db, tenant_id, user_id, dashboard_id)


async def update(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int,
                 values: Mapping[str, Any]) -> dict[str, Any]:
    if not values:
        raise BadRequest(NO_FIELDS)
    return await store.update(ctx.db, tenant_id, user_id, dashboard_id, values, utcnow())


async def delete(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int) -> None:
    await store.delete(ctx.db, tenant_id, user_id, dashboard_id)


async def share(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int,
                shared: bool) -> dict[str, Any]:
    return await store.share(ctx.db, tenant_id, user_id, dashboard_id, shared, utcnow())


async def set_layout(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int,
                     layout: list[rules.LayoutItem]) -> dict[str, Any]:
    await store.set_layout(ctx.db, tenant_id, user_id, dashboard_id, layout, utcnow())
    return {"ok": True}


async def add_widget(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int, widget_type: str,
                     title: str, config: dict[str, Any], position: dict[str, int]) -> dict[str, Any]:
    widget = {"widget_type": widget_type, "title": title, "config": rules.widget_config(widget_type, config),
              "position": position}
    return await store.add_widget(ctx.db, tenant_id, user_id, dashboard_id, widget, utcnow())


async def update_widget(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int, widget_id: int,
                        values: Mapping[str, Any]) -> dict[str, Any]:
    """Title, config (checked against the widget's type, which never changes) and position."""
    if not values:
        raise BadRequest(NO_FIELDS)

    def changes(widget: dict[str, Any]) -> dict[str, Any]:
        if "config" not in values:
            return dict(values)
        return {**values, "config": rules.widget_config(widget["widget_type"], values["config"])}

    return await store.update_widget(ctx.db, tenant_id, user_id, dashboard_id, widget_id, changes, utcnow())


async def delete_widget(ctx: ServiceContext, tenant_id: str, user_id: str, dashboard_id: int, widget_id: int) -> None:
    await store.delete_widget(ctx.db, tenant_id, user_id, dashboard_id, widget_id, utcnow())


async def bootstrap(ctx: ServiceContext, tenant_id: str, user_id: str) -> dict[str, Any]:
    """A dashboard the caller already sees ({created: false}), else the default "Fleet Overview"."""
    fields = {"name": rules.BOOTSTRAP_NAME, "description": rules.BOOTSTRAP_DESCRIPTION, "is_default": True}
    dashboard_id, created = await store.bootstrap(ctx.db, tenant_id, user_id, fields, rules.bootstrap_widgets(),
                                                  utcnow())
    return {"id": dashboard_id, "created": created}
