"""Alert rules; every change reaches the device actors at once."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from pulse.errors import Invalid
from pulse.serve.app import Services, services
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.alerts import RuleCreate, rule_document
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.storage import rules as store

router = APIRouter(prefix="/api/v1/customer/alert-rules", tags=["alert rules"])


@router.get("")
async def list_rules(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("alerts.rules.read")),
                     svc: Services = Depends(services)) -> dict[str, Any]:
    items, total = await store.list_rules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("rules", items, total, pg)


@router.get("/{rule_id}")
async def get_rule(rule_id: str, p: Principal = Depends(customer("alerts.rules.read")),
                   svc: Services = Depends(services)) -> dict[str, Any]:
    return await store.get(svc.db, p.tenant_id, rule_id)


@router.post("", status_code=201)
async def create_rule(body: RuleCreate, p: Principal = Depends(customer("alert-rules.create")),
                      svc: Services = Depends(services)) -> dict[str, Any]:
    rule = await store.create(svc.db, p.tenant_id, body.to_fields())
    await svc.runtime.rules_changed(p.tenant_id)
    return rule


@router.patch("/{rule_id}")
async def patch_rule(rule_id: str, patch: dict[str, Any] = Body(..., examples=[{"threshold": 35}]),
                     p: Principal = Depends(customer("alert-rules.update")),
                     svc: Services = Depends(services)) -> dict[str, Any]:
    """Merges the given fields into the rule and validates the result as a whole rule."""
    if not patch:
        raise Invalid("nothing to update")
    merged = {**rule_document(await store.get(svc.db, p.tenant_id, rule_id)), **patch}
    try:
        body = RuleCreate.model_validate(merged)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    rule = await store.update(svc.db, p.tenant_id, rule_id, body.to_fields())
    await svc.runtime.rules_changed(p.tenant_id)
    return rule


@router.delete("/{rule_id}", status_code=204)
async def delete_rule(rule_id: str, p: Principal = Depends(customer("alert-rules.delete")),
                      svc: Services = Depends(services)) -> Response:
    await store.delete(svc.db, p.tenant_id, rule_id)
    await svc.runtime.rules_changed(p.tenant_id)
    await svc.runtime.tenant_call(p.tenant_id, "rule_deleted", rule_id, int(time.time() * 1000))
    return Response(status_code=204)
