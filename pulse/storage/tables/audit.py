"""The audit logs: every request an operator made across tenants, and every change a tenant user made."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import acting_user, serial_id, tenant_id

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

# The tenant audit trail: one row per successful change a customer made through the API
# (docs/audit-log.md); written by the HTTP layer for every mutating route, kept 90 days.
audit_log = sa.Table(
    "audit_log",
    metadata,
    serial_id(),
    tenant_id(),  # not a foreign key: the trail outlives what it describes, and a tenant's rows go by retention
    sa.Column("at", TS, nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("entity_type", sa.String(128), nullable=False),
    sa.Column("entity_id", sa.String(128), nullable=True),
    sa.Column("entity_name", sa.String(200), nullable=True),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("message", sa.String(600), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("source_service", sa.String(32), nullable=False),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(320), nullable=False),
    sa.Column("actor_name", sa.String(320), nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Index("ix_audit_log_tenant_at", "tenant_id", "at"),
    sa.Index("ix_audit_log_entity", "tenant_id", "entity_type", "entity_id"),
    sa.Index("ix_audit_log_at", "at"),  # retention deletes by age over all tenants
)
