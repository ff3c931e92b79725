"""Account tiers and the features they unlock (documented system §11).

A tenant's `account_tier` (free | growth | scale | enterprise; new tenants get growth) decides
which features its users may touch. A route that needs one depends on `feature(name)`, which
answers 403 with a detail naming the feature and the tiers that include it.
"""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, Request

from pulse.serve.auth import Principal
from pulse.errors import Forbidden
from pulse.storage import tenants

_GROWTH = frozenset({"audit_log_export", "bulk_device_import", "carrier_self_service", "alert_escalation",
                     "oncall_scheduling", "maintenance_windows"})
TIER_FEATURES: dict[str, frozenset[str]] = {
    "free": frozenset(),
    "growth": _GROWTH,
    "scale": _GROWTH | {"sso"},
    "enterprise": _GROWTH | {"sso", "custom_branding"},
}
TIERS = tuple(TIER_FEATURES)


def tiers_with(feature_name: str) -> list[str]:
    return [t for t, features in TIER_FEATURES.items() if feature_name in features]


async def has_feature(request: Request, tenant_id: str, feature_name: str) -> bool:
    tenant = await tenants.get_tenant(request.app.state.services.db, tenant_id)
    return tenant is not None and feature_name in TIER_FEATURES.get(tenant["account_tier"], frozenset())


def feature(feature_name: str, auth: Callable[..., Any]) -> Callable[..., Any]:
    """`auth` (e.g. `customer("carrier.actions.execute")`) plus: the tenant's tier includes the feature."""

    async def dep(request: Request, p: Principal = Depends(auth)) -> Principal:
        if not await has_feature(request, p.tenant_id, feature_name):
            raise Forbidden(f"feature {feature_name} is not included in this account's tier; "
                            f"available on: {', '.join(tiers_with(feature_name))}")
        return p

    return dep
