"""HTTP bodies and answers of device transports and of the deprecated device connection.

Unknown body fields are ignored, as in the documented system (its connection's
`carrier_account_id` and `billing_cycle_start` are not stored by Pulse).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pulse.serve.params import DbId
from pulse.serve.schemas.common import DevicePart, Page, Row, Update
from pulse.serve.schemas.templates import IngestionProtocol, PhysicalConnectivity

TransportStatus = Literal["active", "inactive", "failover"]


class TransportCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ingestion_protocol: IngestionProtocol
    physical_connectivity: PhysicalConnectivity | None = None
    protocol_config: dict[str, Any] = Field(default_factory=dict)
    connectivity_config: dict[str, Any] = Field(default_factory=dict, examples=[{"apn": "iot.1nce.net"}])
    carrier_integration_id: DbId | None = None
    is_primary: bool | None = Field(None, description="default: primary when the device has no primary yet")
    status: TransportStatus = "active"


class TransportUpdate(Update):
    model_config = ConfigDict(extra="ignore")
    NOT_NULL = ("ingestion_protocol", "protocol_config", "connectivity_config", "is_primary", "status")

    ingestion_protocol: IngestionProtocol | None = None
    physical_connectivity: PhysicalConnectivity | None = None
    protocol_config: dict[str, Any] | None = None
    connectivity_config: dict[str, Any] | None = None
    carrier_integration_id: DbId | None = None
    is_primary: bool | None = None
    status: TransportStatus | None = None


class ConnectionPut(Update):
    model_config = ConfigDict(extra="ignore")
    """The legacy connection body; fields map onto the primary transport (null clears a field).
    The connectivity fields are `pulse.domain.transports.CONNECTION_KEYS`."""

    NOT_NULL = ("ingestion_protocol", "status")

    connection_type: PhysicalConnectivity | None = None
    ingestion_protocol: IngestionProtocol | None = None
    carrier_integration_id: DbId | None = None
    status: TransportStatus | None = None
    carrier_name: str | None = Field(None, max_length=100)
    plan_name: str | None = Field(None, max_length=100)
    apn: str | None = Field(None, max_length=100)
    sim_iccid: str | None = Field(None, pattern=r"^[0-9]{15,22}F?$")
    sim_status: str | None = Field(None, max_length=32)
    msisdn: str | None = Field(None, pattern=r"^\+?[0-9]{5,20}$")
    ip_address: str | None = Field(None, max_length=64)
    network_status: str | None = Field(None, max_length=32)
    data_limit_mb: float | None = Field(None, ge=0)
    data_used_mb: float | None = Field(None, ge=0)


class TransportOut(DevicePart):
    ingestion_protocol: str
    physical_connectivity: str | None = None
    protocol_config: dict[str, Any]
    connectivity_config: dict[str, Any]
    carrier_integration_id: int | None = None
    is_primary: bool
    status: str


class TransportPage(Page):
    device_id: str
    transports: list[TransportOut]


class ConnectionOut(Row):
    """The legacy device_connections shape of the primary transport (`pulse.domain.transports`)."""

    device_id: str
    transport_id: int
    connection_type: str | None = None
    status: str
