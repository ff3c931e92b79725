"""Customer carrier routes: integrations, and the carrier line of a device (HTTP only; docs/carriers.md).

Every route needs the `carrier_self_service` tier feature on top of its permission. Status and
usage serve what the last sync stored; `?refresh=true` asks the carrier first. Diagnostics and
plans always ask the carrier.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from pulse.domain.carriers import PENDING
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.entitlements import feature
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.carriers import (IntegrationCreate, IntegrationDeleted, IntegrationOut, IntegrationPage, IntegrationUpdate, LineAction,
                                         LineDiagnostics, LineLink, LineStatus, LineUsage, LinkBody, Plans,
                                         ProvisionBody, Provisioned)
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.services import carriers as carrier
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer", tags=["carrier"])

FEATURE = "carrier_self_service"
READ = feature(FEATURE, customer("carrier.integrations.read"))
WRITE = feature(FEATURE, customer("carrier.integrations.write"))
ACT = feature(FEATURE, customer("carrier.actions.execute"))
LINK = feature(FEATURE, customer("carrier.links.write"))
MAX_HISTORY = 1000


# ---- integrations ------------------------------------------------------------------------------
@router.get("/carrier/integrations", response_model=IntegrationPage)
async def list_integrations(carrier_name: str | None = Query(None, max_length=32), enabled: bool | None = None,
                            pg: PageParams = Depends(page_params), p: Principal = Depends(READ),
                            svc: ServiceContext = Depends(services)) -> dict:
    items, total = await carrier.list_integrations(svc.settings, svc.db, p.tenant_id, pg.limit, pg.offset,
                                                   carrier_name=carrier_name, enabled=enabled)
    return page("integrations", items, total, pg)


@router.post("/carrier/integrations", status_code=201, response_model=IntegrationOut)
async def create_integration(body: IntegrationCreate, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    """One per carrier; 400 for a carrier Pulse has no provider for. The callback is registered with
    the carrier when `public_base_url` is configured."""
    return await carrier.create_integration(svc.settings, svc.db, p.tenant_id, body.model_dump(), p)


@router.get("/carrier/integrations/{integration_id}", response_model=IntegrationOut)
async def get_integration(integration_id: DbId, p: Principal = Depends(READ),
                          svc: ServiceContext = Depends(services)) -> dict:
    return await carrier.get_integration(svc.settings, svc.db, integration_id, p.tenant_id)


@router.put("/carrier/integrations/{integration_id}", response_model=IntegrationOut)
async def update_integration(integration_id: DbId, body: IntegrationUpdate, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    """A partial update; secrets left out or sent back masked stay as they are."""
    return await carrier.update_integration(svc.settings, svc.db, integration_id, p.tenant_id, body.changes(), p)


@router.delete("/carrier/integrations/{integration_id}", response_model=IntegrationDeleted)
async def delete_integration(integration_id: DbId, p: Principal = Depends(WRITE),
                             svc: ServiceContext = Depends(services)) -> dict:
    """Also unlinks every device linked through it (their usage history goes too)."""
    await carrier.delete_integration(svc.db, integration_id, p.tenant_id, p)
    return {"deleted": True, "id": integration_id}


@router.get("/carrier/integrations/{integration_id}/plans", response_model=Plans)
async def list_plans(integration_id: DbId, p: Principal = Depends(READ),
                     svc: ServiceContext = Depends(services)) -> dict:
    """The carrier's data plans; an empty list where the carrier sells none (1NCE)."""
    return await carrier.plans(svc.settings, svc.db, p.tenant_id, integration_id)


# ---- a device's line ---------------------------------------------------------------------------
@router.get("/devices/{device_id}/carrier/status", response_model=LineStatus)
async def line_status(device_id: StrId, refresh: bool = Query(False, description="ask the carrier now"),
                      p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    """The line as last synced (or refreshed), with its pending carrier requests and recent ones."""
    return await carrier.line_status(svc.settings, svc.db, p.tenant_id, device_id, refresh)


@router.get("/devices/{device_id}/carrier/usage", response_model=LineUsage)
async def line_usage(device_id: StrId, refresh: bool = Query(False, description="ask the carrier now"),
                     history_limit: int = Query(100, ge=1, le=MAX_HISTORY),
                     p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    """Latest usage, share of the plan used against the alert threshold, and the history for charts."""
    return await carrier.line_usage(svc.settings, svc.db, svc.runtime, p.tenant_id, device_id, history_limit, refresh)


@router.get("/devices/{device_id}/carrier/diagnostics", response_model=LineDiagnostics)
async def line_diagnostics(device_id: StrId, p: Principal = Depends(READ),
                           svc: ServiceContext = Depends(services)) -> dict:
    """Asked of the carrier on every call (never synced); 501 where the carrier has none (1NCE)."""
    return await carrier.diagnostics(svc.settings, svc.db, p.tenant_id, device_id)


@router.post("/devices/{device_id}/carrier/actions/{action}", response_model=LineAction,
             responses={202: {"model": LineAction, "description": "the carrier is working on it: see request_id"}})
async def line_action(device_id: StrId, action: StrId, p: Principal = Depends(ACT),
                      svc: ServiceContext = Depends(services)) -> JSONResponse:
    """activate | suspend | restore | deactivate | reboot (an SMS "REBOOT"). 200 when done, 202 with
    `request_id` while the carrier works on it (settled by callback or polling); 501 if unsupported."""
    body = LineAction.model_validate(await carrier.execute_action(svc.settings, svc.db, p, device_id, action))
    return JSONResponse(jsonable_encoder(body), status_code=202 if body.state == PENDING else 200)


@router.post("/devices/{device_id}/carrier/link", response_model=LineLink)
async def link_line(device_id: StrId, body: LinkBody, p: Principal = Depends(LINK),
                    svc: ServiceContext = Depends(services)) -> dict:
    """Link the device to a line of one of the tenant's integrations, once the carrier confirms it."""
    return await carrier.link_line(svc.settings, svc.db, p, device_id, body.carrier_integration_id,
                                   body.carrier_device_id)


@router.delete("/devices/{device_id}/carrier/link", status_code=204, response_class=Response)
async def unlink_line(device_id: StrId, p: Principal = Depends(LINK), svc: ServiceContext = Depends(services)) -> Response:
    """Forget the device's line (the SIM itself is not changed at the carrier)."""
    await carrier.unlink_line(svc.db, p, device_id)
    return Response(status_code=204)


@router.post("/devices/{device_id}/carrier/provision", response_model=Provisioned)
async def provision_line(device_id: StrId, body: ProvisionBody, p: Principal = Depends(LINK),
                         svc: ServiceContext = Depends(services)) -> dict:
    """Claim a SIM by ICCID (15–22 digits) from the carrier, optionally on a plan, and link the device."""
    claimed = await carrier.provision_line(svc.settings, svc.db, p, device_id, body.carrier_integration_id,
                                           body.iccid, body.plan_id)
    return claimed | {"carrier_integration_id": body.carrier_integration_id}
