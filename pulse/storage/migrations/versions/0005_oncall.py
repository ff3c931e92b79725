"""on-call schedules, layers, overrides

Revision ID: 0005
Revises: 0001

Hand-written from pulse/storage/tables.py (the `# ---- on-call schedules` block) and checked against
it with Alembic's compare_metadata on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oncall_schedules",
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_oncall_schedules_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("schedule_id", name=op.f("pk_oncall_schedules")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_oncall_schedules_tenant_id")),
    )
    op.create_table(
        "oncall_layers",
        sa.Column("layer_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("layer_order", sa.Integer(), nullable=False),
        sa.Column("rotation_type", sa.String(length=16), nullable=False),
        sa.Column("shift_hours", sa.Integer(), nullable=True),
        sa.Column("handoff_time", sa.String(length=5), nullable=False),
        sa.Column("handoff_day", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("restrictions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["oncall_schedules.schedule_id"],
                                name=op.f("fk_oncall_layers_schedule_id_oncall_schedules"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("layer_id", name=op.f("pk_oncall_layers")),
        sa.UniqueConstraint("schedule_id", "layer_order", name=op.f("uq_oncall_layers_schedule_id")),
    )
    op.create_table(
        "oncall_overrides",
        sa.Column("override_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("layer_id", sa.String(length=36), nullable=True),
        sa.Column("responder", sa.String(length=320), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["schedule_id"], ["oncall_schedules.schedule_id"],
                                name=op.f("fk_oncall_overrides_schedule_id_oncall_schedules"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["layer_id"], ["oncall_layers.layer_id"],
                                name=op.f("fk_oncall_overrides_layer_id_oncall_layers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("override_id", name=op.f("pk_oncall_overrides")),
    )
    op.create_index("ix_oncall_overrides_schedule", "oncall_overrides", ["schedule_id", "end_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_oncall_overrides_schedule", table_name="oncall_overrides")
    op.drop_table("oncall_overrides")
    op.drop_table("oncall_layers")
    op.drop_table("oncall_schedules")
