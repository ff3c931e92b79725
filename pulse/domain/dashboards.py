"""Dashboards and their widgets (docs/dashboards.md): the widget types, the config each one takes,
where a widget sits on the 12-column grid, and the dashboards a new user starts with.

Pure, so the API validates against it and the console renders from the same vocabulary. A widget's
config is checked against its type's model and stored normalized (every default filled in), so a
renderer never has to guess a default. Time ranges and aggregations are the analytics query
language's (pulse/domain/analytics.py): a chart widget asks exactly what an analytics query can.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from pulse.domain.analytics import Aggregation, GroupBy, TimeRange, bucket_for
from pulse.domain.envelope import METRIC_KEY_RE
from pulse.errors import BadRequest, Invalid

GRID_COLUMNS = 12
MAX_GRID_ROW = 1000  # y: far below anything a screen shows, and it keeps stored numbers small
MAX_WIDGET_HEIGHT = 24
MAX_WIDGETS = 30  # per dashboard, as documented
MAX_PERSONAL_DASHBOARDS = 20  # per user, as documented
MAX_SELECTED_DEVICES = 500  # the analytics API's bound on an explicit device list
METRIC_PATTERN = METRIC_KEY_RE.pattern  # a metric key as devices may send it (envelope v1)
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"  # the API's id pattern (pulse/serve/params.py)

MetricKey = Annotated[str, StringConstraints(pattern=METRIC_PATTERN)]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]


class _Config(BaseModel):
    # unknown keys are refused: a typo ("metirc") would otherwise be stored and silently ignored
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSelection(_Config):
    """Which devices a widget is about: listed ones, a (static or dynamic) group's members, or — with
    neither — the whole fleet of the tenant."""

    device_ids: list[DeviceId] = Field(default_factory=list, max_length=MAX_SELECTED_DEVICES)
    group_id: DeviceId | None = None

    @model_validator(mode="after")
    def _one_selection(self) -> "DeviceSelection":
        if self.device_ids and self.group_id is not None:
            raise ValueError("device_ids, group_id: give one of them (or neither: the whole fleet)")
        return self


class FleetStatusConfig(DeviceSelection):
    """fleet_status, fleet_overview, device_count, health_score: counts over the selected devices."""


class KpiConfig(DeviceSelection):
    """kpi_tile, stat_card: one number — a fleet KPI, or a metric aggregated over a time range."""

    kpi: Literal["metric", "open_alerts", "online_devices", "offline_devices", "total_devices",
                 "online_percent"] = "metric"
    metric: MetricKey | None = None
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "24h"
    unit: str = Field("", max_length=20)

    @model_validator(mode="after")
    def _metric_when_needed(self) -> "KpiConfig":
        if self.kpi == "metric" and self.metric is None:
            raise ValueError("metric: required when kpi is 'metric'")
        return self


class GaugeConfig(DeviceSelection):
    """gauge: a metric aggregated over a time range, drawn between min and max."""

    metric: MetricKey
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "1h"
    min: float = 0.0
    max: float = 100.0
    unit: str = Field("", max_length=20)

    @model_validator(mode="after")
    def _range(self) -> "GaugeConfig":
        if not self.min < self.max:
            raise ValueError("min must be less than max")
        return self


class TimeSeriesConfig(DeviceSelection):
    """line_chart, area_chart, bar_chart: one metric over time, as the analytics API aggregates it
    (one series per device with group_by "device", else one for the selection)."""

    metric: MetricKey
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "24h"
    bucket_size: str | None = Field(None, max_length=40, description="default per range, as in analytics")
    group_by: GroupBy | None = None

    @model_validator(mode="after")
    def _bucket(self) -> "TimeSeriesConfig":
        try:
            bucket_for(self.time_range, self.bucket_size)
        except Invalid as e:  # unreadable, or too many points over the range
            raise ValueError(e.detail) from None
        return self


class BreakdownConfig(DeviceSelection):
    """pie_chart, radar: one aggregate of a metric per device, site or group."""

    metric: MetricKey
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "24h"
    group_by: GroupBy = "device"


class ScatterConfig(DeviceSelection):
    """scatter: one point per device, x and y two metrics aggregated over the same range."""

    x_metric: MetricKey
    y_metric: MetricKey
    aggregation: Aggregation = "avg"
    time_range: TimeRange = "24h"


class AlertFeedConfig(DeviceSelection):
    """alert_feed: the newest alerts of the selected devices."""

    status: Literal["OPEN", "ACKNOWLEDGED", "CLOSED", "ALL"] = "OPEN"
    limit: int = Field(20, ge=1, le=100)


class DeviceTableConfig(DeviceSelection):
    """table: the selected devices with their status and the latest value of each listed metric."""

    metrics: list[MetricKey] = Field(default_factory=list, max_length=20)
    limit: int = Field(50, ge=1, le=500)


# The documented system's WIDGET_TYPES, each with the config it takes.
WIDGET_CONFIGS: dict[str, type[_Config]] = {
    "kpi_tile": KpiConfig, "stat_card": KpiConfig, "gauge": GaugeConfig,
    "line_chart": TimeSeriesConfig, "area_chart": TimeSeriesConfig, "bar_chart": TimeSeriesConfig,
    "pie_chart": BreakdownConfig, "radar": BreakdownConfig, "scatter": ScatterConfig,
    "table": DeviceTableConfig, "alert_feed": AlertFeedConfig,
    "fleet_status": FleetStatusConfig, "fleet_overview": FleetStatusConfig, "device_count": FleetStatusConfig,
    "health_score": FleetStatusConfig,
}
WIDGET_TYPES: tuple[str, ...] = tuple(WIDGET_CONFIGS)


def check_widget_type(widget_type: str) -> str:
    if widget_type not in WIDGET_CONFIGS:
        raise BadRequest(f"Invalid widget_type. Must be one of: {', '.join(WIDGET_TYPES)}")
    return widget_type


def widget_config(widget_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config normalized for its type (defaults filled in); Invalid (422) naming the first bad key."""
    model = WIDGET_CONFIGS[check_widget_type(widget_type)]
    try:
        return model.model_validate(config).model_dump(mode="json")
    except ValidationError as e:
        raise Invalid.first_of(e.errors(), "config") from None


class GridPosition(BaseModel):
    """Where a widget sits: column x (0-11) and width w in columns, row y and height h in rows."""

    model_config = ConfigDict(extra="ignore")

    x: int = Field(0, ge=0, lt=GRID_COLUMNS)
    y: int = Field(0, ge=0, le=MAX_GRID_ROW)
    w: int = Field(2, ge=1, le=GRID_COLUMNS)
    h: int = Field(2, ge=1, le=MAX_WIDGET_HEIGHT)

    @model_validator(mode="after")
    def _inside_grid(self) -> "GridPosition":
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(f"x + w must be at most {GRID_COLUMNS} (the grid's columns), not {self.x + self.w}")
        return self


class LayoutItem(GridPosition):
    widget_id: int = Field(ge=1, le=2**31 - 1)
    x: int = Field(ge=0, lt=GRID_COLUMNS)
    y: int = Field(ge=0, le=MAX_GRID_ROW)
    w: int = Field(ge=1, le=GRID_COLUMNS)
    h: int = Field(ge=1, le=MAX_WIDGET_HEIGHT)


def check_layout(layout: list[LayoutItem], widget_ids: set[int]) -> None:
    """Each widget at most once, and only widgets of this dashboard (BadRequest otherwise)."""
    seen: set[int] = set()
    for item in layout:
        if item.widget_id in seen:
            raise BadRequest(f"Widget {item.widget_id} appears twice in the layout")
        seen.add(item.widget_id)
    unknown = sorted(seen - widget_ids)
    if unknown:
        raise BadRequest(f"Unknown widget ids for this dashboard: {', '.join(map(str, unknown))}")


# ---- the dashboard a user starts with -------------------------------------------------------------------
BOOTSTRAP_NAME = "Fleet Overview"
BOOTSTRAP_DESCRIPTION = "Fleet status, alerts and devices at a glance"


def bootstrap_widgets() -> list[dict[str, Any]]:
    """The documented default's 7 widgets, laid out on the 12-column grid, configs normalized."""
    specs = [
        ("fleet_status", "Fleet status", {}, (0, 0, 4, 3)),
        ("device_count", "Devices", {}, (4, 0, 2, 3)),
        ("kpi_tile", "Open alerts", {"kpi": "open_alerts"}, (6, 0, 3, 3)),
        ("kpi_tile", "Online", {"kpi": "online_percent", "unit": "%"}, (9, 0, 3, 3)),
        ("alert_feed", "Open alerts", {"status": "OPEN", "limit": 20}, (0, 3, 6, 5)),
        ("table", "Devices", {"limit": 50}, (6, 3, 6, 5)),
        ("health_score", "Fleet health", {}, (0, 8, 4, 3)),
    ]
    return [{"widget_type": kind, "title": title, "config": widget_config(kind, config),
             "position": GridPosition(x=x, y=y, w=w, h=h).model_dump()}
            for kind, title, config, (x, y, w, h) in specs]
