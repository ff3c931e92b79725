"""HTTP ingest: the MQTT envelopes over HTTP, authenticated by the device token."""
from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from pulse.actors.ingest import accept, limits_from
from pulse.actors.messages import Rejection
from pulse.serve.app import Services, services
from pulse.storage import quarantine, tokens

router = APIRouter(prefix="/ingest/v1", tags=["ingest"])


async def _refuse(svc: Services, reason: str, topic: str, tenant_id: str, device_id: str, status: int,
                  detail: str) -> JSONResponse:
    await quarantine.record(svc.db, [Rejection(reason, topic, tenant_id, device_id, None, int(time.time() * 1000))])
    return JSONResponse({"detail": detail, "reason": reason}, status_code=status)


@router.post("/tenant/{tenant_id}/device/{device_id}/{msg_type}", status_code=202)
async def ingest(tenant_id: str, device_id: str, msg_type: Literal["telemetry", "heartbeat"], request: Request,
                 x_provision_token: str | None = Header(None), svc: Services = Depends(services)) -> Any:
    """One envelope or a JSON list of up to 100; 202 once accepted data is durable (in the WAL)."""
    topic = f"tenant/{tenant_id}/device/{device_id}/{msg_type}"
    limiter, cache = svc.rate_limiter, svc.token_cache
    if not x_provision_token:
        return await _refuse(svc, "TOKEN_MISSING", topic, tenant_id, device_id, 401, "X-Provision-Token header required")
    key = (f"{tenant_id}/{device_id}", tokens.hash_secret(x_provision_token))
    ok = cache.get(key)
    if ok is None:
        ok = await tokens.verify(svc.db, tenant_id, device_id, x_provision_token)
        cache.put(key, ok)
    if not ok:
        return await _refuse(svc, "TOKEN_INVALID", topic, tenant_id, device_id, 401, "invalid device token")
    if not limiter.allow(key[0]):
        return await _refuse(svc, "RATE_LIMITED", topic, tenant_id, device_id, 429,
                             f"more than {svc.settings.http_ingest_rate_per_s:g} requests/s for this device")
    body = await request.body()
    result, rejections = await accept(svc.runtime, svc.db, limits_from(svc.settings), [(topic, body)])
    rejected = [{"reason": r.reason, "detail": r.detail} for r in rejections]
    accepted = result.accepted if result else 0
    if accepted == 0 and rejected:
        return JSONResponse({"detail": f"rejected: {rejected[0]['reason']}", "rejected": rejected}, status_code=422)
    if result and result.publishes:
        await svc.downlink.publish(result.publishes)
    return {"status": "accepted", "device_id": device_id, "accepted": accepted, "rejected": rejected}
