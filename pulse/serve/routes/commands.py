"""Commands to one device: created here, sent by the device actor, status from the device's ack (HTTP only)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.domain.commands import STATUSES
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.commands import CommandCreate, CommandOut, CommandPage
from pulse.serve.schemas.common import PageParams, one_of, page, page_params
from pulse.services import commands as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}/commands", tags=["commands"])


@router.post("", status_code=201, response_model=CommandOut)
async def send_command(device_id: StrId, body: CommandCreate, p: Principal = Depends(customer("devices.commands.send")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Published at once (QoS 1) when the device is connected, else when it next connects."""
    return await service.send(svc, p.tenant_id, device_id, body.type, body.params, body.expires_in_s, p.sub)


@router.get("", response_model=CommandPage)
async def list_commands(device_id: StrId, status: str | None = Query(None, pattern=one_of(STATUSES)),
                        pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    items, total = await service.list_commands(svc, p.tenant_id, device_id, status, pg.limit, pg.offset)
    return page("commands", items, total, pg)
