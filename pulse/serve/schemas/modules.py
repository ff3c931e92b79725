"""HTTP bodies and answers of device modules (unknown body fields are ignored, as in the documented system)."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from pulse.domain.envelope import METRIC_KEY_RE
from pulse.serve.params import DbId
from pulse.serve.schemas.common import DevicePart, Page, Update
from pulse.serve.schemas.templates import SLOT_KEY

ModuleStatus = Literal["active", "inactive"]  # "removed" only through DELETE


class ModuleFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bus_address: str | None = Field(None, max_length=64, examples=["0x44"])
    module_template_id: DbId | None = None
    label: str | None = Field(None, max_length=200)
    serial_number: str | None = Field(None, max_length=200)
    metric_key_map: dict[str, str] | None = Field(
        None, max_length=200, description="raw firmware key -> semantic metric key", examples=[{"t1": "temperature"}])

    @field_validator("metric_key_map")
    @classmethod
    def _keys(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for raw, key in (v or {}).items():
            for k in (raw, key):
                if not METRIC_KEY_RE.match(k):
                    raise ValueError(f"invalid metric key {k[:40]!r}")
        return v


class ModuleCreate(ModuleFields):
    slot_key: str = Field(pattern=SLOT_KEY)
    status: ModuleStatus = "active"


class ModuleUpdate(ModuleFields, Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("slot_key", "status", "metric_key_map")

    slot_key: str | None = Field(None, pattern=SLOT_KEY)
    status: ModuleStatus | None = None


class ModuleOut(DevicePart):
    slot_key: str
    module_template_id: int | None = None
    label: str | None = None
    metric_key_map: dict[str, str]
    status: str
    created_at: datetime

    @computed_field(description="when the module was installed (the documented name of created_at)")
    @property
    def installed_at(self) -> datetime:
        return self.created_at


class ModulePage(Page):
    device_id: str
    modules: list[ModuleOut]
