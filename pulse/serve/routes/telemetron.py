"""The Telemetron integration of a tenant (HTTP only: parse, authorize, call, shape). docs/telemetron.md."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.schemas.telemetron import Resync, TelemetronIntegrationOut, TelemetronIntegrationPut, TelemetronStatus
from pulse.services import telemetron as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/integrations/telemetron", tags=["telemetron"])

READ = customer("telemetron.read")
WRITE = customer("telemetron.write")


@router.get("", response_model=TelemetronIntegrationOut)
async def get_integration(p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    """404 until configured. The API key reads back masked."""
    return await service.get_integration(svc.settings, svc.db, p.tenant_id)


@router.put("", response_model=TelemetronIntegrationOut, responses={201: {"model": TelemetronIntegrationOut}})
async def put_integration(body: TelemetronIntegrationPut, response: Response, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict:
    """Create (201; queues every owned device for the first sync) or update (200)."""
    integration, created = await service.put_integration(svc.settings, svc.db, p.tenant_id,
                                                         body.model_dump(exclude_unset=True))
    response.status_code = 201 if created else 200
    return integration


@router.delete("", status_code=204, response_class=Response)
async def delete_integration(p: Principal = Depends(WRITE), svc: ServiceContext = Depends(services)) -> Response:
    """Removes the integration, its undelivered changes and the customer-id map; owners stay."""
    await service.delete_integration(svc.db, p.tenant_id)
    return Response(status_code=204)


@router.post("/sync", status_code=202, response_model=Resync)
async def sync(p: Principal = Depends(WRITE), svc: ServiceContext = Depends(services)) -> dict:
    """Full resync: every owned device is queued again and a drain starts; follow it on /status."""
    return {"enqueued": await service.resync(svc.settings, svc.db, svc.runtime, p.tenant_id)}


@router.get("/status", response_model=TelemetronStatus)
async def status(p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict:
    """Last clean sync, last error, and the outbox: pending, failed (with the latest failures), delivered."""
    return await service.status(svc.db, p.tenant_id)
