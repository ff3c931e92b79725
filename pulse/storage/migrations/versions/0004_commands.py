"""device commands

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_commands",
        sa.Column("command_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("command_type", sa.String(length=128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_details", sa.JSON(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"],
                                name=op.f("fk_device_commands_tenant_id_devices"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_device_commands")),
    )
    op.create_index("ix_device_commands_device", "device_commands", ["tenant_id", "device_id", "created_at"])
    op.create_index("ix_device_commands_open", "device_commands", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_device_commands_open", table_name="device_commands")
    op.drop_index("ix_device_commands_device", table_name="device_commands")
    op.drop_table("device_commands")
