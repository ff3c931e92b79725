"""How a tenant organizes its devices: free tags, and static or dynamic groups."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import (device_fk, device_id, device_ref, named_resource, optional_json, tenant_id,
                                         timestamps)

device_tags = sa.Table(
    "device_tags",
    metadata,
    *device_ref(key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    device_fk(),
    sa.Index("ix_device_tags_tenant_tag", "tenant_id", "tag"),
)

device_groups = sa.Table(
    "device_groups",
    metadata,
    *named_resource("group_id", described=True),
    # NULL = static (explicit members); {"status", "tags", "site_id"} = dynamic (computed members)
    optional_json("query"),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "name"),
)

device_group_members = sa.Table(
    "device_group_members",
    metadata,
    tenant_id(key=True),
    sa.Column("group_id", sa.String(36), sa.ForeignKey("device_groups.group_id", ondelete="CASCADE"),
              primary_key=True),
    device_id(key=True),
    sa.Column("added_at", TS, nullable=False),
    device_fk(),
    sa.Index("ix_device_group_members_device", "tenant_id", "device_id"),
)
