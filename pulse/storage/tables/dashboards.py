"""Dashboards and their widgets (docs/dashboards.md).

A dashboard with a `user_id` is that user's own; `user_id` NULL is shared with the whole tenant (the
documented system's model). `bootstrapped_for` marks the dashboard `POST /dashboards/bootstrap` made for
a user: unique per tenant, so two bootstrap calls at once cannot both create one.
Widgets carry tenant_id too, so every query filters by tenant.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import flag, serial_id, tenant_id, timestamps

dashboards = sa.Table(
    "dashboards",
    metadata,
    serial_id(),
    tenant_id(owned=True),
    sa.Column("user_id", sa.String(320), nullable=True),  # the owner's token `sub`; NULL = shared
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    flag("is_default", False),
    sa.Column("layout", sa.JSON, nullable=False),  # the last layout PUT, as sent ([] until then)
    sa.Column("bootstrapped_for", sa.String(320), nullable=True),
    *timestamps(),
    sa.Index("ix_dashboards_tenant_user", "tenant_id", "user_id"),
    sa.UniqueConstraint("tenant_id", "bootstrapped_for"),
)

dashboard_widgets = sa.Table(
    "dashboard_widgets",
    metadata,
    serial_id(),
    tenant_id(),
    sa.Column("dashboard_id", sa.Integer, sa.ForeignKey("dashboards.id", ondelete="CASCADE"), nullable=False),
    sa.Column("widget_type", sa.String(50), nullable=False),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),  # normalized for its type (pulse/domain/dashboards.py)
    sa.Column("position", sa.JSON, nullable=False),  # {x, y, w, h} on the 12-column grid
    *timestamps(),
    sa.Index("ix_dashboard_widgets_dashboard", "dashboard_id"),
)
