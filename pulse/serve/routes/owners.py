"""Device owners (HTTP only: parse, authorize, call the service, shape). docs/telemetron.md, "Device owners"."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.owners import Owners, OwnersPut
from pulse.services import owners as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/devices", tags=["device owners"])


def _shape(device_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"device_id": device_id, "owners": items, "total": len(items)}


@router.get("/{device_id}/owners", response_model=Owners)
async def get_owners(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The device's owners in the order last given, each with `since` (when they became an owner)."""
    return _shape(device_id, await service.list_owners(svc.db, p.tenant_id, device_id))


@router.put("/{device_id}/owners", response_model=Owners)
async def put_owners(device_id: StrId, body: OwnersPut, p: Principal = Depends(customer("devices.owners.write")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Replace the owners (a transfer is a PUT with the new owner). With a Telemetron integration the
    change is queued for it in the same transaction."""
    owners = [o.model_dump(exclude_unset=True) for o in body.owners]  # unsent phone/address stay as stored
    return _shape(device_id, await service.replace_owners(svc.db, p.tenant_id, device_id, owners))
