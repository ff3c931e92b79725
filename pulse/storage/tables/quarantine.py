"""Messages the ingest path refused, and per-minute counts of them by tenant and reason."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import device_id, serial_id, tenant_id

quarantine_events = sa.Table(
    "quarantine_events",
    metadata,
    serial_id(),
    sa.Column("ingested_at", TS, nullable=False),
    tenant_id(optional=True),
    device_id(optional=True),
    sa.Column("topic", sa.String(512), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("payload", sa.Text, nullable=True),  # first 4 KiB, for diagnosis
    sa.Index("ix_quarantine_tenant_time", "tenant_id", "ingested_at"),
)

quarantine_counters = sa.Table(
    "quarantine_counters_minute",
    metadata,
    sa.Column("bucket_minute", TS, primary_key=True),
    tenant_id(key=True),  # "" when the tenant is unknown
    sa.Column("reason", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
