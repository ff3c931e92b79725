"""report runs (SLA reports and quick exports)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 16:45:00.000000

Hand-written from pulse/storage/tables/reports.py and checked by the no-drift test
(tests/storage/test_migrations.py). A new table only.
"""
from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("report_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("triggered_by", sa.String(length=330), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("schedule_key", sa.String(length=16), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_report_runs_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_report_runs")),
        sa.UniqueConstraint("tenant_id", "report_type", "schedule_key", name=op.f("uq_report_runs_tenant_id")),
    )
    op.create_index("ix_report_runs_tenant_run", "report_runs", ["tenant_id", "run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_runs_tenant_run", table_name="report_runs")
    op.drop_table("report_runs")
