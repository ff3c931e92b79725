"""Maintenance windows: one-off or weekly periods in which alerting keeps quiet about the devices in scope."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import flag, named_resource, optional_json, timestamps

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    *named_resource("window_id"),
    flag("enabled", True),
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=True),  # NULL = indefinite
    # NULL = one period [starts_at, ends_at); else weekly occurrences inside it (pulse.domain.maintenance)
    optional_json("recurrence"),
    # {"device_ids", "group_ids", "site_ids", "tags"}: any match selects a device; all empty = tenant
    sa.Column("scope", sa.JSON, nullable=False),
    *timestamps(),
    sa.Index("ix_maintenance_windows_tenant", "tenant_id", "starts_at"),
)
