"""HTTP bodies and answers of analytics (api-contracts §5; the query language in docs/analytics.md)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pulse.domain.analytics import Aggregation, GroupBy, TimeRange
from pulse.serve.params import StrId

MAX_DEVICE_IDS = 500  # an explicit device filter; larger sets are what groups are for


class MetricList(BaseModel):
    metrics: list[str] = Field(description="metric keys seen in the tenant's telemetry over the last 7 days, sorted")


class AnalyticsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    metric: str = Field(min_length=1, max_length=100)
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "24h"
    group_by: GroupBy | None = None
    device_ids: list[StrId] = Field(default_factory=list, max_length=MAX_DEVICE_IDS)
    group_id: StrId | None = None
    bucket_size: str | None = Field(None, max_length=40, examples=["5 minutes", "1 hour", "30s"],
                                    description="default per range: 1h→1 min, 6h→5 min, 24h→15 min, 7d→1 h, 30d→6 h")


class Point(BaseModel):
    time: datetime
    value: float | None


class Series(BaseModel):
    label: str = Field(description="device id (group_by device or group), site id or 'unknown' (site), 'all' (none)")
    points: list[Point]


class Summary(BaseModel):
    min: float | None
    max: float | None
    avg: float | None
    total_points: int


class AnalyticsResult(BaseModel):
    series: list[Series]
    summary: Summary = Field(description="over every non-null point value, rounded to 4 decimals")
