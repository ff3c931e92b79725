"""HTTP bodies and answers of device templates and their metrics, commands and slots.

Unknown body fields are ignored, as in the documented system (its `sort_order` and a metric's or
slot's `description` are not stored by Pulse).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pulse.serve.params import DbId
from pulse.serve.schemas.common import Page, Row, Stamped, Update
from pulse.domain.envelope import METRIC_KEY_RE

Category = Literal["gateway", "edge_device", "standalone_sensor", "controller", "expansion_module"]
DataType = Literal["float", "integer", "boolean", "string", "enum"]
SlotType = Literal["expansion", "sensor", "accessory"]
InterfaceType = Literal["analog", "rs485", "i2c", "spi", "1-wire", "fsk", "ble", "lora", "gpio", "usb"]
IngestionProtocol = Literal["mqtt_direct", "http_api", "lorawan", "gateway_proxy", "modbus_rtu"]
PhysicalConnectivity = Literal["cellular", "ethernet", "wifi", "satellite", "lora", "other"]
METRIC_KEY = METRIC_KEY_RE.pattern  # what ingest accepts as a metric name
COMMAND_KEY = r"^[A-Za-z0-9_.:-]{1,128}$"  # what the commands API accepts as a command type
SLOT_KEY = r"^[A-Za-z0-9_.:-]{1,64}$"
SLUG = r"^[a-z0-9][a-z0-9_-]{0,99}$"


# ---- metrics, commands, slots --------------------------------------------------------------------
class MetricFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display_name: str | None = Field(None, max_length=200)
    unit: str | None = Field(None, max_length=32, examples=["°C"])
    min_value: float | None = None
    max_value: float | None = None
    precision_digits: int | None = Field(None, ge=0, le=12)
    enum_values: list[str] | None = Field(None, max_length=200)


class MetricCreate(MetricFields):
    metric_key: str = Field(pattern=METRIC_KEY)
    data_type: DataType = "float"
    is_required: bool = False


class MetricUpdate(MetricFields, Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("metric_key", "data_type", "is_required")

    metric_key: str | None = Field(None, pattern=METRIC_KEY)
    data_type: DataType | None = None
    is_required: bool | None = None


class CommandFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display_name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    response_schema: dict[str, Any] | None = None


class CommandCreate(CommandFields):
    command_key: str = Field(pattern=COMMAND_KEY)
    parameters_schema: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON-Schema subset: type, properties, required, enum, minimum, maximum, "
                    "additionalProperties (bool), items",
        examples=[{"type": "object", "properties": {"interval_s": {"type": "integer", "minimum": 10}},
                   "required": ["interval_s"], "additionalProperties": False}])


class CommandUpdate(CommandFields, Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("command_key", "parameters_schema")

    command_key: str | None = Field(None, pattern=COMMAND_KEY)
    parameters_schema: dict[str, Any] | None = None


class SlotFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display_name: str | None = Field(None, max_length=200)
    max_devices: int | None = Field(1, ge=1, le=1000, description="null: any number (a bus)")
    compatible_templates: list[DbId] | None = Field(None, max_length=200, description="template ids; null: any")


class SlotCreate(SlotFields):
    slot_key: str = Field(pattern=SLOT_KEY)
    slot_type: SlotType
    interface_type: InterfaceType
    is_required: bool = False


class SlotUpdate(SlotFields, Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("slot_key", "slot_type", "interface_type", "is_required")

    slot_key: str | None = Field(None, pattern=SLOT_KEY)
    slot_type: SlotType | None = None
    interface_type: InterfaceType | None = None
    is_required: bool | None = None


# ---- templates -----------------------------------------------------------------------------------
class TransportDefaults(BaseModel):
    """The primary transport a template gives a device that has none."""

    model_config = ConfigDict(extra="ignore")

    ingestion_protocol: IngestionProtocol
    physical_connectivity: PhysicalConnectivity | None = None
    protocol_config: dict[str, Any] = Field(default_factory=dict)
    connectivity_config: dict[str, Any] = Field(default_factory=dict)


class TemplateFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str | None = Field(None, max_length=4000)
    manufacturer: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    firmware_version_pattern: str | None = Field(None, max_length=200, examples=[r"^1\.\d+\.\d+$"])
    transport_defaults: TransportDefaults | None = None
    metadata: dict[str, Any] | None = None
    image_url: str | None = Field(None, max_length=1000, pattern=r"^https?://")

    @field_validator("firmware_version_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return v


class TemplateCreate(TemplateFields):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(None, pattern=SLUG, description="default: derived from the name")
    category: Category
    is_locked: bool = False
    metrics: list[MetricCreate] = Field(default_factory=list, max_length=500)
    commands: list[CommandCreate] = Field(default_factory=list, max_length=200)
    slots: list[SlotCreate] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _unique_keys(self):
        for items, key in ((self.metrics, "metric_key"), (self.commands, "command_key"), (self.slots, "slot_key")):
            keys = [getattr(i, key) for i in items]
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"duplicate {key}: {', '.join(dupes)}")
        return self


class TemplateUpdate(TemplateFields, Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("name", "slug", "category", "is_locked", "metadata")

    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = Field(None, pattern=SLUG)
    category: Category | None = None
    is_locked: bool | None = None


class CloneBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = Field(None, min_length=1, max_length=200, description='default: "<name> (copy)"')
    slug: str | None = Field(None, pattern=SLUG, description="default: <slug>-copy, numbered when taken")


# ---- answers -------------------------------------------------------------------------------------
class PartOut(Row):
    id: int
    template_id: int


class MetricOut(PartOut):
    metric_key: str
    data_type: str
    is_required: bool


class CommandOut(PartOut):
    command_key: str
    parameters_schema: dict[str, Any] | None = None


class SlotOut(PartOut):
    slot_key: str
    slot_type: str
    interface_type: str


class TemplateOut(Stamped, Row):
    id: int
    tenant_id: str | None = Field(description="null for a system template")
    name: str
    slug: str
    category: str
    is_locked: bool


class TemplateDetail(TemplateOut):
    metrics: list[MetricOut]
    commands: list[CommandOut]
    slots: list[SlotOut]


class TemplatePage(Page):
    templates: list[TemplateOut]
