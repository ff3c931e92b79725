"""Reports and quick exports (HTTP only: parse, authorize, call the service, shape; docs/reports.md).

Quick exports need the read permission of what they reveal (`devices.read`, `alerts.read`): they
show nothing a list of the same rows would not; report runs and the SLA summary need `reports.read`.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import Offset, StrId
from pulse.serve.schemas.common import PageParams, page
from pulse.serve.schemas.reports import AlertExport, DeviceExport, ReportRunsPage, SlaSummary
from pulse.services import reports as service
from pulse.services.context import ServiceContext
from pulse.services.reports import QuickExport

router = APIRouter(prefix="/api/v1/customer", tags=["reports"])
Format = Query("csv", max_length=8, description="csv or json (any case)")


@router.get("/reports/runs", response_model=ReportRunsPage)
async def runs(limit: int = Query(50, ge=1, le=200), offset: Offset = 0,
               report_type: str | None = Query(None, pattern=f"^({'|'.join(service.REPORT_TYPES)})$"),
               p: Principal = Depends(customer("reports.read")), svc: ServiceContext = Depends(services)) -> dict:
    """The tenant's report runs, newest first."""
    items, total = await service.list_runs(svc.db, p.tenant_id, report_type, limit, offset)
    return page("runs", items, total, PageParams(limit, offset))


@router.get("/reports/sla-summary", response_model=SlaSummary)
async def sla_summary(days: int = Query(30, ge=1, le=365), p: Principal = Depends(customer("reports.read")),
                      svc: ServiceContext = Depends(services)) -> dict:
    """The last `days` days up to now; recorded as an `sla_summary` run."""
    return await service.sla_summary(svc.db, svc.settings, p.tenant_id, days, service.user(p.sub))


def _answer(out: QuickExport, model: type[BaseModel], key: str) -> Response:
    if out.csv_chunks is not None:
        return StreamingResponse(out.csv_chunks, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})
    return JSONResponse(model.model_validate({key: out.rows, "count": len(out.rows)}).model_dump(mode="json"))


def _responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": {"text/csv": {}},
                  "description": "CSV attachment (streamed), or JSON with format=json"}}


@router.get("/export/devices", response_model=None, response_class=StreamingResponse,
            responses=_responses(DeviceExport))
async def export_devices(format: str = Format, status: str | None = Query(None, max_length=16),
                         site_id: StrId | None = None, p: Principal = Depends(customer("devices.read")),
                         svc: ServiceContext = Depends(services)) -> Response:
    """Every device (or those of one status or site); recorded as a `device_export` run."""
    out = await service.export_devices(svc.db, svc.settings, p.tenant_id, format, status, site_id, service.user(p.sub))
    return _answer(out, DeviceExport, "devices")


@router.get("/export/alerts", response_model=None, response_class=StreamingResponse,
            responses=_responses(AlertExport))
async def export_alerts(format: str = Format, status: str = Query("ALL", max_length=16),
                        days: int = Query(7, ge=1, le=365), p: Principal = Depends(customer("alerts.read")),
                        svc: ServiceContext = Depends(services)) -> Response:
    """Alerts created in the last `days` days (status OPEN, ACKNOWLEDGED, CLOSED or ALL); recorded as
    an `alert_export` run."""
    out = await service.export_alerts(svc.db, p.tenant_id, format, status, days, service.user(p.sub))
    return _answer(out, AlertExport, "alerts")
