"""OTA campaigns (HTTP only: parse, authorize, call the service, shape); docs/ota.md."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, Offset
from pulse.serve.schemas.common import PageParams, page
from pulse.serve.schemas.ota import (CAMPAIGN_STATUS, DEVICE_STATUS, CampaignCreate, CampaignDetail,
                                     CampaignDevicePage, CampaignPage, CampaignStatus)
from pulse.services import ota as service
from pulse.services.context import ServiceContext

router = APIRouter(tags=["ota"])
PREFIX = "/api/v1/customer/ota/campaigns"
READ = customer("ota.read")
WRITE = customer("ota.write")


def _page(limit: int = Query(50, ge=1, le=200), offset: Offset = 0) -> PageParams:
    return PageParams(limit, offset)


def _upper(status: str | None) -> str | None:
    return status.upper() if status else None


@router.get(PREFIX, response_model=CampaignPage)
async def list_campaigns(status: str | None = Query(None, pattern=CAMPAIGN_STATUS, description="any case"),
                         pg: PageParams = Depends(_page), p: Principal = Depends(READ),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Newest first; `total` counts every campaign the filter matches (not just this page)."""
    items, total = await service.list_campaigns(svc, p.tenant_id, _upper(status), pg.limit, pg.offset)
    return page("campaigns", items, total, pg)


@router.post(PREFIX, status_code=201, response_model=CampaignDetail)
async def create_campaign(body: CampaignCreate, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """CREATED, one PENDING device per target. 404 `Firmware version not found` / `Device group not
    found`; 400 `Device group has no members`; 422 unless exactly one of target_group_id, device_ids."""
    return await service.create(svc, p.tenant_id, body.model_dump(), p.sub)


@router.get(PREFIX + "/{campaign_id}", response_model=CampaignDetail)
async def get_campaign(campaign_id: DbId, p: Principal = Depends(READ),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """404 `Campaign not found` (also another tenant's)."""
    return await service.get(svc, p.tenant_id, campaign_id)


@router.post(PREFIX + "/{campaign_id}/start", response_model=CampaignStatus)
async def start_campaign(campaign_id: DbId, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """From CREATED or PAUSED (else 400 `Cannot start campaign in status X`); the first wave goes out now."""
    return await service.start(svc, p.tenant_id, campaign_id)


@router.post(PREFIX + "/{campaign_id}/pause", response_model=CampaignStatus)
async def pause_campaign(campaign_id: DbId, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Only from RUNNING (else 400): no new waves."""
    return await service.pause(svc, p.tenant_id, campaign_id)


@router.post(PREFIX + "/{campaign_id}/abort", response_model=CampaignStatus)
async def abort_campaign(campaign_id: DbId, p: Principal = Depends(WRITE),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """PENDING devices become SKIPPED; 400 `Campaign already in terminal status X` once COMPLETED or ABORTED."""
    return await service.abort(svc, p.tenant_id, campaign_id, p.sub)


@router.get(PREFIX + "/{campaign_id}/devices", response_model=CampaignDevicePage)
async def campaign_devices(campaign_id: DbId, status: str | None = Query(None, pattern=DEVICE_STATUS,
                                                                        description="any case"),
                           pg: PageParams = Depends(_page), p: Principal = Depends(READ),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Oldest first; `total` counts every device the filter matches."""
    items, total = await service.list_devices(svc, p.tenant_id, campaign_id, _upper(status), pg.limit, pg.offset)
    return page("devices", items, total, pg) | {"campaign_id": campaign_id}
