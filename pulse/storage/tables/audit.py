"""The operator audit log: every request an operator made across tenants."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import acting_user, serial_id

operator_audit_log = sa.Table(
    "operator_audit_log",
    metadata,
    serial_id(),
    sa.Column("at", TS, nullable=False),
    *acting_user(),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(512), nullable=False),
    sa.Column("tenant_filter", sa.String(64), nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
)
