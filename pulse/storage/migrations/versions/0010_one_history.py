"""merge the area branches into one history

Revision ID: 0010
Revises: 0002, 0003, 0004, 0005, 0006, 0007, 0008, 0009
Create Date: 2026-12-05 09:30:00.000000

Revisions 0002-0009 each branched off 0001 (one per area), so the tree had eight heads and Pulse
upgraded to `heads`. This revision joins them and changes no schema: a database at any mix of the
old heads (its alembic_version holds one row per branch) upgrades to this single row. From here on
every revision's down_revision is the one before it, Pulse upgrades to `head`, and
tests/storage/test_migrations.py fails on a second head or on any drift from
pulse.storage.tables.metadata.
"""

revision = "0010"
down_revision = ("0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
