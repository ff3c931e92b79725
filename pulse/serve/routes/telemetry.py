"""Device telemetry (actor state + lake) and the device twin."""
from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from pulse.errors import Invalid
from pulse.pipelines import exports
from pulse.serve.deps import services
from pulse.services.context import ServiceContext
from pulse.serve.auth import Principal, customer
from pulse.serve.schemas.common import MAX_LIMIT
from pulse.storage import devices as device_store
from pulse.storage import sensors as sensor_store

router = APIRouter(prefix="/api/v1/customer/devices/{device_id}", tags=["telemetry & twin"])


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


async def _lake_read(svc: ServiceContext, tenant_id: str, device_id: str, fn: str, *args: Any) -> Any:
    """Parquet plus the lake writer's unflushed rows: reads see every acknowledged message."""
    await device_store.get(svc.db, tenant_id, device_id)
    extra = await svc.runtime.pending_telemetry(tenant_id, device_id)
    return await asyncio.to_thread(getattr(svc.lake, fn), tenant_id, device_id, *args, extra=extra)


@router.get("/telemetry/latest")
async def latest(device_id: str, p: Principal = Depends(customer("devices.read")),
                 svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await device_store.get(svc.db, p.tenant_id, device_id)
    values = await svc.runtime.device_call(p.tenant_id, device_id, "latest_view")
    metrics = {m: {"value": v["value"], "ts": _iso(v["ts_ms"])} for m, v in values.items()}
    return {"device_id": device_id, "metrics": metrics}


@router.get("/telemetry/metrics")
async def metric_names(device_id: str, p: Principal = Depends(customer("devices.read")),
                       svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    names = await _lake_read(svc, p.tenant_id, device_id, "metrics")
    return {"device_id": device_id, "metrics": names}


@router.get("/telemetry")
async def recent(device_id: str, limit: int = Query(100, ge=1, le=MAX_LIMIT),
                 p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    rows = await _lake_read(svc, p.tenant_id, device_id, "recent", limit)
    return {"device_id": device_id, "rows": rows, "count": len(rows)}


@router.get("/telemetry/history")
async def history(device_id: str, metric: str | None = Query(None, max_length=128),
                  start: datetime | None = None, end: datetime | None = None,
                  limit: int = Query(1000, ge=1, le=10_000),
                  p: Principal = Depends(customer("devices.read")), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    start, end = _utc(start), _utc(end)
    if start and end and start > end:
        raise Invalid("start must be before end")
    rows = await _lake_read(svc, p.tenant_id, device_id, "history", metric, start, end, limit)
    sensors = await sensor_store.sensor_metadata(svc.db, p.tenant_id, device_id)
    for row in rows:
        row["out_of_range"] = out_of_range(row["value"], sensors.get(row["metric"]))
    return {"device_id": device_id, "metric": metric, "start": start, "end": end, "points": rows, "count": len(rows),
            "sensors": {m: sensors[m] for m in sorted({r["metric"] for r in rows} | ({metric} if metric else set()))
                        if m in sensors}}


def out_of_range(value: float, sensor: dict[str, Any] | None) -> bool:
    """Values outside the sensor's declared range are stored as sent and flagged on read."""
    if not sensor:
        return False
    lo, hi = sensor.get("min_range"), sensor.get("max_range")
    return (lo is not None and value < lo) or (hi is not None and value > hi)


@router.get("/telemetry/export")
async def export(device_id: str, format: Literal["csv", "parquet"] = "csv",
                 metric: str | None = Query(None, max_length=128), start: datetime | None = None,
                 end: datetime | None = None, p: Principal = Depends(customer("devices.read")),
                 svc: ServiceContext = Depends(services)) -> Response:
    """Every row in [start, end), streamed: memory stays flat whatever the range."""
    start, end = _utc(start), _utc(end)
    if start and end and start > end:
        raise Invalid("start must be before end")
    reader = await _lake_read(svc, p.tenant_id, device_id, "export", metric, start, end)
    name = f"{device_id}-telemetry.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return StreamingResponse(exports.csv_chunks(reader), media_type="text/csv", headers=disposition)
    path = await asyncio.to_thread(exports.parquet_file, reader)
    return FileResponse(path, media_type="application/vnd.apache.parquet", headers=disposition,
                        background=BackgroundTask(os.unlink, path))


def _utc(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


# ---- twin ----------------------------------------------------------------------------------------
def _twin(device_id: str, view: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "desired": view["desired"], "desired_version": view["desired_version"],
        "desired_updated_at": _iso(view["desired_ts"]),
        "reported": view["reported"], "reported_version": view["reported_version"],
        "reported_updated_at": _iso(view["reported_ts"]),
        "delta": view["delta"],
    }


@router.get("/twin")
async def twin(device_id: str, p: Principal = Depends(customer("devices.read")),
               svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await device_store.get(svc.db, p.tenant_id, device_id)
    return _twin(device_id, await svc.runtime.device_call(p.tenant_id, device_id, "twin_view"))


@router.patch("/twin/desired")
async def patch_desired(device_id: str, patch: dict[str, Any] = Body(..., examples=[{"interval_s": 30}]),
                        p: Principal = Depends(customer("devices.twin.write")),
                        svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    """JSON merge patch of the desired state; bumps the version and publishes it retained (QoS 1)."""
    if not patch:
        raise Invalid("empty patch")
    await device_store.get(svc.db, p.tenant_id, device_id)
    view, publishes = await svc.runtime.device_call(p.tenant_id, device_id, "patch_desired", patch,
                                                    int(time.time() * 1000))
    await svc.downlink.publish(publishes)
    return _twin(device_id, view)


@router.get("/twin/delta")
async def twin_delta(device_id: str, p: Principal = Depends(customer("devices.read")),
                     svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    await device_store.get(svc.db, p.tenant_id, device_id)
    view = await svc.runtime.device_call(p.tenant_id, device_id, "twin_view")
    return {"device_id": device_id, "delta": view["delta"], "desired_version": view["desired_version"],
            "reported_version": view["reported_version"]}
