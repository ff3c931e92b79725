"""OTA campaigns and each target device's progress in them (docs/ota.md)."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import created_at, device_id, serial_id, tenant_id

ota_campaigns = sa.Table(
    "ota_campaigns",
    metadata,
    serial_id(),
    tenant_id(owned=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("firmware_version_id", sa.Integer, sa.ForeignKey("firmware_versions.id", ondelete="CASCADE"),
              nullable=False),
    # the group the targets came from (resolved at creation); null = explicit device ids
    sa.Column("target_group_id", sa.String(36), nullable=True),
    sa.Column("rollout_strategy", sa.String(16), nullable=False),  # linear | canary
    sa.Column("rollout_rate", sa.Integer, nullable=False),  # devices per wave
    sa.Column("abort_threshold", sa.Float, nullable=False),
    # CREATED | RUNNING | PAUSED | COMPLETED | ABORTED
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total_devices", sa.Integer, nullable=False),
    sa.Column("succeeded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("waves", sa.Integer, nullable=False, server_default="0"),  # waves dispatched so far
    sa.Column("last_wave_at", TS, nullable=True),
    sa.Column("abort_reason", sa.Text, nullable=True),  # why an ABORTED campaign stopped (a user, or the rule)
    sa.Column("started_at", TS, nullable=True),
    sa.Column("completed_at", TS, nullable=True),
    created_at(),
    sa.Column("created_by", sa.String(320), nullable=True),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_ota_campaigns_tenant_status", "tenant_id", "status"),
    sa.Index("ix_ota_campaigns_status", "status"),  # the wave tick reads the RUNNING ones of every tenant
)

ota_device_status = sa.Table(
    "ota_device_status",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("ota_campaigns.id", ondelete="CASCADE"), primary_key=True),
    device_id(key=True),
    tenant_id(),  # the campaign's tenant, repeated: a reconnecting device finds its rows by (tenant, device)
    # PENDING | DOWNLOADING | INSTALLING | SUCCESS | FAILED | SKIPPED
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress_pct", sa.Integer, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("wave", sa.Integer, nullable=True),  # the wave that dispatched it (1 = the canary wave)
    sa.Column("started_at", TS, nullable=True),  # dispatched (the instruction sent)
    sa.Column("completed_at", TS, nullable=True),
    created_at(),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_ota_device_status_campaign_status", "campaign_id", "status"),
    sa.Index("ix_ota_device_status_device", "tenant_id", "device_id"),
)
