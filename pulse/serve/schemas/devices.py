"""HTTP bodies and answers of the device registry and device tokens.

Unknown body fields are ignored (a client of the documented system sends a superset: `plan_id`,
`latitude`, `imei`, ...), as in the documented system; docs/devices.md lists what Pulse stores.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pulse.serve.params import ID_PATTERN, DbId
from pulse.serve.schemas.common import Page, Row, Stamped, Update, one_of
from pulse.serve.schemas.telemetry import LatestRow

DEVICE_STATUSES = ("ACTIVE", "INACTIVE", "SUSPENDED")  # what a PATCH may set; REVOKED only by decommission
REGISTRY_STATUSES = (*DEVICE_STATUSES, "REVOKED")


class DeviceFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

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


class RotateBody(BaseModel):
    label: str = Field("rotated", min_length=1, max_length=100, description="stored with the new token")


# ---- answers -------------------------------------------------------------------------------------
class DeviceOut(Stamped, Row):
    device_id: str
    name: str | None = None
    site_id: str | None = None
    template_id: int | None = None
    status: str = Field(description="registry status: ACTIVE, INACTIVE, SUSPENDED or REVOKED")


class DeviceCreated(DeviceOut):
    token: str = Field(description="the first device token (MQTT password / X-Provision-Token), shown once")
    token_id: str


class DeviceUpdated(DeviceOut):
    tenant_id: str
    device: DeviceOut = Field(description="the documented envelope: the same row again")


class DeviceLive(DeviceOut):
    presence: dict[str, Any] = Field(description="live presence from the device actor, with its status")
    telemetry: list[LatestRow] = Field(description="the latest value of each metric")


class DeviceDetail(DeviceLive):
    tenant_id: str
    device: DeviceLive = Field(description="the documented envelope: the same device again")


class DeviceDeleted(BaseModel):
    device_id: str
    status: str = Field("deleted", description="the documented answer")


class DevicePage(Page):
    tenant_id: str
    devices: list[DeviceOut]


class DeviceSummary(BaseModel):
    ONLINE: int
    STALE: int
    OFFLINE: int
    total: int
    by_status: dict[str, int] = Field(description="registry counts by status")
    connectivity: dict[str, int] = Field(description="ONLINE/STALE/OFFLINE of the devices (same as the top keys)")


class Decommissioned(DeviceOut):
    decommissioned_at: datetime


class TokenOut(Row):
    token_id: str
    id: str = Field(description="the documented name of token_id")
    client_id: str = Field(description="the MQTT username, {tenant_id}/{device_id}")
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None


class TokenList(BaseModel):
    device_id: str
    tokens: list[TokenOut]
    total: int


class RotatedToken(BaseModel):
    """The new secret, under Pulse's names (`token`, `token_id`) and the documented ones."""

    token: str
    token_id: str
    client_id: str = Field(description="MQTT username")
    password: str = Field(description="MQTT password, the same secret as `token`")
    broker_url: str
