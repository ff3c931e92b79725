"""The tier gate of a route (documented system §11; the tiers: pulse.domain.entitlements).

A route that needs a feature depends on `feature(name, auth)`, which answers 403 with a detail
naming the feature and the tiers that include it.
"""
from __future__ import annotations

from typing import Any, Callable

from fastapi import Depends, Request

from pulse.domain.entitlements import tiers_with
from pulse.domain.permissions import Principal
from pulse.errors import Forbidden
from pulse.services.entitlements import has_feature


def feature(feature_name: str, auth: Callable[..., Any]) -> Callable[..., Any]:
    """`auth` (e.g. `customer("carrier.actions.execute")`) plus: the tenant's tier includes the feature."""

    async def dep(request: Request, p: Principal = Depends(auth)) -> Principal:
        if not await has_feature(request.app.state.services.db, p.tenant_id, feature_name):
            raise Forbidden(f"feature {feature_name} is not included in this account's tier; "
                            f"available on: {', '.join(tiers_with(feature_name))}")
        return p

    return dep
