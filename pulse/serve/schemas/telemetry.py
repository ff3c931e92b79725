"""HTTP answers of device telemetry and the twin, and how a desired-state body is read.

`PATCH …/twin/desired` takes two bodies (docs/device-protocol.md, "Twin"):
- Pulse's JSON merge patch (RFC 7386) of the desired document;
- the documented system's `{"desired": {...}}`, which replaces the whole desired document.
They are told apart thus: a body sent as `application/merge-patch+json` is always a merge patch;
otherwise a body whose only key is `desired`, holding an object, is the wrapped replacement.
(To merge-patch a desired key literally named `desired`, send `application/merge-patch+json`.)
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

MERGE_PATCH = "application/merge-patch+json"


def desired_change(body: dict[str, Any], content_type: str | None) -> tuple[dict[str, Any], bool]:
    """(document or patch, replace?) for a `PATCH …/twin/desired` body."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != MERGE_PATCH and body.keys() == {"desired"} and isinstance(body["desired"], dict):
        return body["desired"], True
    return body, False


class LatestValue(BaseModel):
    value: float | bool | int | str | None
    ts: str | None = Field(description="ISO-8601, UTC")


class Latest(BaseModel):
    tenant_id: str
    device_id: str
    metrics: dict[str, LatestValue] = Field(description="metric -> its last value, as the device actor saw it")


class MetricNames(BaseModel):
    device_id: str
    metrics: list[str]
    total: int


class Recent(BaseModel):
    tenant_id: str
    device_id: str
    rows: list[dict[str, Any]] = Field(description="long format: ts, metric, value, seq; newest first")
    count: int


class History(BaseModel):
    """Raw rows by default; with `range` (or `bucket_size`) one point per bucket, and the keys of the
    documented system's bucketed answer (range … precision_digits)."""

    device_id: str
    metric: str | None
    start: datetime | None
    end: datetime | None
    points: list[dict[str, Any]] = Field(description="raw: ts, metric, value, seq, out_of_range; "
                                                     "bucketed: time, avg, min, max, count")
    count: int
    sensors: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="metadata of the sensors the points belong to")
    range: str | None = None
    bucket_size: str | None = Field(None, description="bucketed only, e.g. '15 minutes'")
    unit: str | None = None
    min_range: float | None = None
    max_range: float | None = None
    precision_digits: int | None = None


class Twin(BaseModel):
    device_id: str
    desired: dict[str, Any]
    desired_version: int
    desired_updated_at: str | None
    reported: dict[str, Any]
    reported_version: int
    reported_updated_at: str | None
    delta: dict[str, Any] = Field(description="desired keys whose reported value differs")


class TwinDelta(BaseModel):
    device_id: str
    delta: dict[str, Any]
    in_sync: bool = Field(description="true when the delta is empty")
    desired_version: int
    reported_version: int
