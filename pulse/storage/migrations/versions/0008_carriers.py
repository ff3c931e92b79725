"""carrier integrations: integrations, device links, usage snapshots, requests, callbacks, audit

Revision ID: 0008
Revises: 0001
Create Date: 2026-12-05 09:00:00.000000

Hand-written from pulse/storage/tables.py (the `# ---- carrier integrations` block) and checked
against it with Alembic's compare_metadata on SQLite and PostgreSQL. New tables only.
"""
from alembic import op
import sqlalchemy as sa


revision = "0008"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "carrier_integrations",
        sa.Column("integration_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("carrier_name", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("sync_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("sync_interval_minutes", sa.Integer(), server_default="60", nullable=False),
        sa.Column("api_base_url", sa.String(length=2000), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("callback_url", sa.String(length=2000), nullable=True),
        sa.Column("callback_error", sa.Text(), nullable=True),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("last_sync_status", sa.String(length=16), nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_carrier_integrations_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_carrier_integrations")),
        sa.UniqueConstraint("tenant_id", "carrier_name", name="uq_carrier_integrations_tenant_carrier"),
    )

    op.create_table(
        "carrier_links",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("carrier_device_id", sa.String(length=64), nullable=False),
        sa.Column("iccid", sa.String(length=32), nullable=True),
        sa.Column("sim_status", sa.String(length=16), nullable=True),
        sa.Column("network_status", sa.String(length=32), nullable=True),
        sa.Column("network_type", sa.String(length=32), nullable=True),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column("signal_strength", sa.Integer(), nullable=True),
        sa.Column("msisdn", sa.String(length=32), nullable=True),
        sa.Column("plan", sa.String(length=200), nullable=True),
        sa.Column("last_connection", TS, nullable=True),
        sa.Column("data_used_bytes", sa.BigInteger(), nullable=True),
        sa.Column("data_limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sms_count", sa.Integer(), nullable=True),
        sa.Column("billing_cycle_start", TS, nullable=True),
        sa.Column("billing_cycle_end", TS, nullable=True),
        sa.Column("usage_alert_active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_synced_at", TS, nullable=True),
        sa.Column("last_sync_error", sa.Text(), nullable=True),
        sa.Column("linked_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["integration_id"], ["carrier_integrations.integration_id"],
                                name=op.f("fk_carrier_links_integration_id_carrier_integrations"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                                name=op.f("fk_carrier_links_tenant_id_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "device_id", name=op.f("pk_carrier_links")),
        sa.UniqueConstraint("integration_id", "carrier_device_id", name="uq_carrier_links_line"),
    )

    op.create_table(
        "carrier_usage_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("data_used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data_limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sms_count", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["carrier_links.tenant_id", "carrier_links.device_id"],
                                name=op.f("fk_carrier_usage_snapshots_tenant_id_carrier_links"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_usage_snapshots")),
    )
    op.create_index("ix_carrier_usage_snapshots_device", "carrier_usage_snapshots",
                    ["tenant_id", "device_id", "taken_at"], unique=False)

    op.create_table(
        "carrier_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("carrier_device_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["integration_id"], ["carrier_integrations.integration_id"],
                                name=op.f("fk_carrier_requests_integration_id_carrier_integrations"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_requests")),
        sa.UniqueConstraint("integration_id", "request_id", name="uq_carrier_requests_request"),
    )
    op.create_index("ix_carrier_requests_state", "carrier_requests", ["state", "created_at"], unique=False)
    op.create_index("ix_carrier_requests_device", "carrier_requests", ["tenant_id", "device_id", "created_at"],
                    unique=False)

    op.create_table(
        "carrier_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("remote_ip", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_callbacks")),
    )
    op.create_index("ix_carrier_callbacks_integration", "carrier_callbacks", ["integration_id", "received_at"],
                    unique=False)

    op.create_table(
        "carrier_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("integration_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("user_id", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carrier_audit_log")),
    )
    op.create_index("ix_carrier_audit_log_tenant", "carrier_audit_log", ["tenant_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_carrier_audit_log_tenant", table_name="carrier_audit_log")
    op.drop_table("carrier_audit_log")
    op.drop_index("ix_carrier_callbacks_integration", table_name="carrier_callbacks")
    op.drop_table("carrier_callbacks")
    op.drop_index("ix_carrier_requests_device", table_name="carrier_requests")
    op.drop_index("ix_carrier_requests_state", table_name="carrier_requests")
    op.drop_table("carrier_requests")
    op.drop_index("ix_carrier_usage_snapshots_device", table_name="carrier_usage_snapshots")
    op.drop_table("carrier_usage_snapshots")
    op.drop_table("carrier_links")
    op.drop_table("carrier_integrations")
