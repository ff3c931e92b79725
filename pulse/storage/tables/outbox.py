"""The generic transactional outbox.

Rows are written in the transaction of the change they describe and delivered in `id` order per
(topic, tenant_id, aggregate_id). SQLite AUTOINCREMENT so ids never repeat.
"""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import serial_id, tenant_id, timestamps

outbox = sa.Table(
    "outbox",
    metadata,
    serial_id(),
    sa.Column("topic", sa.String(32), nullable=False),  # "telemetron"
    tenant_id(owned=True),
    sa.Column("aggregate_id", sa.String(128), nullable=False),  # the ordering key: a device id for Telemetron
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="PENDING"),  # PENDING | DELIVERED | FAILED
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", TS, nullable=True),  # set while a retryable failure backs off
    sa.Column("last_error", sa.Text, nullable=True),
    *timestamps(),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Index("ix_outbox_queue", "topic", "tenant_id", "status", "id"),
    sa.Index("ix_outbox_delivered", "status", "delivered_at"),
    sqlite_autoincrement=True,
)
