"""Devices, their broker credentials, and the device actors' persisted state."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, device_fk, device_id, device_ref, tenant_id, timestamps

devices = sa.Table(
    "devices",
    metadata,
    tenant_id(owned=True, key=True),
    device_id(key=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("site_id", sa.String(128), nullable=True),
    # ACTIVE | INACTIVE | SUSPENDED | REVOKED (decommissioned)
    sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE"),
    sa.Column("template_id", sa.Integer, nullable=True),
    sa.Column("parent_device_id", sa.String(128), nullable=True),
    sa.Column("model", sa.String(200), nullable=True),
    sa.Column("manufacturer", sa.String(200), nullable=True),
    sa.Column("serial_number", sa.String(200), nullable=True),
    sa.Column("fw_version", sa.String(100), nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("metadata", sa.JSON, nullable=False, default=dict),
    *timestamps(),
    sa.Column("decommissioned_at", TS, nullable=True),
    sa.Index("ix_devices_tenant_site", "tenant_id", "site_id"),
)

device_tokens = sa.Table(
    "device_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    *device_ref(),
    # SHA-256 of a 256-bit random secret: high entropy makes a slow hash unnecessary,
    # and broker auth must stay cheap (see docs/security.md).
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("label", sa.String(200), nullable=True),
    created_at(),
    sa.Column("revoked_at", TS, nullable=True),
    device_fk(),
    sa.Index("ix_device_tokens_device", "tenant_id", "device_id"),
    sa.Index("ix_device_tokens_revoked_at", "revoked_at"),  # RevocationFeed: revoked since
    sa.Index("ix_device_tokens_hash", "token_hash"),  # the device HTTP API: a token names its device
)

# Write-behind snapshots of device actors (twin, latest values, rule state, presence).
device_state = sa.Table(
    "device_state",
    metadata,
    *device_ref(key=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
