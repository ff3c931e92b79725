"""Operator carrier management: every tenant's integrations (HTTP only; docs/carriers.md).

`operator.read` lists, `operator.write` changes. The `operator()` dependency writes each access to the
operator audit log; writes are also recorded with what they changed in `carrier_audit_log`.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from pulse.serve.auth import Principal, operator
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.carriers import (IntegrationDeleted, IntegrationUpdate, OperatorIntegrationCreate, OperatorIntegrationOut,
                                         OperatorIntegrationPage)
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.services import carriers as carrier
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/operator/carrier-integrations", tags=["operator: carrier"])

READ = operator("operator.read")
WRITE = operator("operator.write")


@router.get("", response_model=OperatorIntegrationPage)
async def list_integrations(tenant_id: StrId | None = None,
                            carrier_name: str | None = Query(None, max_length=32), enabled: bool | None = None,
                            pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                            svc: ServiceContext = Depends(services)) -> dict:
    """All tenants' integrations by tenant, then id; filters combine."""
    items, total = await carrier.list_integrations(svc.settings, svc.db, tenant_id, pg.limit, pg.offset,
                                                   carrier_name=carrier_name, enabled=enabled, with_tenant=True)
    return page("integrations", items, total, pg)


@router.post("", status_code=201, response_model=OperatorIntegrationOut)
async def create_integration(body: OperatorIntegrationCreate, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    """For the tenant named in the body (404 if it does not exist)."""
    fields = body.model_dump(exclude={"tenant_id"})
    return await carrier.create_integration(svc.settings, svc.db, body.tenant_id, fields, p, with_tenant=True)


@router.get("/{integration_id}", response_model=OperatorIntegrationOut)
async def get_integration(integration_id: DbId, p: Principal = Depends(READ),
                          svc: ServiceContext = Depends(services)) -> dict:
    return await carrier.get_integration(svc.settings, svc.db, integration_id, with_tenant=True)


@router.put("/{integration_id}", response_model=OperatorIntegrationOut)
async def update_integration(integration_id: DbId, body: IntegrationUpdate, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    return await carrier.update_integration(svc.settings, svc.db, integration_id, None, body.changes(), p,
                                            with_tenant=True)


@router.delete("/{integration_id}", response_model=IntegrationDeleted)
async def delete_integration(integration_id: DbId, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    """Deletes it and unlinks its devices."""
    await carrier.delete_integration(svc.db, integration_id, None, p)
    return {"deleted": True, "id": integration_id}
