"""device owners (end customers), transactional outbox, Telemetron integration and customer map

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-10 09:00:00.000000

Hand-written from pulse/storage/tables.py (the `# ---- Telemetron: device owners, transactional
outbox, integration` block) and checked against it with Alembic's compare_metadata on SQLite and
PostgreSQL. New tables only; `outbox` uses SQLite AUTOINCREMENT so ids are never reused.
"""
from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                   name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "end_customers",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk("end_customers"),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_end_customers")),
        sa.UniqueConstraint("tenant_id", "email", name="uq_end_customers_tenant_email"),
    )
    op.create_table(
        "device_owners",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                                name="fk_device_owners_device", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "customer_id"], ["end_customers.tenant_id", "end_customers.customer_id"],
                                name="fk_device_owners_customer", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "device_id", "customer_id", name=op.f("pk_device_owners")),
    )
    op.create_index("ix_device_owners_customer", "device_owners", ["tenant_id", "customer_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("aggregate_id", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="PENDING", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        _tenant_fk("outbox"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_queue", "outbox", ["topic", "tenant_id", "status", "id"], unique=False)
    op.create_index("ix_outbox_delivered", "outbox", ["status", "delivered_at"], unique=False)

    op.create_table(
        "telemetron_integrations",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _tenant_fk("telemetron_integrations"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_telemetron_integrations")),
    )
    op.create_table(
        "telemetron_customers",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("telemetron_customer_id", sa.String(length=128), nullable=False),
        sa.Column("synced_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "customer_id"], ["end_customers.tenant_id", "end_customers.customer_id"],
                                name="fk_telemetron_customers_customer", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_telemetron_customers")),
    )


def downgrade() -> None:
    op.drop_table("telemetron_customers")
    op.drop_table("telemetron_integrations")
    op.drop_index("ix_outbox_delivered", table_name="outbox")
    op.drop_index("ix_outbox_queue", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_device_owners_customer", table_name="device_owners")
    op.drop_table("device_owners")
    op.drop_table("end_customers")
