"""End customers (the people who own devices, kept per tenant by e-mail) and which devices they own."""
from __future__ import annotations

import sqlalchemy as sa

from pulse.storage.tables.base import metadata
from pulse.storage.tables.columns import created_at, device_fk, device_ref, tenant_id, tenant_scoped_fk, timestamps

end_customers = sa.Table(
    "end_customers",
    metadata,
    tenant_id(owned=True, key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),  # trimmed, lower-case
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("phone", sa.String(40), nullable=True),
    sa.Column("address", sa.String(500), nullable=True),
    *timestamps(),
    sa.UniqueConstraint("tenant_id", "email", name="uq_end_customers_tenant_email"),
)

device_owners = sa.Table(
    "device_owners",
    metadata,
    *device_ref(key=True),
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),  # order given by the last PUT
    created_at(),
    device_fk(name="fk_device_owners_device"),
    tenant_scoped_fk("customer_id", "end_customers", name="fk_device_owners_customer"),
    sa.Index("ix_device_owners_customer", "tenant_id", "customer_id"),
)
