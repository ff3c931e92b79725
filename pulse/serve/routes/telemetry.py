"""Device telemetry (actor state + lake) and the device twin (HTTP only)."""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from pulse.domain.analytics import TimeRange, bucket_text
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import MAX_LIMIT, StrId
from pulse.serve.schemas.common import PageParams, page, page_params
from pulse.serve.schemas.telemetry import (FleetLatest, History, Latest, MetricNames, Recent, Twin, TwinDelta,
                                           desired_change, if_match_version, iso_ms, latest_metrics, latest_rows)
from pulse.services import telemetry as service
from pulse.services import twin as twin_service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}", tags=["telemetry & twin"])
fleet_router = APIRouter(prefix="/api/v1/customer/telemetry", tags=["telemetry & twin"])


@fleet_router.get("/latest", response_model=FleetLatest)
async def latest_many(device_id: list[StrId] | None = Query(None, max_length=MAX_LIMIT,
                                                             description="repeatable: only these devices"),
                      pg: PageParams = Depends(page_params), p: Principal = Depends(customer("devices.read")),
                      svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """The latest values of many devices in one request (dashboards): a page of the tenant's devices
    by device_id, narrowed to the `device_id`s given."""
    values, total = await service.latest_many(svc, p.tenant_id, device_id, pg.limit, pg.offset)
    devices = [{"device_id": d, "metrics": latest_metrics(v)} for d, v in values.items()]
    return {"tenant_id": p.tenant_id, **page("devices", devices, total, pg)}


@router.get("/telemetry/latest", response_model=Latest)
async def latest(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                 svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    values = await service.latest(svc, p.tenant_id, device_id)
    rows = latest_rows(values)
    return {"tenant_id": p.tenant_id, "device_id": device_id, "metrics": latest_metrics(values), "telemetry": rows,
            "count": len(rows)}


@router.get("/telemetry/metrics", response_model=MetricNames)
async def metric_names(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    names = await service.metric_names(svc, p.tenant_id, device_id)
    return {"device_id": device_id, "metrics": names, "total": len(names)}


@router.get("/telemetry", response_model=Recent)
async def recent(device_id: StrId, limit: int = Query(100, ge=1, le=MAX_LIMIT),
                 p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    rows = await service.recent(svc, p.tenant_id, device_id, limit)
    return {"tenant_id": p.tenant_id, "device_id": device_id, "rows": rows, "count": len(rows)}


@router.get("/telemetry/history", response_model=History)
async def history(device_id: StrId, metric: str | None = Query(None, max_length=128),
                  start: datetime | None = None, end: datetime | None = None,
                  limit: int = Query(1000, ge=1, le=10_000),
                  time_range: TimeRange | None = Query(None, alias="range",
                                                       description="a preset: bucketed points over the last range"),
                  bucket_size: str | None = Query(None, max_length=40, description="e.g. '5 minutes' (docs/analytics.md)"),
                  p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """Raw rows in [start, end); with `range` and/or `bucket_size` (range default 24h), the metric
    aggregated per bucket as the analytics query does."""
    if time_range is not None or bucket_size is not None:
        b = await service.history_buckets(svc, p.tenant_id, device_id, metric, time_range or "24h", bucket_size,
                                          start, end)
        return {"device_id": device_id, "metric": metric, "start": b.start, "end": b.end, "points": b.points,
                "count": len(b.points), "range": time_range or "24h", "bucket_size": bucket_text(b.bucket),
                **b.sensor}
    h = await service.history(svc, p.tenant_id, device_id, metric, start, end, limit)
    return {"device_id": device_id, "metric": metric, "start": h.start, "end": h.end, "points": h.points,
            "count": len(h.points), "sensors": h.sensors}


@router.get("/telemetry/export", response_model=None, response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
                             "description": "the rows as CSV (streamed) or Parquet"}})
async def export(device_id: StrId, format: Literal["csv", "parquet"] = "csv",
                 metric: str | None = Query(None, max_length=128), start: datetime | None = None,
                 end: datetime | None = None, p: Principal = Depends(customer("devices.read")),
                 svc: ServiceContext = Depends(services)) -> Response:
    """Every row in [start, end), streamed: memory stays flat whatever the range."""
    out = await service.export(svc, p.tenant_id, device_id, format, metric, start, end)
    disposition = {"Content-Disposition": f'attachment; filename="{out.filename}"'}
    if out.csv_chunks is not None:
        return StreamingResponse(out.csv_chunks, media_type="text/csv", headers=disposition)
    return FileResponse(out.parquet_path, media_type="application/vnd.apache.parquet", headers=disposition,
                        background=BackgroundTask(os.unlink, out.parquet_path))


# ---- twin ----------------------------------------------------------------------------------------
def _twin(device_id: str, view: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "desired": view["desired"], "desired_version": view["desired_version"],
        "desired_updated_at": iso_ms(view["desired_ts"]),
        "reported": view["reported"], "reported_version": view["reported_version"],
        "reported_updated_at": iso_ms(view["reported_ts"]),
        "delta": view["delta"], "structured_delta": view["structured_delta"],
        "sync_status": view["sync_status"], "shadow_updated_at": iso_ms(view["shadow_updated_ts"]),
    }


def _with_etag(response: Response, view: dict[str, Any]) -> None:
    """The documented system's ETag: the desired version, quoted."""
    response.headers["ETag"] = f'"{view["desired_version"]}"'


@router.get("/twin", response_model=Twin)
async def twin(device_id: StrId, response: Response, p: Principal = Depends(customer("devices.read")),
               svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    view = await twin_service.view(svc, p.tenant_id, device_id)
    _with_etag(response, view)
    return _twin(device_id, view)


@router.patch("/twin/desired", response_model=Twin,
              responses={409: {"description": "If-Match names a version that is no longer current"},
                         428: {"description": "If-Match is missing"}})
async def patch_desired(device_id: StrId, response: Response,
                        body: dict[str, Any] = Body(..., examples=[{"interval_s": 30},
                                                                   {"desired": {"interval_s": 30}}]),
                        content_type: str | None = Header(None),
                        if_match: str | None = Header(None, description='the ETag of GET …/twin, e.g. "3" '
                                                      "(required: 428 without, 409 when it is not current); "
                                                      "* writes over any version"),
                        p: Principal = Depends(customer("devices.twin.write")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """A JSON merge patch of the desired state, or `{"desired": {...}}` replacing it whole (sent as
    `application/json`; a body sent as `application/merge-patch+json` is always a merge patch). Bumps the
    version and publishes the document retained (QoS 1)."""
    change, replace = desired_change(body, content_type)
    view = await twin_service.patch_desired(svc, p.tenant_id, device_id, change, if_match_version(if_match),
                                            replace=replace)
    _with_etag(response, view)
    return _twin(device_id, view)


@router.get("/twin/delta", response_model=TwinDelta)
async def twin_delta(device_id: StrId, p: Principal = Depends(customer("devices.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    view = await twin_service.view(svc, p.tenant_id, device_id)
    return {"device_id": device_id, **view["structured_delta"], "delta": view["delta"], "in_sync": not view["delta"],
            "desired_version": view["desired_version"], "reported_version": view["reported_version"]}
