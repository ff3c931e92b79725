"""iot jobs

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 03:00:00.000000

`jobs` and `job_executions` (pulse/storage/tables/jobs.py): IoT jobs and one execution per target
device (docs/jobs.md); an index on `device_tokens.token_hash`, by which the device HTTP API finds the
device a token belongs to.
"""
from alembic import op
import sqlalchemy as sa


revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("document_type", sa.String(length=100), nullable=False),
        sa.Column("document_params", sa.JSON(), nullable=False),
        sa.Column("target_device_id", sa.String(length=128), nullable=True),
        sa.Column("target_group_id", sa.String(length=128), nullable=True),
        sa.Column("target_all", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_jobs_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant_id", "created_at"])
    op.create_index("ix_jobs_expiry", "jobs", ["status", "expires_at"])
    op.create_table(
        "job_executions",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_details", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("queued_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("last_updated_at", TS, nullable=False),
        sa.Column("execution_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "job_id"], ["jobs.tenant_id", "jobs.job_id"],
                                name=op.f("fk_job_executions_tenant_id_jobs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                                name=op.f("fk_job_executions_tenant_id_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "device_id", "job_id", name=op.f("pk_job_executions")),
    )
    op.create_index("ix_job_executions_job", "job_executions", ["tenant_id", "job_id", "status"])
    op.create_index("ix_job_executions_device", "job_executions", ["tenant_id", "device_id", "status"])
    op.create_index("ix_device_tokens_hash", "device_tokens", ["token_hash"])


def downgrade() -> None:
    op.drop_index("ix_device_tokens_hash", table_name="device_tokens")
    op.drop_index("ix_job_executions_device", table_name="job_executions")
    op.drop_index("ix_job_executions_job", table_name="job_executions")
    op.drop_table("job_executions")
    op.drop_index("ix_jobs_expiry", table_name="jobs")
    op.drop_index("ix_jobs_tenant_created", table_name="jobs")
    op.drop_table("jobs")
