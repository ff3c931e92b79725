"""notifications: channels (secrets encrypted), routing rules, delivery jobs, send log

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000

Hand-written from pulse/storage/tables.py and checked against it with Alembic's compare_metadata;
boolean defaults use sa.true()/sa.false() so the same revision runs on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notification_channels",
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_notification_channels_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_notification_channels")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_notification_channels_tenant_name"),
    )

    op.create_table(
        "notification_routing_rules",
        sa.Column("rule_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("stop", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("min_severity", sa.Integer(), nullable=True),
        sa.Column("alert_types", sa.JSON(), nullable=True),
        sa.Column("rule_ids", sa.JSON(), nullable=True),
        sa.Column("device_ids", sa.JSON(), nullable=True),
        sa.Column("group_ids", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("site_ids", sa.JSON(), nullable=True),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("active_hours", sa.JSON(), nullable=True),
        sa.Column("throttle_minutes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_notification_routing_rules_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_notification_routing_rules")),
    )
    op.create_index("ix_notification_routing_rules_tenant", "notification_routing_rules", ["tenant_id", "priority"])

    op.create_table(
        "notification_jobs",
        sa.Column("job_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("occurrence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fingerprint", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_notification_jobs")),
        sa.UniqueConstraint("tenant_id", "alert_id", "channel_id", "event", "occurrence",
                            name="uq_notification_jobs_delivery"),
    )
    op.create_index("ix_notification_jobs_due", "notification_jobs", ["status", "next_attempt_at"])
    op.create_index("ix_notification_jobs_tenant", "notification_jobs", ["tenant_id", "created_at"])
    op.create_index("ix_notification_jobs_throttle", "notification_jobs",
                    ["tenant_id", "channel_id", "fingerprint", "created_at"])

    op.create_table(
        "notification_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("channel_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_log")),
    )
    op.create_index("ix_notification_log_job", "notification_log", ["job_id"])
    op.create_index("ix_notification_log_tenant", "notification_log", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_notification_log_tenant", table_name="notification_log")
    op.drop_index("ix_notification_log_job", table_name="notification_log")
    op.drop_table("notification_log")
    op.drop_index("ix_notification_jobs_throttle", table_name="notification_jobs")
    op.drop_index("ix_notification_jobs_tenant", table_name="notification_jobs")
    op.drop_index("ix_notification_jobs_due", table_name="notification_jobs")
    op.drop_table("notification_jobs")
    op.drop_index("ix_notification_routing_rules_tenant", table_name="notification_routing_rules")
    op.drop_table("notification_routing_rules")
    op.drop_table("notification_channels")
