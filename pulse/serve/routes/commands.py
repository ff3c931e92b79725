"""Commands to one device: created here, sent by the device actor, status from the device's ack."""
from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Query

from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.commands import CommandCreate
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.storage import commands as store
from pulse.storage import devices as device_store

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}/commands", tags=["commands"])
MAX_PARAMS_BYTES = 4096


@router.post("", status_code=201)
async def send_command(device_id: str, body: CommandCreate, p: Principal = Depends(customer("devices.commands.send")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Published at once (QoS 1) when the device is connected, else when it next connects."""
    device = await device_store.get(svc.db, p.tenant_id, device_id)
    if device["status"] != "ACTIVE":
        raise Invalid(f"device {device_id} is {device['status']}; commands need an ACTIVE device")
    if len(json.dumps(body.params)) > MAX_PARAMS_BYTES:
        raise Invalid(f"params larger than {MAX_PARAMS_BYTES} bytes")
    await _validate_against_template(svc, p.tenant_id, device, body)
    cmd = await store.create(svc.db, p.tenant_id, device_id, body.type, body.params, body.expires_in_seconds, p.sub)
    effects = await svc.runtime.device_call(p.tenant_id, device_id, "queue_command",
                                            store.as_actor_command(cmd), int(time.time() * 1000))
    await _dispatch(svc, p.tenant_id, device_id, effects)
    return await store.get(svc.db, p.tenant_id, device_id, cmd["command_id"])


@router.get("")
async def list_commands(device_id: str, status: str | None = Query(None, pattern="^(" + "|".join(store.STATUSES) + ")$"),
                        pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await device_store.get(svc.db, p.tenant_id, device_id)
    items, total = await store.list_commands(svc.db, p.tenant_id, device_id, status, pg.limit, pg.offset)
    return page("commands", items, total, pg)


async def _dispatch(svc: ServiceContext, tenant_id: str, device_id: str, effects: list) -> None:
    from pulse.domain.messages import CommandStatus, Publish

    await svc.downlink.publish([e for e in effects if isinstance(e, Publish)])
    updates = [(tenant_id, device_id, e) for e in effects if isinstance(e, CommandStatus)]
    if updates:
        await store.apply_statuses(svc.db, updates)


async def _validate_against_template(svc: ServiceContext, tenant_id: str, device: dict[str, Any], body: CommandCreate) -> None:
    """Devices with a template accept only its commands, with params matching its schema."""
    if device.get("template_id") is None:
        return
    from pulse.storage import templates

    definition = await templates.command_definition(svc.db, tenant_id, device["template_id"], body.type)
    if definition is None:
        raise Invalid(f"the device's template has no command {body.type!r}")
    errors = templates.validate_params(definition.get("parameters_schema") or {}, body.params)
    if errors:
        raise Invalid("params: " + "; ".join(errors))
