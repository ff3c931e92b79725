"""HTTP ingest: the MQTT envelopes over HTTP, authenticated by the device token."""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from pulse.serve.deps import services
from pulse.serve.params import StrId
from pulse.serve.schemas.ingest import RESPONSES, IngestAccepted
from pulse.services import ingest as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/ingest/v1", tags=["ingest"])


@router.post("/tenant/{tenant_id}/device/{device_id}/{msg_type}", status_code=202, response_model=IngestAccepted,
             responses=RESPONSES)
async def ingest(tenant_id: StrId, device_id: StrId, msg_type: Literal["telemetry", "heartbeat"],
                 request: Request, x_provision_token: str | None = Header(None),
                 svc: ServiceContext = Depends(services)) -> Any:
    """One envelope or a JSON list of up to 100; 202 once accepted data is durable (in the WAL)."""
    out = await service.http_ingest(svc, tenant_id, device_id, msg_type, x_provision_token, await request.body(),
                                    request.client.host if request.client else "")
    if out.reason is not None:
        return JSONResponse({"detail": out.detail, "reason": out.reason}, status_code=out.status)
    if out.status == 422:
        return JSONResponse({"detail": out.detail, "rejected": out.rejected}, status_code=422)
    return {"status": "accepted", "device_id": device_id, "accepted": out.accepted, "rejected": out.rejected}
