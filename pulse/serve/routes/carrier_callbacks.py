"""Inbound carrier callbacks: `POST /api/v1/carrier/callbacks/{integration_id}` (no JWT; docs/carriers.md).

The carrier proves itself with the username/password Pulse registered, echoed in the body
(ThingSpace does no other authentication). Every call is recorded in `carrier_callbacks`, refused
ones too. A verified callback is answered 200 even when Pulse cannot use it, because the carrier
retries anything else.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from pulse.serve.deps import services
from pulse.serve.params import DbId
from pulse.serve.schemas.carriers import CallbackReceipt
from pulse.services import carriers as carrier
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/carrier/callbacks", tags=["carrier callbacks"])


@router.post("/{integration_id}", response_model=CallbackReceipt)
async def receive_callback(integration_id: DbId, request: Request, svc: ServiceContext = Depends(services)) -> dict:
    """The raw body is handed on: one larger than 1 MB or not JSON is refused (422) and recorded."""
    ip = request.client.host if request.client else None
    return await carrier.receive_callback(svc.settings, svc.db, integration_id, await request.body(), ip)
