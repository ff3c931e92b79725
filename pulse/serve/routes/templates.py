"""Device templates and their metrics, commands and slots (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.templates import (Category, CloneBody, CommandCreate, CommandOut, CommandUpdate,
                                           MetricCreate, MetricOut, MetricUpdate, SlotCreate, SlotOut, SlotUpdate,
                                           TemplateCreate, TemplateDetail, TemplatePage, TemplateUpdate)
from pulse.services import templates as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/templates", tags=["device templates"])
READ, WRITE = customer("templates.read"), customer("templates.write")


@router.get("", response_model=TemplatePage)
async def list_templates(category: Category | None = None, source: Literal["system", "tenant"] | None = None,
                         search: str | None = Query(None, max_length=200), pg: PageParams = Depends(page_params),
                         p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """System templates and the tenant's own."""
    items, total = await service.list_templates(svc, p.tenant_id, category=category, source=source, search=search,
                                                limit=pg.limit, offset=pg.offset)
    return page("templates", items, total, pg)


@router.get("/{template_id}", response_model=TemplateDetail)
async def get_template(template_id: DbId, p: Principal = Depends(READ),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.get(svc, p.tenant_id, template_id)


@router.post("", status_code=201, response_model=TemplateDetail)
async def create_template(body: TemplateCreate, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create(svc, p.tenant_id, body.model_dump(exclude_none=True))


@router.put("/{template_id}", response_model=TemplateDetail)
async def update_template(template_id: DbId, body: TemplateUpdate, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """403 for system and locked templates; a locked one accepts `{"is_locked": false}`."""
    return await service.update(svc, p.tenant_id, template_id, body.changes())


@router.delete("/{template_id}", status_code=204, response_class=Response)
async def delete_template(template_id: DbId, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> Response:
    """409 while a device (or an installed module) uses the template."""
    await service.delete(svc, p.tenant_id, template_id)
    return Response(status_code=204)


@router.post("/{template_id}/clone", status_code=201, response_model=TemplateDetail)
async def clone_template(template_id: DbId, body: CloneBody | None = None, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """A tenant-owned, unlocked copy with its metrics, commands and slots."""
    body = body or CloneBody()
    return await service.clone(svc, p.tenant_id, template_id, body.name, body.slug)


# ---- metrics, commands, slots --------------------------------------------------------------------
@router.post("/{template_id}/metrics", status_code=201, response_model=MetricOut)
async def add_metric(template_id: DbId, body: MetricCreate, p: Principal = Depends(WRITE),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.add_part(svc, p.tenant_id, template_id, "metrics", body.model_dump(exclude_none=True))


@router.put("/{template_id}/metrics/{metric_id}", response_model=MetricOut)
async def update_metric(template_id: DbId, metric_id: DbId, body: MetricUpdate, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update_part(svc, p.tenant_id, template_id, "metrics", metric_id, body.changes())


@router.delete("/{template_id}/metrics/{metric_id}", status_code=204, response_class=Response)
async def delete_metric(template_id: DbId, metric_id: DbId, p: Principal = Depends(WRITE),
                        svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_part(svc, p.tenant_id, template_id, "metrics", metric_id)
    return Response(status_code=204)


@router.post("/{template_id}/commands", status_code=201, response_model=CommandOut)
async def add_command(template_id: DbId, body: CommandCreate, p: Principal = Depends(WRITE),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.add_part(svc, p.tenant_id, template_id, "commands", body.model_dump(exclude_none=True))


@router.put("/{template_id}/commands/{command_id}", response_model=CommandOut)
async def update_command(template_id: DbId, command_id: DbId, body: CommandUpdate, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update_part(svc, p.tenant_id, template_id, "commands", command_id, body.changes())


@router.delete("/{template_id}/commands/{command_id}", status_code=204, response_class=Response)
async def delete_command(template_id: DbId, command_id: DbId, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_part(svc, p.tenant_id, template_id, "commands", command_id)
    return Response(status_code=204)


@router.post("/{template_id}/slots", status_code=201, response_model=SlotOut)
async def add_slot(template_id: DbId, body: SlotCreate, p: Principal = Depends(WRITE),
                   svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.add_part(svc, p.tenant_id, template_id, "slots", body.model_dump())


@router.put("/{template_id}/slots/{slot_id}", response_model=SlotOut)
async def update_slot(template_id: DbId, slot_id: DbId, body: SlotUpdate, p: Principal = Depends(WRITE),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update_part(svc, p.tenant_id, template_id, "slots", slot_id, body.changes())


@router.delete("/{template_id}/slots/{slot_id}", status_code=204, response_class=Response)
async def delete_slot(template_id: DbId, slot_id: DbId, p: Principal = Depends(WRITE),
                      svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_part(svc, p.tenant_id, template_id, "slots", slot_id)
    return Response(status_code=204)
