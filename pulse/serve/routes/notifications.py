"""Notification channels, routing rules and the delivery job log (HTTP only: parse, authorize, call, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.notifications import (ChannelCreate, ChannelType, ChannelUpdate, JobStatus, RoutingRuleCreate,
                                               RoutingRuleUpdate)
from pulse.services import notifications as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["notifications"])
CHANNELS = "/notification-channels"
RULES = "/notification-routing-rules"


# ---- channels ----------------------------------------------------------------------------------
@router.get(CHANNELS)
async def list_channels(channel_type: ChannelType | None = None, pg: PageParams = Depends(page_params),
                        p: Principal = Depends(customer("notifications.read")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await service.list_channels(svc.db, p.tenant_id, pg.limit, pg.offset, channel_type)
    return page("channels", items, total, pg)


@router.post(CHANNELS, status_code=201)
async def create_channel(body: ChannelCreate, p: Principal = Depends(customer("notifications.create")),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Secrets in `config` are stored encrypted and only ever read back masked."""
    return await service.create_channel(svc.db, svc.settings, p.tenant_id, body.model_dump())


@router.get(CHANNELS + "/{channel_id}")
async def get_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.get_channel(svc.db, p.tenant_id, channel_id)


@router.put(CHANNELS + "/{channel_id}")
async def update_channel(channel_id: StrId, body: ChannelUpdate, p: Principal = Depends(customer("notifications.update")),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update_channel(svc.db, svc.settings, p.tenant_id, channel_id, body.changes())


@router.delete(CHANNELS + "/{channel_id}", status_code=204)
async def delete_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.delete")),
                         svc: ServiceContext = Depends(services)) -> Response:
    """409 while a routing rule names the channel; its undelivered jobs are marked FAILED."""
    await service.delete_channel(svc.db, p.tenant_id, channel_id)
    return Response(status_code=204)


@router.post(CHANNELS + "/{channel_id}/test")
async def test_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.test")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Send a test message now (also to a disabled channel); 200 with the outcome, `ok` false if it failed."""
    return await service.send_test_message(svc.db, svc.settings, p.tenant_id, channel_id)


# ---- routing rules -----------------------------------------------------------------------------
@router.get(RULES)
async def list_rules(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("notifications.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """In evaluation order: priority ascending, then oldest first."""
    items, total = await service.list_rules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return page("rules", items, total, pg)


@router.post(RULES, status_code=201)
async def create_rule(body: RoutingRuleCreate, p: Principal = Depends(customer("notifications.routing.create")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.create_rule(svc.db, p.tenant_id, body.model_dump())


@router.put(RULES + "/{rule_id}")
async def update_rule(rule_id: StrId, body: RoutingRuleUpdate,
                      p: Principal = Depends(customer("notifications.routing.update")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.update_rule(svc.db, p.tenant_id, rule_id, body.changes())


@router.delete(RULES + "/{rule_id}", status_code=204)
async def delete_rule(rule_id: StrId, p: Principal = Depends(customer("notifications.routing.delete")),
                      svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_rule(svc.db, p.tenant_id, rule_id)
    return Response(status_code=204)


# ---- jobs --------------------------------------------------------------------------------------
@router.get("/notification-jobs")
async def list_jobs(status: JobStatus | None = None, channel_id: StrId | None = None,
                    alert_id: DbId | None = None, pg: PageParams = Depends(page_params),
                    p: Principal = Depends(customer("notifications.read")),
                    svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Newest first, each with its attempts' log."""
    items, total = await service.list_jobs(svc.db, p.tenant_id, status=status, channel_id=channel_id,
                                           alert_id=alert_id, limit=pg.limit, offset=pg.offset)
    return page("jobs", items, total, pg)
