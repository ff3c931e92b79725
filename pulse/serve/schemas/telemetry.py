"""HTTP answers of device telemetry and the twin, and how a desired-state body is read.

`PATCH …/twin/desired` takes two bodies (docs/device-protocol.md, "Twin"):
- Pulse's JSON merge patch (RFC 7386) of the desired document;
- the documented system's `{"desired": {...}}`, which replaces the whole desired document.
They are told apart thus: a body sent as `application/merge-patch+json` is always a merge patch;
otherwise a body whose only key is `desired`, holding an object, is the wrapped replacement.
(To merge-patch a desired key literally named `desired`, send `application/merge-patch+json`.)
Either must name the version it changes in `If-Match` (the ETag of `GET …/twin`), as documented.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from pulse.errors import PulseError
from pulse.serve.schemas.common import Page

MERGE_PATCH = "application/merge-patch+json"


def desired_change(body: dict[str, Any], content_type: str | None) -> tuple[dict[str, Any], bool]:
    """(document or patch, replace?) for a `PATCH …/twin/desired` body."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != MERGE_PATCH and body.keys() == {"desired"} and isinstance(body["desired"], dict):
        return body["desired"], True
    return body, False


def latest_rows(values: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The documented `telemetry[]` of the latest values: one {metric, value, ts} per metric."""
    return [{"metric": m, "value": v["value"], "ts": iso_ms(v["ts_ms"])} for m, v in values.items()]


def iso_ms(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def if_match_version(header: str | None) -> int | Literal["*"] | None:
    """The desired_version an `If-Match` names: `"3"`, `W/"3"` or `3`; `*` for any; None when absent."""
    if header is None:
        return None
    tag = header.strip()
    if tag == "*":
        return "*"
    tag = tag.removeprefix("W/").strip('"')
    if not tag.isascii() or not tag.isdigit() or len(tag) > 18:
        raise PulseError(f'If-Match must be the ETag of GET …/twin, a quoted desired_version such as "3" '
                         f"(or *), not {header[:40]!r}")
    return int(tag)


class LatestValue(BaseModel):
    value: float | bool | int | str | None
    ts: str | None = Field(description="ISO-8601, UTC")


class LatestRow(LatestValue):
    metric: str


class Latest(BaseModel):
    tenant_id: str
    device_id: str
    metrics: dict[str, LatestValue] = Field(description="metric -> its last value, as the device actor saw it")
    telemetry: list[LatestRow] = Field(description="the documented list form of the same values")
    count: int


class DeviceLatest(BaseModel):
    device_id: str
    metrics: dict[str, LatestValue] = Field(description="metric -> its last value, as the device actor saw it")


class FleetLatest(Page):
    tenant_id: str
    devices: list[DeviceLatest] = Field(description="by device_id; ids the tenant does not have are left out")


def latest_metrics(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """metric -> {value, ts} of a device actor's latest values."""
    return {m: {"value": v["value"], "ts": iso_ms(v["ts_ms"])} for m, v in values.items()}


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


class StructuredDelta(BaseModel):
    added: dict[str, Any] = Field(description="desired keys the device does not report, with their desired value")
    removed: dict[str, Any] = Field(description="reported keys no longer desired, with their reported value")
    changed: dict[str, Any] = Field(description="key -> {desired, reported} where both are set and differ")
    unchanged_count: int


class Twin(BaseModel):
    device_id: str
    desired: dict[str, Any]
    desired_version: int
    desired_updated_at: str | None
    reported: dict[str, Any]
    reported_version: int
    reported_updated_at: str | None
    delta: dict[str, Any] = Field(description="desired keys whose reported value differs")
    structured_delta: StructuredDelta
    sync_status: Literal["synced", "pending", "stale"] = Field(
        description="stale: device not heard for 30 min; synced: it reports every desired value; else pending")
    shadow_updated_at: str | None = Field(description="the last change of either document")


class TwinDelta(StructuredDelta):
    device_id: str
    delta: dict[str, Any]
    in_sync: bool = Field(description="true when the delta is empty")
    desired_version: int
    reported_version: int
