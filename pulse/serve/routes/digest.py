"""Alert digest settings (HTTP only: parse, authorize, call the service, shape)."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.schemas.digest import DigestSettings, DigestSettingsOut, DigestSettingsSaved, DigestSettingsUpdate
from pulse.serve.schemas.merge import validated
from pulse.services import digest as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/alert-digest-settings", tags=["alert rules"])


@router.get("", response_model=DigestSettingsOut)
async def get_settings(p: Principal = Depends(customer("alerts.read")),
                       svc: ServiceContext = Depends(services)) -> dict:
    """The defaults (disabled) until settings are stored."""
    return await service.get_settings(svc.db, p.tenant_id)


@router.put("", response_model=DigestSettingsSaved)
async def put_settings(body: DigestSettingsUpdate, p: Principal = Depends(customer("alerts.digest.write")),
                       svc: ServiceContext = Depends(services)) -> dict:
    """Merges the given fields into the current settings and checks the result as a whole."""
    return await service.put_settings(svc.db, p.tenant_id, body.changes(),
                                      lambda merged: validated(DigestSettings, merged).model_dump())
