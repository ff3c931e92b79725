"""HTTP bodies and answers of device sensors (unknown body fields are ignored, as in the documented system)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pulse.serve.params import DbId
from pulse.serve.schemas.common import DevicePart, Page, Update
from pulse.serve.schemas.templates import METRIC_KEY

SensorStatus = Literal["active", "inactive", "error"]
SensorSource = Literal["required", "optional", "unmodeled"]


class SensorFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display_name: str | None = Field(None, max_length=200)
    template_metric_id: DbId | None = Field(None, description="a metric of the device's template")
    device_module_id: DbId | None = Field(None, description="a module of the same device")
    unit: str | None = Field(None, max_length=32)
    min_range: float | None = None
    max_range: float | None = None
    precision_digits: int | None = Field(None, ge=0, le=12)


class SensorCreate(SensorFields):
    """source is `optional`, or `required` when the linked template metric is required."""

    metric_key: str = Field(pattern=METRIC_KEY)
    status: SensorStatus = "active"


class SensorUpdate(SensorFields, Update):
    model_config = ConfigDict(extra="ignore")
    """metric_key is the sensor's identity and does not change; `required` is set by the template only."""

    NOT_NULL = ("status", "source")

    status: SensorStatus | None = None
    source: Literal["optional", "unmodeled"] | None = None


class SensorOut(DevicePart):
    metric_key: str
    display_name: str | None = None
    unit: str | None = None
    status: str
    source: str
    last_value: float | None = None
    last_seen_at: datetime | None = None


class SensorPage(Page):
    sensors: list[SensorOut]


class DeviceSensorPage(SensorPage):
    device_id: str
