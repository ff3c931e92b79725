"""Escalation policies (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.escalation import PolicyCreate, PolicyUpdate
from pulse.services import escalation as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/escalation-policies", tags=["escalation policies"])

READ = customer("escalation.read")


@router.get("")
async def list_policies(pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """By name."""
    items, total = await service.list_policies(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("policies", items, total, pg)


@router.post("", status_code=201)
async def create_policy(body: PolicyCreate, p: Principal = Depends(customer("escalation.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """`is_default: true` makes it the tenant's default and clears the previous one."""
    return await service.create_policy(svc.db, p.tenant_id, body.model_dump())


@router.get("/{policy_id}")
async def get_policy(policy_id: StrId, p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.get_policy(svc.db, p.tenant_id, policy_id)


@router.put("/{policy_id}")
async def update_policy(policy_id: StrId, body: PolicyUpdate, p: Principal = Depends(customer("escalation.update")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """A partial update: fields left out stay as they are. Escalating alerts follow the new levels
    from their next step on."""
    return await service.update_policy(svc.db, p.tenant_id, policy_id, body.changes())


@router.delete("/{policy_id}", status_code=204)
async def delete_policy(policy_id: StrId, p: Principal = Depends(customer("escalation.delete")),
                        svc: ServiceContext = Depends(services)) -> Response:
    """409 while an alert rule names the policy; open alerts following it stop escalating."""
    await service.delete_policy(svc.db, p.tenant_id, policy_id)
    return Response(status_code=204)
