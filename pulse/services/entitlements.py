"""Whether a tenant's account tier includes a feature (the tiers: pulse.domain.entitlements)."""
from __future__ import annotations

from pulse.domain.entitlements import tier_includes
from pulse.storage import tenants
from pulse.storage.db import Database


async def has_feature(db: Database, tenant_id: str, feature_name: str) -> bool:
    """False for an unknown tenant, as for a tier without the feature."""
    tenant = await tenants.get_tenant(db, tenant_id)
    return tenant is not None and tier_includes(tenant["account_tier"], feature_name)
