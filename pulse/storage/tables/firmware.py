"""Firmware versions a tenant registered for OTA updates (docs/ota.md), and the images Pulse hosts."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import created_at, description, serial_id, tenant_id

firmware_versions = sa.Table(
    "firmware_versions",
    metadata,
    serial_id(),
    tenant_id(owned=True),
    sa.Column("version", sa.String(50), nullable=False),
    # '' = for any device type (the API says null): NOT NULL so the unique key below treats two
    # "any" versions as equal on every database (NULLs never collide in a unique constraint)
    sa.Column("device_type", sa.String(50), nullable=False),
    description(),
    sa.Column("file_url", sa.Text, nullable=True),  # null until an image is uploaded or a URL given
    sa.Column("file_size_bytes", sa.BigInteger, nullable=True),
    sa.Column("checksum_sha256", sa.String(64), nullable=True),
    sa.Column("blob_key", sa.String(300), nullable=True),  # the hosted image; null = not hosted by Pulse
    created_at(),
    sa.Column("created_by", sa.String(320), nullable=True),
    sa.UniqueConstraint("tenant_id", "device_type", "version"),
)
