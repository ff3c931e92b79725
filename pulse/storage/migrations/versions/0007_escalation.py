"""escalation policies, digest settings; escalation timers on alerts, policy link on alert rules

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-28 09:00:00.000000

Hand-written from pulse/storage/tables.py (the `# ---- escalation policies, digest settings` block and
the escalation columns of `alerts` and `alert_rules`) and checked against it with Alembic's
compare_metadata on SQLite and PostgreSQL. Columns are only added (batch mode on SQLite adds them
with ALTER TABLE, no table copy); boolean defaults use sa.false() so it runs on both.
"""
from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalation_policies",
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("repeat", sa.Integer(), server_default="0", nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_escalation_policies_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("policy_id", name=op.f("pk_escalation_policies")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_escalation_policies_tenant_name"),
    )
    op.create_index("uq_escalation_policies_default", "escalation_policies", ["tenant_id"], unique=True,
                    sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"))

    op.create_table(
        "alert_digest_settings",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("frequency", sa.String(length=16), server_default="disabled", nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("channel_id", sa.String(length=36), nullable=True),
        sa.Column("send_at_hour", sa.Integer(), server_default="8", nullable=False),
        sa.Column("send_on_day", sa.String(length=3), server_default="mon", nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("last_sent_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"],
                                name=op.f("fk_alert_digest_settings_tenant_id_tenants"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_alert_digest_settings")),
    )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_policy_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("next_escalation_at", TS, nullable=True))
        batch_op.add_column(sa.Column("last_escalated_at", TS, nullable=True))
    op.create_index("ix_alerts_next_escalation", "alerts", ["next_escalation_at"], unique=False,
                    sqlite_where=sa.text("next_escalation_at IS NOT NULL"),
                    postgresql_where=sa.text("next_escalation_at IS NOT NULL"))

    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_policy_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_column("escalation_policy_id")
    op.drop_index("ix_alerts_next_escalation", table_name="alerts")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("last_escalated_at")
        batch_op.drop_column("next_escalation_at")
        batch_op.drop_column("escalation_level")
        batch_op.drop_column("escalation_policy_id")
    op.drop_table("alert_digest_settings")
    op.drop_index("uq_escalation_policies_default", table_name="escalation_policies")
    op.drop_table("escalation_policies")
