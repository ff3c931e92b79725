"""tenants.telemetry_retention_days: a tenant's own lake retention

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 16:45:00.000000

NULL keeps the platform default (`PULSE_LAKE_RETENTION_DAYS`, 30); the scheduler's retention tick
reads it (`pulse.services.lake_lifecycle`).
"""
import sqlalchemy as sa
from alembic import op


revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("telemetry_retention_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("tenants", "telemetry_retention_days")
