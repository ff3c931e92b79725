"""The device HTTP API (HTTP only): a device authenticated by its token (`X-Provision-Token`, which names the
device) reads its twin, reports state, fetches and acknowledges commands, fetches and updates job
executions; docs/device-protocol.md, "Device HTTP API". No user token."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request

from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.device_api import (RESPONSES, CommandAck, CommandAckOut, DeviceCommands, DeviceExecution,
                                            DeviceExecutions, DeviceShadow, ExecutionUpdate, ShadowReport)
from pulse.services import device_api as service
from pulse.services.context import ServiceContext
from pulse.services.device_api import DeviceIdentity

router = APIRouter(prefix="/device/v1", tags=["device"], responses=RESPONSES)
CONFLICT = {409: {"description": "expected_execution_number is not current, or the execution cannot move so"}}


async def device(request: Request, x_provision_token: str | None = Header(None),
                 svc: ServiceContext = Depends(services)) -> DeviceIdentity:
    return await service.authenticate(svc, x_provision_token, request.client.host if request.client else "")


@router.get("/shadow", response_model=DeviceShadow)
async def get_shadow(d: DeviceIdentity = Depends(device), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.shadow(svc, d)


@router.post("/shadow/reported", response_model=DeviceShadow)
async def report_shadow(body: ShadowReport, d: DeviceIdentity = Depends(device),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Merged into the reported state as `shadow/reported` over MQTT is; answers the twin afterwards."""
    return await service.report(svc, d, body.reported, body.version)


@router.get("/commands/pending", response_model=DeviceCommands)
async def pending_commands(d: DeviceIdentity = Depends(device),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Unsettled, unexpired commands, oldest first; fetching them makes them `delivered`."""
    items = await service.pending_commands(svc, d)
    return {"device_id": d.device_id, "commands": [{**c, "type": c["command_type"]} for c in items]}


@router.post("/commands/{command_id}/ack", response_model=CommandAckOut)
async def ack_command(command_id: StrId, body: CommandAck | None = None, d: DeviceIdentity = Depends(device),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """As `commands/ack` over MQTT (status ok → delivered, succeeded, failed, rejected); 404 another device's."""
    body = body or CommandAck()
    return await service.ack_command(svc, d, command_id, body.status, body.details)


@router.get("/jobs/pending", response_model=DeviceExecutions)
async def pending_jobs(d: DeviceIdentity = Depends(device), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Open (QUEUED or IN_PROGRESS) executions of unexpired jobs, oldest first."""
    return {"device_id": d.device_id, "jobs": await service.pending_jobs(svc, d)}


@router.get("/jobs/{job_id}/execution", response_model=DeviceExecution)
async def get_execution(job_id: StrId, d: DeviceIdentity = Depends(device),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.job_execution(svc, d, job_id)


@router.put("/jobs/{job_id}/execution", response_model=DeviceExecution, responses=CONFLICT)
async def update_execution(job_id: StrId, body: ExecutionUpdate, d: DeviceIdentity = Depends(device),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The same update as `…/jobs/{job_id}/update` over MQTT; 409 on a stale expected_execution_number or a
    settled execution, 404 when the device has no execution of the job."""
    return await service.update_job_execution(svc, d, job_id, body.status, body.expected_execution_number,
                                              body.status_details)
