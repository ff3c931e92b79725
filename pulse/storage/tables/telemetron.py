"""The Telemetron integration (docs/telemetron.md): one per tenant, and the customer ids it knows ours by."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import TS, metadata
from pulse.storage.tables.columns import flag, tenant_id, tenant_scoped_fk, timestamps

# `secrets` is a Fernet token holding {"api_key"}.
telemetron_integrations = sa.Table(
    "telemetron_integrations",
    metadata,
    tenant_id(owned=True, key=True),
    sa.Column("base_url", sa.String(2000), nullable=False),
    sa.Column("secrets", sa.Text, nullable=False),
    flag("enabled", True),
    sa.Column("last_sync_at", TS, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("last_error_at", TS, nullable=True),
    *timestamps(),
)

# Our end customer <-> Telemetron's customer id (Telemetron has no external-id field).
telemetron_customers = sa.Table(
    "telemetron_customers",
    metadata,
    tenant_id(key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("telemetron_customer_id", sa.String(128), nullable=False),
    sa.Column("synced_at", TS, nullable=False),
    tenant_scoped_fk("customer_id", "end_customers", name="fk_telemetron_customers_customer"),
)
