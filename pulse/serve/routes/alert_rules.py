"""Alert rules; every change reaches the device actors at once."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.domain.rules import Rule
from pulse.pipelines import backtest as backtest_pipeline
from pulse.serve.schemas.alerts import ApplyTemplates, BacktestBody, RuleCreate, rule_document
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.storage import rule_templates
from pulse.storage import rules as store

router = APIRouter(prefix="/api/v1/customer/alert-rules", tags=["alert rules"])


@router.get("")
async def list_rules(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("alerts.rules.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await store.list_rules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("rules", items, total, pg)


@router.post("/backtest")
async def backtest(body: BacktestBody, p: Principal = Depends(customer("alerts.rules.read")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Which alerts a draft rule would have opened and closed over [start, end) of lake data,
    evaluated by the same code as the device actors. Data not yet flushed to Parquet is not seen."""
    fields = body.rule.to_fields()
    row = {**fields, "rule_id": "backtest", "tenant_id": p.tenant_id}
    async with svc.db.connect() as conn:
        scope = await store.scope_device_ids(conn, p.tenant_id, row)
    rule = Rule.from_row(row, scope)
    result = await asyncio.to_thread(backtest_pipeline.run, svc.settings.lake_dir, p.tenant_id, rule,
                                     body.start, body.end, scope)
    return {"alerts": result.alerts, "total": len(result.alerts), "rows_scanned": result.rows_scanned,
            "devices": result.devices, "elapsed_ms": round(result.elapsed_ms, 1)}


@router.get("/{rule_id}")
async def get_rule(rule_id: str, p: Principal = Depends(customer("alerts.rules.read")),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await store.get(svc.db, p.tenant_id, rule_id)


@router.post("", status_code=201)
async def create_rule(body: RuleCreate, p: Principal = Depends(customer("alert-rules.create")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    rule = await store.create(svc.db, p.tenant_id, body.to_fields())
    await svc.runtime.rules_changed(p.tenant_id)
    return rule


@router.patch("/{rule_id}")
async def patch_rule(rule_id: str, patch: dict[str, Any] = Body(..., examples=[{"threshold": 35}]),
                     p: Principal = Depends(customer("alert-rules.update")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
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
                      svc: ServiceContext = Depends(services)) -> Response:
    await store.delete(svc.db, p.tenant_id, rule_id)
    await svc.runtime.rules_changed(p.tenant_id)
    await svc.runtime.tenant_call(p.tenant_id, "rule_deleted", rule_id, int(time.time() * 1000))
    return Response(status_code=204)


templates_router = APIRouter(prefix="/api/v1/customer/alert-rule-templates", tags=["alert rules"])


@templates_router.get("")
async def list_templates(p: Principal = Depends(customer("alerts.rules.read"))) -> dict[str, Any]:
    items = rule_templates.catalogue()
    return {"templates": items, "total": len(items)}


@templates_router.post("/apply")
async def apply_templates(body: ApplyTemplates, p: Principal = Depends(customer("alert-rules.create")),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Create rules from templates for a scope; applying the same template to the same scope again
    returns the existing rule instead of a duplicate."""
    unknown = sorted(set(body.template_keys) - rule_templates.TEMPLATES.keys())
    if unknown:
        raise Invalid(f"unknown template(s): {', '.join(unknown)}")
    scope = body.scope()
    created, existing = [], []
    for key in body.template_keys:
        marker = rule_templates.apply_key(key, scope)
        found = await rule_templates.existing(svc.db, p.tenant_id, marker)
        if found:
            existing.append(found)
            continue
        rule = RuleCreate.model_validate({**rule_templates.TEMPLATES[key], **scope})
        fields = rule.to_fields()
        fields["config"]["applied_from"] = marker
        created.append(await store.create(svc.db, p.tenant_id, fields))
    if created:
        await svc.runtime.rules_changed(p.tenant_id)
    return {"created": created, "existing": existing}
