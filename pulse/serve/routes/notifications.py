"""Notification channels, routing rules and the delivery job log (HTTP only: parse, authorize, call, shape)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, Offset, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.notifications import (ChannelCreate, ChannelOut, ChannelPage, ChannelTestResult, ChannelType,
                                               ChannelUpdate, DeliveryAttempts, DeliveryJobPage, DeliveryStatus,
                                               JobPage, JobStatus, RoutingRuleCreate, RoutingRuleOut, RoutingRulePage,
                                               RoutingRuleUpdate)
from pulse.services import notifications as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["notifications"])
CHANNELS = "/notification-channels"
RULES = "/notification-routing-rules"
IntegrationId = Annotated[str | None, Query(max_length=64, description="a channel id, `ch-` prefix optional")]


def _owned(row: dict, p: Principal) -> dict:
    """The documented `tenant_id` key (the store's rows leave it out)."""
    return row | {"tenant_id": p.tenant_id}


def _owned_page(key: str, items: list[dict], total: int, pg: PageParams, p: Principal) -> dict:
    return page(key, [_owned(i, p) for i in items], total, pg)


# ---- channels ----------------------------------------------------------------------------------
@router.get(CHANNELS, response_model=ChannelPage)
async def list_channels(channel_type: ChannelType | None = None, pg: PageParams = Depends(page_params),
                        p: Principal = Depends(customer("notifications.read")),
                        svc: ServiceContext = Depends(services)) -> dict:
    items, total = await service.list_channels(svc.db, p.tenant_id, pg.limit, pg.offset, channel_type)
    return _owned_page("channels", items, total, pg, p)


@router.post(CHANNELS, status_code=201, response_model=ChannelOut)
async def create_channel(body: ChannelCreate, p: Principal = Depends(customer("notifications.create")),
                         svc: ServiceContext = Depends(services)) -> dict:
    """Secrets in `config` are stored encrypted and only ever read back masked."""
    return _owned(await service.create_channel(svc.db, svc.settings, p.tenant_id, body.model_dump()), p)


@router.get(CHANNELS + "/{channel_id}", response_model=ChannelOut)
async def get_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.read")),
                      svc: ServiceContext = Depends(services)) -> dict:
    return _owned(await service.get_channel(svc.db, p.tenant_id, channel_id), p)


@router.put(CHANNELS + "/{channel_id}", response_model=ChannelOut)
async def update_channel(channel_id: StrId, body: ChannelUpdate, p: Principal = Depends(customer("notifications.update")),
                         svc: ServiceContext = Depends(services)) -> dict:
    return _owned(await service.update_channel(svc.db, svc.settings, p.tenant_id, channel_id, body.changes()), p)


@router.delete(CHANNELS + "/{channel_id}", status_code=204, response_class=Response)
async def delete_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.delete")),
                         svc: ServiceContext = Depends(services)) -> Response:
    """409 while a routing rule names the channel; its undelivered jobs are marked FAILED."""
    await service.delete_channel(svc.db, p.tenant_id, channel_id)
    return Response(status_code=204)


@router.post(CHANNELS + "/{channel_id}/test", response_model=ChannelTestResult)
async def test_channel(channel_id: StrId, p: Principal = Depends(customer("notifications.test")),
                       svc: ServiceContext = Depends(services)) -> dict:
    """Send a test message now (also to a disabled channel); 200 with the outcome, `ok` false if it failed."""
    return await service.send_test_message(svc.db, svc.settings, p.tenant_id, channel_id)


# ---- routing rules -----------------------------------------------------------------------------
@router.get(RULES, response_model=RoutingRulePage)
async def list_rules(pg: PageParams = Depends(page_params), p: Principal = Depends(customer("notifications.read")),
                     svc: ServiceContext = Depends(services)) -> dict:
    """In evaluation order: priority ascending, then oldest first."""
    items, total = await service.list_rules(svc.db, p.tenant_id, pg.limit, pg.offset)
    return _owned_page("rules", items, total, pg, p)


@router.post(RULES, status_code=201, response_model=RoutingRuleOut)
async def create_rule(body: RoutingRuleCreate, p: Principal = Depends(customer("notifications.routing.create")),
                      svc: ServiceContext = Depends(services)) -> dict:
    return _owned(await service.create_rule(svc.db, p.tenant_id, body.model_dump()), p)


@router.put(RULES + "/{rule_id}", response_model=RoutingRuleOut)
async def update_rule(rule_id: StrId, body: RoutingRuleUpdate,
                      p: Principal = Depends(customer("notifications.routing.update")),
                      svc: ServiceContext = Depends(services)) -> dict:
    return _owned(await service.update_rule(svc.db, p.tenant_id, rule_id, body.changes()), p)


@router.delete(RULES + "/{rule_id}", status_code=204, response_class=Response)
async def delete_rule(rule_id: StrId, p: Principal = Depends(customer("notifications.routing.delete")),
                      svc: ServiceContext = Depends(services)) -> Response:
    await service.delete_rule(svc.db, p.tenant_id, rule_id)
    return Response(status_code=204)


# ---- jobs --------------------------------------------------------------------------------------
@router.get("/notification-jobs", response_model=JobPage)
async def list_jobs(status: JobStatus | None = None, channel_id: StrId | None = None,
                    alert_id: DbId | None = None, pg: PageParams = Depends(page_params),
                    p: Principal = Depends(customer("notifications.read")),
                    svc: ServiceContext = Depends(services)) -> dict:
    """Newest first, each with its attempts' log."""
    items, total = await service.list_jobs(svc.db, p.tenant_id, status=status, channel_id=channel_id,
                                           alert_id=alert_id, limit=pg.limit, offset=pg.offset)
    return _owned_page("jobs", items, total, pg, p)


# ---- the delivery log under its documented names (docs/notifications.md) ------------------------
@router.get("/delivery-jobs", response_model=DeliveryJobPage)
async def delivery_jobs(status: JobStatus | None = None,
                        integration_id: IntegrationId = None,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Offset = 0,
                        p: Principal = Depends(customer("notifications.read")),
                        svc: ServiceContext = Depends(services)) -> dict:
    """The notification jobs, newest first; 400 `Invalid integration_id` for an id no channel can have."""
    items, total = await service.list_delivery_jobs(svc.db, p.tenant_id, status=status, integration_id=integration_id,
                                                    limit=limit, offset=offset)
    return page("jobs", items, total, PageParams(limit, offset))


@router.get("/delivery-jobs/{job_id}/attempts", response_model=DeliveryAttempts)
async def delivery_attempts(job_id: DbId, p: Principal = Depends(customer("notifications.read")),
                            svc: ServiceContext = Depends(services)) -> dict:
    """Every send of the job, first first; 404 `Delivery job not found` (also for another tenant's job)."""
    return {"job_id": job_id, "attempts": await service.job_attempts(svc.db, p.tenant_id, job_id)}


@router.get("/delivery-status", response_model=DeliveryStatus)
async def delivery_status(limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          p: Principal = Depends(customer("notifications.read")),
                          svc: ServiceContext = Depends(services)) -> dict:
    """The tenant's latest delivery attempts over all jobs, newest first."""
    attempts = await service.recent_attempts(svc.db, p.tenant_id, limit)
    return {"tenant_id": p.tenant_id, "attempts": [_owned(a, p) for a in attempts]}
