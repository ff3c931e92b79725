"""ota campaigns

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 03:00:00.000000

`ota_campaigns` and `ota_device_status` (pulse/storage/tables/ota.py): OTA campaigns, their waves and
each target device's progress (docs/ota.md). New tables only.
"""
from alembic import op
import sqlalchemy as sa


revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ota_campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("firmware_version_id", sa.Integer(), nullable=False),
        sa.Column("target_group_id", sa.String(length=36), nullable=True),
        sa.Column("rollout_strategy", sa.String(length=16), nullable=False),
        sa.Column("rollout_rate", sa.Integer(), nullable=False),
        sa.Column("abort_threshold", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_devices", sa.Integer(), nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("waves", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_wave_at", TS, nullable=True),
        sa.Column("abort_reason", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["firmware_version_id"], ["firmware_versions.id"],
                                name=op.f("fk_ota_campaigns_firmware_version_id_firmware_versions"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_ota_campaigns_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ota_campaigns")),
    )
    op.create_index("ix_ota_campaigns_tenant_status", "ota_campaigns", ["tenant_id", "status"])
    op.create_index("ix_ota_campaigns_status", "ota_campaigns", ["status"])
    op.create_table(
        "ota_device_status",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress_pct", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["ota_campaigns.id"],
                                name=op.f("fk_ota_device_status_campaign_id_ota_campaigns"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("campaign_id", "device_id", name=op.f("pk_ota_device_status")),
    )
    op.create_index("ix_ota_device_status_campaign_status", "ota_device_status", ["campaign_id", "status"])
    op.create_index("ix_ota_device_status_device", "ota_device_status", ["tenant_id", "device_id"])


def downgrade() -> None:
    op.drop_index("ix_ota_device_status_device", table_name="ota_device_status")
    op.drop_index("ix_ota_device_status_campaign_status", table_name="ota_device_status")
    op.drop_table("ota_device_status")
    op.drop_index("ix_ota_campaigns_status", table_name="ota_campaigns")
    op.drop_index("ix_ota_campaigns_tenant_status", table_name="ota_campaigns")
    op.drop_table("ota_campaigns")
