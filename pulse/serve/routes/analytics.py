"""Analytics: metric names, time-bucketed aggregation of one metric, and its CSV export (HTTP only)."""
from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from pulse.domain.analytics import GROUP_BYS, Aggregation, TimeRange
from pulse.errors import Invalid
from pulse.serve.auth import Principal, customer
from pulse.serve.deps import services
from pulse.serve.params import ID_PATTERN, StrId
from pulse.serve.schemas.analytics import MAX_DEVICE_IDS, AnalyticsQuery, AnalyticsResult, MetricList
from pulse.services import analytics as service
from pulse.services.context import ServiceContext

router = APIRouter(prefix="/api/v1/customer/analytics", tags=["analytics"])
READ = customer("analytics.read")
_ID = re.compile(ID_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")  # a metric key may hold anything; a header may not


@router.get("/metrics", response_model=MetricList)
async def metrics(p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    return {"metrics": await service.metrics(svc, p.tenant_id)}


@router.post("/query", response_model=AnalyticsResult)
async def query(body: AnalyticsQuery, p: Principal = Depends(READ),
                svc: ServiceContext = Depends(services)) -> dict[str, Any]:
    result = await service.query(svc, p.tenant_id, service.Query(**body.model_dump()))
    return {"series": [{"label": s.label, "points": [{"time": t, "value": v} for t, v in s.points]}
                       for s in result.series],
            "summary": result.summary}


@router.get("/export", response_model=None, response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}, "description": "label,time,value rows"}})
async def export(metric: str = Query(..., min_length=1, max_length=100), aggregation: Aggregation = "avg",
                 time_range: TimeRange = "24h", group_by: str | None = Query(None, max_length=40),
                 device_ids: str | None = Query(None, description="comma-separated"), group_id: StrId | None = None,
                 p: Principal = Depends(READ), svc: ServiceContext = Depends(services)) -> StreamingResponse:
    """The query's points as CSV; an unknown `group_by` is ignored, as in the documented system."""
    ids = [d.strip() for d in (device_ids or "").split(",") if d.strip()]
    if len(ids) > MAX_DEVICE_IDS:
        raise Invalid(f"device_ids: at most {MAX_DEVICE_IDS}")
    if not all(_ID.match(d) for d in ids):
        raise Invalid("device_ids: each must be a device id (letters, digits, _ . : -)")
    q = service.Query(metric, aggregation, time_range, group_by if group_by in GROUP_BYS else None, ids, group_id)
    chunks = await service.export_csv(svc, p.tenant_id, q)
    filename = f"analytics_{_UNSAFE.sub('_', metric)}_{aggregation}_{time_range}.csv"
    return StreamingResponse(chunks, media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})
