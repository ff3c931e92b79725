"""The firmware registry (HTTP only: parse, authorize, call the service, shape); docs/ota.md.

An image is uploaded as the raw request body (`Content-Type: application/octet-stream`), not a
multipart form: the route hands the bytes to the blob store as they arrive, so the size limit holds
while reading and no temporary copy is made.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from pulse.errors import UnsupportedMediaType
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.downloads import SignedLink, file_response, signed_link
from pulse.serve.params import ID_PATTERN, DbId, Offset
from pulse.serve.schemas.common import PageParams, page
from pulse.serve.schemas.firmware import FirmwareCreate, FirmwareOut, FirmwarePage
from pulse.services import firmware as service
from pulse.services.context import ServiceContext

router = APIRouter(tags=["firmware"])
PREFIX = "/api/v1/customer/firmware"
READ = customer("firmware.read")
WRITE = customer("firmware.write")
IMAGE_TYPE = service.MEDIA_TYPE
IMAGE_BODY = {"requestBody": {"required": True, "content": {IMAGE_TYPE: {"schema": {"type": "string",
                                                                                    "format": "binary"}}}}}


def _page(limit: int = Query(50, ge=1, le=200), offset: Offset = 0) -> PageParams:
    return PageParams(limit, offset)


@router.get(PREFIX, response_model=FirmwarePage)
async def list_firmware(device_type: str | None = Query(None, max_length=50), pg: PageParams = Depends(_page),
                        p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Newest first; `total` counts every version the filter matches (not just this page)."""
    items, total = await service.list_versions(svc, p.tenant_id, device_type, pg.limit, pg.offset)
    return page("firmware_versions", items, total, pg)


@router.post(PREFIX, status_code=201, response_model=FirmwareOut)
async def create_firmware(body: FirmwareCreate, p: Principal = Depends(WRITE),
                          svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """409 when the tenant has this version for this device type (two versions for any type too)."""
    return await service.create(svc, p.tenant_id, body.model_dump(), p.sub)


@router.get(PREFIX + "/{firmware_id}", response_model=FirmwareOut)
async def get_firmware(firmware_id: DbId, p: Principal = Depends(READ),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return await service.get(svc, p.tenant_id, firmware_id)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


@router.post(PREFIX + "/{firmware_id}/image", response_model=FirmwareOut, openapi_extra=IMAGE_BODY)
async def upload_image(firmware_id: DbId, request: Request, p: Principal = Depends(WRITE),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The image as the raw body; sets `file_url`, `file_size_bytes` and (unless declared, when it must
    match: else 422) `checksum_sha256`. 413 over `PULSE_FIRMWARE_MAX_BYTES`; 409 once uploaded."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != IMAGE_TYPE:
        raise UnsupportedMediaType(f"Send the image as the request body with Content-Type: {IMAGE_TYPE}")
    return await service.upload_image(svc, p.tenant_id, firmware_id, request.stream(), _content_length(request))


@router.get(PREFIX + "/{firmware_id}/download", response_model=None, response_class=RedirectResponse,
            status_code=307, responses={307: {"description": "to a signed link to the hosted image"}})
async def download_firmware(firmware_id: DbId, p: Principal = Depends(READ),
                            svc: ServiceContext = Depends(services)) -> RedirectResponse:
    """404 unless Pulse hosts the image."""
    return RedirectResponse(await service.download_link(svc, p.tenant_id, firmware_id), status_code=307)


@router.get(service.FILE_PATH, response_model=None, response_class=StreamingResponse,
            responses={200: {"content": {IMAGE_TYPE: {}}, "description": "the firmware image"}})
async def firmware_file(firmware_id: DbId, tenant_id: str = Path(pattern=ID_PATTERN),
                        link: SignedLink = Depends(signed_link),
                        svc: ServiceContext = Depends(services)) -> StreamingResponse:
    """The signed link devices download from: no user token, the signature is the credential."""
    return file_response(await service.open_signed(svc, tenant_id, firmware_id, link.expires, link.signature))
