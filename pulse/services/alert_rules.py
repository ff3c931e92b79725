"""Alert rules: create, change and delete them, apply templates, backtest a draft over the lake.

Every change reaches the device actors at once (`runtime.rules_changed`); a deleted rule's open
alerts are closed by the tenant actor. The rule's body model belongs to the HTTP layer, so
where a use case builds a whole rule out of parts (a patch merged into the stored rule, a
template applied to a scope) the caller passes `check`: it validates that document as one rule
and returns the storage fields.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pulse.domain.rules import Rule
from pulse.errors import Invalid
from pulse.pipelines import backtest as backtest_pipeline
from pulse.pipelines.backtest import BacktestResult
from pulse.services.context import ServiceContext
from pulse.storage import rule_templates
from pulse.storage import rules as store
from pulse.storage.rule_templates import catalogue as template_catalogue
from pulse.storage.rules import get as get_rule
from pulse.storage.rules import list_rules

__all__ = ["Check", "rule_document", "create_rule", "patch_rule", "delete_rule", "backtest", "apply_templates",
           "template_catalogue", "get_rule", "list_rules"]

Check = Callable[[dict[str, Any]], dict[str, Any]]


def rule_document(row: dict[str, Any]) -> dict[str, Any]:
    """A stored rule back in the shape of a create body (what a patch is merged into)."""
    cfg = row.get("config") or {}
    doc: dict[str, Any] = {k: row[k] for k in ("name", "description", "rule_type", "severity", "duration_seconds",
                                               "device_ids", "auto_resolve", "enabled", "escalation_policy_id")}
    doc.update({k: v for k, v in cfg.items() if k not in ("conditions", "scope", "match", "applied_from")})
    doc.update(cfg.get("scope") or {})
    conds = cfg.get("conditions") or [{"metric": row["metric"], "operator": row["operator"], "threshold": row["threshold"]}]
    if row["rule_type"] == "threshold" and len(conds) > 1:
        doc.update(conditions=conds, match=cfg.get("match", "all"))
    elif row["rule_type"] == "telemetry_gap" or row["rule_type"] == "anomaly":
        doc["metric"] = conds[0]["metric"]
    else:
        doc.update(metric=conds[0]["metric"], operator=conds[0]["operator"], threshold=conds[0]["threshold"])
    return doc


async def create_rule(ctx: ServiceContext, tenant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    rule = await store.create(ctx.db, tenant_id, fields)
    await ctx.runtime.rules_changed(tenant_id)
    return rule


async def patch_rule(ctx: ServiceContext, tenant_id: str, rule_id: str, patch: dict[str, Any],
                     check: Check) -> dict[str, Any]:
    """Merges the given fields into the rule and checks the result as a whole rule."""
    if not patch:
        raise Invalid("nothing to update")
    fields = check({**rule_document(await store.get(ctx.db, tenant_id, rule_id)), **patch})
    rule = await store.update(ctx.db, tenant_id, rule_id, fields)
    await ctx.runtime.rules_changed(tenant_id)
    return rule


async def delete_rule(ctx: ServiceContext, tenant_id: str, rule_id: str) -> None:
    await store.delete(ctx.db, tenant_id, rule_id)
    await ctx.runtime.rules_changed(tenant_id)
    await ctx.runtime.tenant_call(tenant_id, "rule_deleted", rule_id, int(time.time() * 1000))


async def backtest(ctx: ServiceContext, tenant_id: str, fields: dict[str, Any], start: datetime,
                   end: datetime) -> BacktestResult:
    """Which alerts a draft rule would have opened and closed over [start, end) of lake data,
    evaluated by the same code as the device actors. Data not yet flushed to Parquet is not seen."""
    row = {**fields, "rule_id": "backtest", "tenant_id": tenant_id}
    async with ctx.db.connect() as conn:
        scope = await store.scope_device_ids(conn, tenant_id, row)
    rule = Rule.from_row(row, scope)
    return await asyncio.to_thread(backtest_pipeline.run, ctx.settings.lake_dir, tenant_id, rule, start, end, scope)


async def apply_templates(ctx: ServiceContext, tenant_id: str, template_keys: list[str], scope: dict[str, Any],
                          check: Check) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(created, existing) rules from templates for a scope; applying the same template to the same
    scope again returns the existing rule instead of a duplicate."""
    unknown = sorted(set(template_keys) - rule_templates.TEMPLATES.keys())
    if unknown:
        raise Invalid(f"unknown template(s): {', '.join(unknown)}")
    created, existing = [], []
    for key in template_keys:
        marker = rule_templates.apply_key(key, scope)
        found = await rule_templates.existing(ctx.db, tenant_id, marker)
        if found:
            existing.append(found)
            continue
        fields = check({**rule_templates.TEMPLATES[key], **scope})
        fields["config"]["applied_from"] = marker
        created.append(await store.create(ctx.db, tenant_id, fields))
    if created:
        await ctx.runtime.rules_changed(tenant_id)
    return created, existing
