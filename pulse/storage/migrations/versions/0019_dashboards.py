"""dashboards

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 16:30:00.000000

`dashboards` and `dashboard_widgets` (pulse/storage/tables/dashboards.py): personal and shared
dashboards and their widgets (docs/dashboards.md).
"""
from alembic import op
import sqlalchemy as sa


revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("bootstrapped_for", sa.String(length=320), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_dashboards_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboards")),
        sa.UniqueConstraint("tenant_id", "bootstrapped_for", name=op.f("uq_dashboards_tenant_id")),
    )
    op.create_index("ix_dashboards_tenant_user", "dashboards", ["tenant_id", "user_id"])
    op.create_table(
        "dashboard_widgets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("widget_type", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("position", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["dashboard_id"], ["dashboards.id"],
                                name=op.f("fk_dashboard_widgets_dashboard_id_dashboards"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_widgets")),
    )
    op.create_index("ix_dashboard_widgets_dashboard", "dashboard_widgets", ["dashboard_id"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_widgets_dashboard", table_name="dashboard_widgets")
    op.drop_table("dashboard_widgets")
    op.drop_index("ix_dashboards_tenant_user", table_name="dashboards")
    op.drop_table("dashboards")
