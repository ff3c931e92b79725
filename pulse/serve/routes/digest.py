"""Alert digest settings (HTTP only: parse, authorize, call storage, shape)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.digest import DigestSettings, DigestSettingsUpdate
from pulse.storage import digest as store

router = APIRouter(prefix="/api/v1/customer/alert-digest-settings", tags=["alert rules"])


@router.get("")
async def get_settings(p: Principal = Depends(customer("alerts.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The defaults (disabled) until settings are stored."""
    return await store.get_settings(svc.db, p.tenant_id)


@router.put("")
async def put_settings(body: DigestSettingsUpdate, p: Principal = Depends(customer("alerts.digest.write")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Merges the given fields into the current settings and checks the result as a whole."""
    merged = {**store.document(await store.get_settings(svc.db, p.tenant_id)), **body.changes()}
    try:
        settings = DigestSettings.model_validate(merged)
    except ValidationError as e:
        raise RequestValidationError(e.errors()) from None
    return await store.put_settings(svc.db, p.tenant_id, settings.model_dump())
