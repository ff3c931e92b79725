"""fleet: device tags, device groups (static and dynamic), maintenance windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000

Hand-written from pulse/storage/tables.py and checked against it with Alembic's compare_metadata;
boolean defaults use sa.true() so the same revision runs on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('device_tags',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('device_id', sa.String(length=128), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'device_id'], ['devices.tenant_id', 'devices.device_id'], name=op.f('fk_device_tags_tenant_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'device_id', 'tag', name=op.f('pk_device_tags'))
    )
    op.create_index('ix_device_tags_tenant_tag', 'device_tags', ['tenant_id', 'tag'], unique=False)

    op.create_table('device_groups',
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('query', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_device_groups_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', name=op.f('pk_device_groups')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_device_groups_tenant_id'))
    )

    op.create_table('device_group_members',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('group_id', sa.String(length=36), nullable=False),
    sa.Column('device_id', sa.String(length=128), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['device_groups.group_id'], name=op.f('fk_device_group_members_group_id_device_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'device_id'], ['devices.tenant_id', 'devices.device_id'], name=op.f('fk_device_group_members_tenant_id_devices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'group_id', 'device_id', name=op.f('pk_device_group_members'))
    )
    op.create_index('ix_device_group_members_device', 'device_group_members', ['tenant_id', 'device_id'], unique=False)

    op.create_table('maintenance_windows',
    sa.Column('window_id', sa.String(length=36), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('recurrence', sa.JSON(), nullable=True),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.tenant_id'], name=op.f('fk_maintenance_windows_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('window_id', name=op.f('pk_maintenance_windows'))
    )
    op.create_index('ix_maintenance_windows_tenant', 'maintenance_windows', ['tenant_id', 'starts_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_maintenance_windows_tenant', table_name='maintenance_windows')
    op.drop_table('maintenance_windows')
    op.drop_index('ix_device_group_members_device', table_name='device_group_members')
    op.drop_table('device_group_members')
    op.drop_table('device_groups')
    op.drop_index('ix_device_tags_tenant_tag', table_name='device_tags')
    op.drop_table('device_tags')
