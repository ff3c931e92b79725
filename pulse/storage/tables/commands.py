"""Commands sent from the cloud to a device, and how each one ended."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, device_fk, device_ref, uuid_key

device_commands = sa.Table(
    "device_commands",
    metadata,
    uuid_key("command_id"),
    *device_ref(),
    sa.Column("command_type", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    # pending -> delivered -> succeeded | failed | rejected ; expired when expires_at passes first
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_by", sa.String(320), nullable=True),
    created_at(),
    sa.Column("published_at", TS, nullable=True),
    sa.Column("acked_at", TS, nullable=True),
    sa.Column("ack_details", sa.JSON, nullable=True),
    sa.Column("expires_at", TS, nullable=False),
    device_fk(),
    sa.Index("ix_device_commands_device", "tenant_id", "device_id", "created_at"),
    sa.Index("ix_device_commands_open", "status", "expires_at"),
)
