"""Escalation policies (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.escalation import PolicyCreate, PolicyOut, PolicyPage, PolicyUpdate
from pulse.services import escalation as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/escalation-policies", tags=["escalation policies"])

READ = customer("escalation.read")


def _owned(policy: dict, p: Principal) -> dict:
    """The documented `tenant_id` key (the store's rows leave it out)."""
    return policy | {"tenant_id": p.tenant_id}


@router.get("", response_model=PolicyPage)
async def list_policies(pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                        svc: ServiceContext = Depends(services)) -> dict:
    """By name."""
    items, total = await service.list_policies(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("policies", [_owned(i, p) for i in items], total, pg)


@router.post("", status_code=201, response_model=PolicyOut)
async def create_policy(body: PolicyCreate, p: Principal = Depends(customer("escalation.create")),
                        svc: ServiceContext = Depends(services)) -> dict:
    """`is_default: true` makes it the tenant's default and clears the previous one."""
    return _owned(await service.create_policy(svc.db, p.tenant_id, body.model_dump()), p)


@router.get("/{policy_id}", response_model=PolicyOut)
async def get_policy(policy_id: StrId, p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    return _owned(await service.get_policy(svc.db, p.tenant_id, policy_id), p)


@router.put("/{policy_id}", response_model=PolicyOut)
async def update_policy(policy_id: StrId, body: PolicyUpdate, p: Principal = Depends(customer("escalation.update")),
                        svc: ServiceContext = Depends(services)) -> dict:
    """A partial update: fields left out stay as they are. Escalating alerts follow the new levels
    from their next step on."""
    return _owned(await service.update_policy(svc.db, p.tenant_id, policy_id, body.changes()), p)


@router.delete("/{policy_id}", status_code=204, response_class=Response)
async def delete_policy(policy_id: StrId, p: Principal = Depends(customer("escalation.delete")),
                        svc: ServiceContext = Depends(services)) -> Response:
    """409 while an alert rule names the policy; open alerts following it stop escalating."""
    await service.delete_policy(svc.db, p.tenant_id, policy_id)
    return Response(status_code=204)
