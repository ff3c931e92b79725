"""Export jobs (reference §4), and the signed link that serves their files without a user token."""
from __future__ import annotations

from typing import Any, BinaryIO, Iterator

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import RedirectResponse, StreamingResponse

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import ID_PATTERN, Offset
from pulse.serve.schemas.common import PageParams, page
from pulse.serve.schemas.exports import ExportCreate, ExportCreated, ExportJob, ExportPage
from pulse.services import exports as service
from pulse.services.context import ServiceContext

router = APIRouter(tags=["exports"])
PREFIX = "/api/v1/customer/exports"
READ_BLOCK = 1 << 20


def _job(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "download_url": service.download_url(job)}


def _page(limit: int = Query(20, ge=1, le=100), offset: Offset = 0) -> PageParams:
    return PageParams(limit, offset)


@router.post(PREFIX, status_code=202, response_model=ExportCreated)
async def create_export(body: ExportCreate, p: Principal = Depends(customer("exports.create")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    job, estimate = await service.create(svc, p.tenant_id, body.export_type, body.format, body.filters.model_dump(),
                                         body.callback_url, p.sub)
    return {"export_id": job["export_id"], "status": job["status"], "estimated_rows": estimate,
            "message": f"Export job created. Check status at {PREFIX}/{job['export_id']}"}


@router.get(PREFIX, response_model=ExportPage)
async def list_exports(pg: PageParams = Depends(_page), p: Principal = Depends(customer("exports.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    jobs, total = await service.list_jobs(svc, p.tenant_id, pg.limit, pg.offset)
    return page("exports", [_job(j) for j in jobs], total, pg)


@router.get(PREFIX + "/{export_id}", response_model=ExportJob)
async def get_export(export_id: str = Path(max_length=64), p: Principal = Depends(customer("exports.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return _job(await service.get(svc, p.tenant_id, export_id))


@router.get(PREFIX + "/{export_id}/download", response_model=None, response_class=RedirectResponse,
            status_code=307, responses={307: {"description": "to a signed link to the file, valid for an hour"}})
async def download_export(export_id: str = Path(max_length=64), p: Principal = Depends(customer("exports.read")),
                          svc: ServiceContext = Depends(services)) -> RedirectResponse:
    url, rows = await service.download_link(svc, p.tenant_id, export_id)
    return RedirectResponse(url, status_code=307, headers={"X-Export-Row-Count": str(rows)})


@router.get("/api/v1/export-files/{tenant_id}/{export_id}", response_model=None, response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/json": {}, "application/vnd.apache.parquet": {}},
                             "description": "the export file"}})
async def export_file(tenant_id: str = Path(pattern=ID_PATTERN), export_id: str = Path(max_length=64),
                      expires: int = Query(ge=0, le=2**62), signature: str = Query(pattern="^[0-9a-f]{64}$"),
                      svc: ServiceContext = Depends(services)) -> StreamingResponse:
    """The signed link a download redirects to: no user token, the signature is the credential."""
    f = await service.open_signed(svc, tenant_id, export_id, expires, signature)
    return StreamingResponse(_blocks(f.file), media_type=f.media_type, headers={
        "Content-Disposition": f'attachment; filename="{f.filename}"', "Content-Length": str(f.size)})


def _blocks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while block := file.read(READ_BLOCK):
            yield block
