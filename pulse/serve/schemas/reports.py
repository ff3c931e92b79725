"""HTTP answers of the reports area: report runs, the SLA summary and the quick exports' JSON form."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pulse.serve.schemas.common import Page


class ReportRun(BaseModel):
    run_id: int
    report_type: str = Field(description="sla_summary | device_export | alert_export")
    status: str = Field(description="RUNNING | COMPLETED | FAILED")
    triggered_by: str = Field(description="`user:<sub>` or `scheduler`")
    row_count: int | None = Field(None, description="alerts in the period (SLA) or rows exported")
    parameters: dict[str, Any] = Field(description="an export's filters; an SLA run's whole report")
    created_at: datetime
    completed_at: datetime | None = None


class ReportRunsPage(Page):
    runs: list[ReportRun]


class AlertingDevice(BaseModel):
    device_id: str
    count: int


class SlaSummary(BaseModel):
    """Every figure is defined in docs/reports.md."""

    period_days: int
    period_start: datetime
    period_end: datetime
    total_devices: int = Field(description="ACTIVE devices now")
    online_devices: int = Field(description="ACTIVE devices ONLINE now")
    online_pct: float
    availability_pct: float | None = Field(description="share of device-time ONLINE in the period; null: none measured")
    total_alerts: int = Field(description="alerts opened in the period")
    unresolved_alerts: int = Field(description="of those, still OPEN or ACKNOWLEDGED")
    mtta_minutes: float | None = Field(description="mean open -> acknowledged of those acknowledged")
    mttr_minutes: float | None = Field(description="mean open -> closed of those closed")
    top_alerting_devices: list[AlertingDevice]


class ExportedDevice(BaseModel):
    device_id: str
    name: str | None
    model: str | None
    status: str = Field(description="ONLINE | STALE | OFFLINE for an ACTIVE device, else its registry status")
    site_id: str | None
    last_seen_at: datetime | None
    tags: list[str]


class DeviceExport(BaseModel):
    devices: list[ExportedDevice]
    count: int


class ExportedAlert(BaseModel):
    alert_id: int
    device_id: str
    alert_type: str
    severity: int
    status: str
    created_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    summary: str


class AlertExport(BaseModel):
    alerts: list[ExportedAlert]
    count: int
