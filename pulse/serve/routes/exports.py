"""Export jobs (reference §4), and the signed link that serves their files without a user token."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import RedirectResponse, StreamingResponse

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.downloads import SignedLink, file_response, signed_link
from pulse.serve.params import ID_PATTERN, Offset
from pulse.serve.schemas.common import PageParams, page
from pulse.serve.schemas.exports import ExportCreate, ExportCreated, ExportJob, ExportPage
from pulse.services import exports as service
from pulse.services.context import ServiceContext

router = APIRouter(tags=["exports"])
PREFIX = "/api/v1/customer/exports"


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
                      link: SignedLink = Depends(signed_link),
                      svc: ServiceContext = Depends(services)) -> StreamingResponse:
    """The signed link a download redirects to: no user token, the signature is the credential."""
    return file_response(await service.open_signed(svc, tenant_id, export_id, link.expires, link.signature))
