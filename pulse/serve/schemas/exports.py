"""HTTP bodies and answers of export jobs (reference §4; `parquet`, `rows_done`, `rows_total` are Pulse extras).

A `time_range` outside the documented ones is a 400, as in the documented system (checked by the
service); other malformed fields are 422s naming the field.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from pulse.domain.envelope import METRIC_KEY_RE
from pulse.domain.urls import MAX_URL_LENGTH, http_url
from pulse.serve.params import ID_PATTERN
from pulse.serve.schemas.common import Page

MAX_FILTER_ITEMS = 1000
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Metric = Annotated[str, StringConstraints(pattern=METRIC_KEY_RE.pattern)]
AlertType = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ExportFilters(BaseModel):
    time_range: str | None = Field(None, max_length=16, examples=["24h"],
                                   description="1h, 6h, 24h, 7d, 30d or 90d (telemetry default 24h; devices ignore it)")
    device_ids: list[Id] | None = Field(None, max_length=MAX_FILTER_ITEMS)
    site_ids: list[Id] | None = Field(None, max_length=MAX_FILTER_ITEMS)
    status: str | None = Field(None, max_length=32, description="device status (ACTIVE, ...) or alert status (OPEN, ...)")
    alert_types: list[AlertType] | None = Field(None, max_length=100)
    metric_names: list[Metric] | None = Field(None, max_length=MAX_FILTER_ITEMS)


class ExportCreate(BaseModel):
    export_type: Literal["devices", "alerts", "telemetry"]
    format: Literal["csv", "json", "parquet"] = "csv"
    filters: ExportFilters = Field(default_factory=ExportFilters)
    callback_url: Annotated[str, Field(max_length=MAX_URL_LENGTH), AfterValidator(http_url)] | None = Field(
        None, description="POSTed {export_id, status, download_url, row_count} when the job ends")


class ExportCreated(BaseModel):
    export_id: str
    status: str
    estimated_rows: int
    message: str


class ExportJob(BaseModel):
    export_id: str
    tenant_id: str
    export_type: str
    format: str
    filters: dict[str, Any]
    status: Literal["PENDING", "PROCESSING", "COMPLETED", "FAILED"]
    file_size_bytes: int | None
    row_count: int | None
    error: str | None
    download_url: str | None = Field(description="set once COMPLETED, until the file expires")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime
    rows_done: int = Field(description="progress: rows written so far")
    rows_total: int | None = Field(description="progress: rows the job found when it started")


class ExportPage(Page):
    exports: list[ExportJob]
