"""Reading a device's telemetry: the actor's latest values, and the lake plus the rows not yet flushed to it."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Iterator, Literal, TypeVar

from pulse.domain.analytics import TIME_RANGES, bucket_for
from pulse.domain.device import view_of_latest
from pulse.domain.latest import unpack
from pulse.domain.sensors import out_of_range
from pulse.errors import Invalid
from pulse.pipelines import analytics, exports
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store
from pulse.storage import sensors as sensor_store

T = TypeVar("T")
DEFAULT_RANGE = timedelta(hours=24)  # history without a start: this far back from `end` (or now)
BUCKET_AGGREGATIONS = ("avg", "min", "max", "count")  # each point of a bucketed history
DEFAULT_PRECISION = 2  # digits a chart shows when the sensor declares none (the documented system's)


@dataclass
class History:
    start: datetime | None
    end: datetime | None
    points: list[dict[str, Any]]  # each flagged `out_of_range` against its sensor's declared range
    sensors: dict[str, dict[str, Any]]  # metadata of the sensors the points (and the asked metric) belong to


@dataclass
class Buckets:
    """A bucketed history: one point (time, avg, min, max, count) per bucket holding rows."""

    start: datetime
    end: datetime
    bucket: timedelta
    points: list[dict[str, Any]]
    sensor: dict[str, Any]  # unit, min_range, max_range, precision_digits of the metric's sensor


@dataclass
class Export:
    """Either CSV chunks to stream, or a temporary Parquet file the caller deletes once sent."""

    filename: str
    csv_chunks: Iterator[bytes] | None = None
    parquet_path: str | None = None


def _utc(dt: datetime | None) -> datetime | None:
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _time_range(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Naive times are UTC; an empty range is a client error."""
    start, end = _utc(start), _utc(end)
    if start and end and start > end:
        raise Invalid("start must be before end")
    return start, end


async def _lake_read(ctx: ServiceContext, tenant_id: str, device_id: str, query: Callable[..., T], *args: Any) -> T:
    """Parquet plus the lake writer's unflushed rows: reads see every acknowledged message."""
    await device_store.get(ctx.db, tenant_id, device_id)
    extra = await ctx.runtime.pending_telemetry(tenant_id, device_id)
    return await asyncio.to_thread(query, tenant_id, device_id, *args, extra=extra)


async def latest(ctx: ServiceContext, tenant_id: str, device_id: str) -> dict[str, dict[str, Any]]:
    """metric -> {"value", "ts_ms"}, as the device actor last saw it."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return await ctx.runtime.device_call(tenant_id, device_id, "latest_view")


async def latest_many(ctx: ServiceContext, tenant_id: str, device_ids: list[str] | None, limit: int,
                      offset: int) -> tuple[dict[str, dict[str, dict[str, Any]]], int]:
    """The latest values of a page of the tenant's devices (by device id; narrowed to `device_ids`,
    ids the tenant does not have left out), with one call per device shard rather than per device.
    Returns (device id -> metric -> {"value", "ts_ms"}, in page order; the devices in all pages)."""
    rows, total = await device_store.list_devices(ctx.db, tenant_id, device_ids=device_ids, limit=limit,
                                                  offset=offset)
    ids = [r["device_id"] for r in rows]
    values = await ctx.runtime.device_call_many(tenant_id, ids, "latest_values")  # shaped here, not in the shard
    return {d: view_of_latest(unpack(values[d])) for d in ids if d in values}, total  # one deleted meanwhile is left out


async def metric_names(ctx: ServiceContext, tenant_id: str, device_id: str) -> list[str]:
    """The device's sensors (declared, or discovered at ingest on a metric's first sight), by key:
    one indexed read, never a scan of the lake."""
    await device_store.get(ctx.db, tenant_id, device_id)
    return sorted(await sensor_store.sensor_metadata(ctx.db, tenant_id, device_id))


async def recent(ctx: ServiceContext, tenant_id: str, device_id: str, limit: int) -> list[dict[str, Any]]:
    return await _lake_read(ctx, tenant_id, device_id, ctx.lake.recent, limit)


async def history(ctx: ServiceContext, tenant_id: str, device_id: str, metric: str | None, start: datetime | None,
                  end: datetime | None, limit: int) -> History:
    """Rows in [start, end), the first `limit`; without a start, the newest `limit` of the 24 hours
    before `end` (or now), so a plain request shows what the device sent lately."""
    start, end = _time_range(start, end)
    newest = start is None
    if newest:
        start = (end or datetime.now(timezone.utc)) - DEFAULT_RANGE
    rows = await _lake_read(ctx, tenant_id, device_id, partial(ctx.lake.history, newest=newest), metric, start, end,
                            limit)
    sensors = await sensor_store.sensor_metadata(ctx.db, tenant_id, device_id)
    for row in rows:
        row["out_of_range"] = out_of_range(row["value"], sensors.get(row["metric"]))
    shown = {r["metric"] for r in rows} | ({metric} if metric else set())
    return History(start, end, rows, {m: sensors[m] for m in sorted(shown) if m in sensors})


async def history_buckets(ctx: ServiceContext, tenant_id: str, device_id: str, metric: str | None,
                          time_range: str, bucket_size: str | None, start: datetime | None,
                          end: datetime | None) -> Buckets:
    """The metric over the last `time_range` (a preset: it replaces start and end), aggregated per
    bucket by the analytics pipeline; rows not yet flushed count too."""
    if metric is None:
        raise Invalid("metric is required with range or bucket_size")
    if start is not None or end is not None:
        raise Invalid("give either range (and bucket_size) or start/end, not both")
    bucket = bucket_for(time_range, bucket_size)
    end = datetime.now(timezone.utc)
    start = end - TIME_RANGES[time_range]
    rows = await _lake_read(ctx, tenant_id, device_id, _device_rollup, str(ctx.lake.lake_dir), metric, start, end,
                            bucket)
    points = [{"time": at, **dict(zip(BUCKET_AGGREGATIONS, values))} for _, at, values in rows]
    sensor = {"precision_digits": DEFAULT_PRECISION, "unit": None, "min_range": None, "max_range": None}
    declared = (await sensor_store.sensor_metadata(ctx.db, tenant_id, device_id)).get(metric) or {}
    sensor.update({k: v for k, v in declared.items() if v is not None})
    return Buckets(start, end, bucket, points, sensor)


def _device_rollup(tenant_id: str, device_id: str, lake_dir: str, metric: str, start: datetime, end: datetime,
                   bucket: timedelta, extra: Any = None) -> list[analytics.Bucket]:
    return analytics.rollup(lake_dir, tenant_id, metric, {device_id: device_id}, start, end, bucket,
                            BUCKET_AGGREGATIONS, extra)


async def export(ctx: ServiceContext, tenant_id: str, device_id: str, format: Literal["csv", "parquet"],
                 metric: str | None, start: datetime | None, end: datetime | None) -> Export:
    """Every row in [start, end), batch by batch: memory stays flat whatever the range."""
    start, end = _time_range(start, end)
    reader = await _lake_read(ctx, tenant_id, device_id, ctx.lake.export, metric, start, end)
    filename = f"{device_id}-telemetry.{format}"
    if format == "csv":
        return Export(filename, csv_chunks=exports.csv_chunks(reader))
    return Export(filename, parquet_path=await asyncio.to_thread(exports.parquet_file, reader))
