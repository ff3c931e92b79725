"""Account tiers and the features they unlock (documented system §11).

A tenant's `account_tier` (free | growth | scale | enterprise; new tenants get growth) decides
which features its users may touch."""
from __future__ import annotations

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


def tier_includes(tier: str, feature_name: str) -> bool:
    """An unknown tier includes nothing."""
    return feature_name in TIER_FEATURES.get(tier, frozenset())
