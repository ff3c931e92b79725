"""Inbound carrier callbacks: `POST /api/v1/carrier/callbacks/{integration_id}` (no JWT; docs/carriers.md).

The carrier proves itself with the username/password Pulse registered, echoed in the body
(ThingSpace does no other authentication). Every call is recorded in `carrier_callbacks`, refused
ones too. A verified callback is answered 200 even when Pulse cannot use it, because the carrier
retries anything else.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request

from pulse.services import carrier_sync as carrier
from pulse.errors import Invalid
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.storage import carriers as store

router = APIRouter(prefix="/api/v1/carrier/callbacks", tags=["carrier callbacks"])

MAX_BODY_BYTES = 1_000_000


@router.post("/{integration_id}")
async def receive_callback(integration_id: int, request: Request, svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    ip = request.client.host if request.client else None
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        await store.record_callback(svc.db, integration_id=integration_id, tenant_id=None, outcome="invalid",
                                    detail=f"body of {len(raw)} bytes refused", remote_ip=ip)
        raise Invalid(f"callback body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError:
        await store.record_callback(svc.db, integration_id=integration_id, tenant_id=None, outcome="invalid",
                                    detail="body is not JSON", remote_ip=ip)
        raise Invalid("callback body is not JSON") from None
    return await carrier.handle_callback(svc.settings, svc.db, integration_id, body, ip)
