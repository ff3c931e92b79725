"""index device_tokens.revoked_at

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:45:00.000000

`pulse.storage.tokens.RevocationFeed` reads the tokens revoked since its last look, about once a
second per Serve replica; the index keeps that a range read instead of a scan of every token.
"""
from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_device_tokens_revoked_at", "device_tokens", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_device_tokens_revoked_at", table_name="device_tokens")
