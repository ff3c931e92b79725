"""Operator per-tenant settings: the lake's telemetry retention (HTTP only; docs/lake.md).

`operator.read` reads, `operator.write` changes; the `operator()` dependency audits each access.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends

from pulse.serve.auth import Principal, operator
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.tenants import RetentionOut, RetentionUpdate
from pulse.services import lake_lifecycle
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/operator/tenants", tags=["operator: tenants"])


@router.get("/{tenant_id}/telemetry-retention", response_model=RetentionOut)
async def get_retention(tenant_id: StrId, p: Principal = Depends(operator("operator.read")),
                        svc: ServiceContext = Depends(services)) -> dict:
    return await lake_lifecycle.retention(svc.db, svc.settings, tenant_id)


@router.put("/{tenant_id}/telemetry-retention", response_model=RetentionOut)
async def put_retention(tenant_id: StrId, body: RetentionUpdate, p: Principal = Depends(operator("operator.write")),
                        svc: ServiceContext = Depends(services)) -> dict:
    """Tenant-days older than this are deleted whole by the next retention pass (hourly)."""
    return await lake_lifecycle.set_retention(svc.db, svc.settings, tenant_id, body.retention_days)
