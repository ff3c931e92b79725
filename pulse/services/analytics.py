"""Analytics use cases: which metrics a tenant has, and one metric aggregated over its devices.

The store decides which devices a query covers (the tenant's own, narrowed by ids or a group)
and which series each belongs to; the lake pipeline aggregates their rows per bucket. A query
reads the Parquet files and the rows the lake writer acknowledged but has not flushed yet, so a
message counts as soon as it is acknowledged (the metric list reads flushed files only).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterator

from pulse.domain.analytics import TIME_RANGES, bucket_for
from pulse.pipelines import analytics as lake
from pulse.services.context import ServiceContext
from pulse.storage import devices as device_store

METRICS_WINDOW = timedelta(days=7)


@dataclass
class Query:
    metric: str
    aggregation: str = "avg"
    time_range: str = "24h"
    group_by: str | None = None
    device_ids: list[str] = field(default_factory=list)
    group_id: str | None = None
    bucket_size: str | None = None


@dataclass
class Series:
    label: str
    points: list[tuple[datetime, float | None]]


@dataclass
class Result:
    series: list[Series]
    summary: dict[str, float | int | None]


async def metrics(ctx: ServiceContext, tenant_id: str) -> list[str]:
    """Distinct metric keys in the tenant's telemetry over the last 7 days, sorted."""
    end = datetime.now(timezone.utc)
    return await asyncio.to_thread(lake.metric_names, str(ctx.lake.lake_dir), tenant_id, end - METRICS_WINDOW, end)


async def query(ctx: ServiceContext, tenant_id: str, q: Query) -> Result:
    """One series per label (device, site or "all"), each point one bucket's aggregate."""
    bucket = bucket_for(q.time_range, q.bucket_size)  # Invalid before any read
    labels = _labels(await device_store.sites(ctx.db, tenant_id, q.device_ids, q.group_id), q.group_by)
    end = datetime.now(timezone.utc)
    extra = await ctx.runtime.pending_telemetry(tenant_id)  # before the files are listed: see LakeReader
    rows = await asyncio.to_thread(lake.rollup, str(ctx.lake.lake_dir), tenant_id, q.metric, labels,
                                   end - TIME_RANGES[q.time_range], end, bucket, (q.aggregation,), extra=extra)
    series: dict[str, Series] = {}
    for label, at, (value,) in rows:
        series.setdefault(label, Series(label, [])).points.append((at, value))
    return Result(list(series.values()), _summary(list(series.values())))


async def export_csv(ctx: ServiceContext, tenant_id: str, q: Query) -> Iterator[bytes]:
    """The query's points as `label,time,value` CSV."""
    result = await query(ctx, tenant_id, q)
    return lake.csv_lines((s.label, at.isoformat(), value) for s in result.series for at, value in s.points)


def _labels(sites: dict[str, str | None], group_by: str | None) -> dict[str, str]:
    """device -> series label: the device itself (by device, or by group: the group's devices one
    by one, as the documented system answers), its site or "unknown", or one series "all"."""
    if group_by in ("device", "group"):
        return {d: d for d in sites}
    if group_by == "site":
        return {d: site or "unknown" for d, site in sites.items()}
    return dict.fromkeys(sites, "all")


def _summary(series: list[Series]) -> dict[str, float | int | None]:
    """min, max and avg of every non-null point value (4 decimals), and the number of points."""
    values = [v for s in series for _, v in s.points if v is not None]
    total = sum(len(s.points) for s in series)
    if not values:
        return {"min": None, "max": None, "avg": None, "total_points": total}
    return {"min": round(min(values), 4), "max": round(max(values), 4),
            "avg": round(sum(values) / len(values), 4), "total_points": total}
