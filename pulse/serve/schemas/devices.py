"""HTTP bodies of the device registry."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pulse.serve.params import ID_PATTERN, DbId
from pulse.serve.schemas.common import Update, one_of

DEVICE_STATUSES = ("ACTIVE", "INACTIVE", "SUSPENDED")  # what a PATCH may set; REVOKED only by decommission
REGISTRY_STATUSES = (*DEVICE_STATUSES, "REVOKED")


class DeviceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    site_id: str | None = Field(None, pattern=ID_PATTERN)
    template_id: DbId | None = None
    parent_device_id: str | None = Field(None, pattern=ID_PATTERN)
    model: str | None = Field(None, max_length=200)
    manufacturer: str | None = Field(None, max_length=200)
    serial_number: str | None = Field(None, max_length=200)
    fw_version: str | None = Field(None, max_length=100)
    notes: str | None = Field(None, max_length=4000)
    metadata: dict[str, Any] | None = None


class DeviceCreate(DeviceFields):
    device_id: str = Field(pattern=ID_PATTERN)


class DevicePatch(Update, DeviceFields):
    NOT_NULL = ("status", "metadata")  # NOT NULL columns: null would reach the database

    status: str | None = Field(None, pattern=one_of(DEVICE_STATUSES))


class DecommissionBody(BaseModel):
    reason: str | None = Field(None, max_length=500)
