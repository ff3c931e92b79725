"""tenant audit trail: audit_log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 17:00:00.000000

One row per successful change a tenant user made through the customer API (docs/audit-log.md),
kept 90 days. Hand-written from pulse/storage/tables/audit.py and checked against it by
tests/storage/test_migrations.py.
"""
from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("entity_type", sa.String(length=128), nullable=False),
        sa.Column("entity_id", sa.String(length=128), nullable=True),
        sa.Column("entity_name", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("message", sa.String(length=600), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("source_service", sa.String(length=32), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=320), nullable=False),
        sa.Column("actor_name", sa.String(length=320), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_tenant_at", "audit_log", ["tenant_id", "at"], unique=False)
    op.create_index("ix_audit_log_entity", "audit_log", ["tenant_id", "entity_type", "entity_id"], unique=False)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index("ix_audit_log_tenant_at", table_name="audit_log")
    op.drop_table("audit_log")
