"""Device transports, and the deprecated device connection answered from the primary transport (HTTP only)."""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.routing import APIRoute

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import DbId, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.transports import (ConnectionOut, ConnectionPut, TransportCreate, TransportOut,
                                            TransportPage, TransportUpdate)
from pulse.services import transports as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}", tags=["device transports"])


@router.get("/transports", response_model=TransportPage)
async def list_transports(device_id: StrId, pg: PageParams = Depends(page_params),
                          p: Principal = Depends(customer("devices.read")),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The primary transport first."""
    items, total = await service.list_transports(svc, p.tenant_id, device_id, pg.limit, pg.offset)
    return {"device_id": device_id, **page("transports", items, total, pg)}


@router.post("/transports", status_code=201, response_model=TransportOut)
async def add_transport(device_id: StrId, body: TransportCreate, p: Principal = Depends(customer("devices.update")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Primary when is_primary is true, or when left out and the device has no primary yet."""
    return await service.create(svc, p.tenant_id, device_id, body.model_dump(exclude_unset=True))


@router.put("/transports/{transport_id}", response_model=TransportOut)
async def update_transport(device_id: StrId, transport_id: DbId, body: TransportUpdate,
                           p: Principal = Depends(customer("devices.update")),
                           svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """is_primary: true clears it on the device's other transports."""
    return await service.update(svc, p.tenant_id, device_id, transport_id, body.changes())


@router.delete("/transports/{transport_id}", status_code=204, response_class=Response)
async def delete_transport(device_id: StrId, transport_id: DbId, p: Principal = Depends(customer("devices.update")),
                           svc: ServiceContext = Depends(services)) -> Response:
    await service.delete(svc, p.tenant_id, device_id, transport_id)
    return Response(status_code=204)


# ---- deprecated: /connection ---------------------------------------------------------------------
class DeprecatedRoute(APIRoute):
    """Every response, errors included, carries Deprecation and a Link to the successor (RFC 9745, 8288)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def with_headers(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                respond = _handler_for(request, exc)
                if respond is None:
                    raise
                response = await respond(request, exc)
            response.headers["Deprecation"] = "true"
            # quoted: a header is latin-1, and the id may be anything the client put in the path
            device_id = quote(request.path_params.get("device_id", ""), safe="")
            successor = f"/api/v1/customer/devices/{device_id}/transports"
            response.headers["Link"] = f'<{successor}>; rel="successor-version"'
            return response

        return with_headers


def _handler_for(request: Request, exc: Exception) -> Callable | None:
    """The app's handler for an expected error (domain, validation, HTTP); unexpected ones propagate."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in request.app.exception_handlers:
            return request.app.exception_handlers[cls]
    return None


connection = APIRouter(route_class=DeprecatedRoute, deprecated=True, tags=["device transports"])


@connection.get("/connection", response_model=ConnectionOut)
async def get_connection(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Deprecated: use /transports. The device's primary transport in the legacy shape."""
    return await service.connection(svc, p.tenant_id, device_id)


@connection.put("/connection", response_model=ConnectionOut)
async def put_connection(device_id: StrId, body: ConnectionPut, p: Principal = Depends(customer("devices.update")),
                         svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Deprecated: use /transports. Creates or updates the primary transport."""
    return await service.put_connection(svc, p.tenant_id, device_id, body.changes())


@connection.delete("/connection", status_code=204, response_class=Response)
async def delete_connection(device_id: StrId, p: Principal = Depends(customer("devices.update")),
                            svc: ServiceContext = Depends(services)) -> Response:
    """Deprecated: use /transports. Deletes the primary transport."""
    await service.delete_connection(svc, p.tenant_id, device_id)
    return Response(status_code=204)


router.include_router(connection)
