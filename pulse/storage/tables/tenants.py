"""Tenants and the people who sign in (operators have no tenant)."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import created_at, tenant_id

tenants = sa.Table(
    "tenants",
    metadata,
    tenant_id(key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="ACTIVE"),
    sa.Column("account_tier", sa.String(32), nullable=False, server_default="growth"),
    # Days of telemetry the lake keeps; NULL: the platform default (`lake_retention_days`).
    sa.Column("telemetry_retention_days", sa.Integer, nullable=True),
    created_at(),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    tenant_id(owned=True, optional=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=True),
    created_at(),
    sa.Index("ix_users_tenant", "tenant_id"),
)
