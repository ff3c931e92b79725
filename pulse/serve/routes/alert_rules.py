"""Alert rules and rule templates (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.alerts import (AppliedTemplates, ApplyTemplates, BacktestBody, BacktestResult, RuleCreate,
                                        RuleOut, RulePage, RuleTemplates, pulse_rule_names)
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.merge import validated
from pulse.services import alert_rules as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/alert-rules", tags=["alert rules"])


def _rule_fields(document: dict[str, Any]) -> dict:
    """A whole rule (a patched rule, a template on a scope) checked like a create body."""
    return validated(RuleCreate, document).to_fields()


@router.get("", response_model=RulePage)
async def list_rules(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("alerts.rules.read")),
                     svc: ServiceContext = Depends(services)) -> dict:
    items, total = await service.list_rules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("rules", items, total, pg) | {"tenant_id": p.tenant_id}


@router.post("/backtest", response_model=BacktestResult)
async def backtest(body: BacktestBody, p: Principal = Depends(customer("alerts.rules.read")),
                   svc: ServiceContext = Depends(services)) -> dict:
    """Which alerts a draft rule would have opened and closed over [start, end) of lake data,
    evaluated by the same code as the device actors. Data not yet flushed to Parquet is not seen."""
    result = await service.backtest(svc, p.tenant_id, body.rule.to_fields(), body.start, body.end)
    return {"alerts": result.alerts, "total": len(result.alerts), "rows_scanned": result.rows_scanned,
            "devices": result.devices, "elapsed_ms": round(result.elapsed_ms, 1)}


@router.get("/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: StrId, p: Principal = Depends(customer("alerts.rules.read")),
                   svc: ServiceContext = Depends(services)) -> dict:
    return await service.get_rule(svc.db, p.tenant_id, rule_id)


@router.post("", status_code=201, response_model=RuleOut)
async def create_rule(body: RuleCreate, p: Principal = Depends(customer("alert-rules.create")),
                      svc: ServiceContext = Depends(services)) -> dict:
    return await service.create_rule(svc, p.tenant_id, body.to_fields())


@router.patch("/{rule_id}", response_model=RuleOut)
async def patch_rule(rule_id: StrId, patch: dict[str, Any] = Body(..., examples=[{"threshold": 35}]),
                     p: Principal = Depends(customer("alert-rules.update")),
                     svc: ServiceContext = Depends(services)) -> dict:
    """Merges the given fields (Pulse's or the documented names) into the rule and validates the
    result as a whole rule."""
    return await service.patch_rule(svc, p.tenant_id, rule_id, pulse_rule_names(patch), _rule_fields)


@router.delete("/{rule_id}", status_code=204, response_class=Response)
async def delete_rule(rule_id: StrId, p: Principal = Depends(customer("alert-rules.delete")),
                      svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_rule(svc, p.tenant_id, rule_id)
    return Response(status_code=204)


templates_router = APIRouter(prefix="/api/v1/customer/alert-rule-templates", tags=["alert rules"])


@templates_router.get("", response_model=RuleTemplates)
async def list_templates(p: Principal = Depends(customer("alerts.rules.read"))) -> dict:
    items = service.template_catalogue()
    return {"templates": items, "total": len(items)}


@templates_router.post("/apply", response_model=AppliedTemplates)
async def apply_templates(body: ApplyTemplates, p: Principal = Depends(customer("alert-rules.create")),
                          svc: ServiceContext = Depends(services)) -> dict:
    """Create rules from templates for a scope; applying the same template to the same scope again
    returns the existing rule instead of a duplicate."""
    created, existing = await service.apply_templates(svc, p.tenant_id, body.template_keys, body.scope(), _rule_fields)
    return {"created": created, "existing": existing}
