"""HTTP bodies and answers of the device HTTP API (docs/device-protocol.md, "Device HTTP API")."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pulse.serve.schemas.jobs import DeviceExecution, DeviceExecutions, ExecutionUpdate

__all__ = ["CommandAck", "CommandAckOut", "DeviceCommand", "DeviceCommands", "DeviceExecution", "DeviceExecutions",
           "DeviceShadow", "ExecutionUpdate", "ShadowReport", "RESPONSES"]


class DeviceShadow(BaseModel):
    device_id: str
    desired: dict[str, Any]
    desired_version: int
    reported: dict[str, Any]
    reported_version: int
    delta: dict[str, Any] = Field(description="desired keys whose reported value differs")
    sync_status: str


class ShadowReport(BaseModel):
    """As `shadow/reported` over MQTT: merged (RFC 7386) into the reported state."""

    model_config = ConfigDict(extra="ignore")

    reported: dict[str, Any]
    version: int | None = Field(None, ge=0, le=2**31 - 1)


class DeviceCommand(BaseModel):
    command_id: str
    type: str
    params: dict[str, Any]
    status: str = Field(description="delivered once fetched; the ack settles it")
    created_at: datetime
    expires_at: datetime


class DeviceCommands(BaseModel):
    device_id: str
    commands: list[DeviceCommand]


class CommandAck(BaseModel):
    """As `commands/ack` over MQTT."""

    model_config = ConfigDict(extra="ignore")

    status: str = Field("ok", min_length=1, max_length=32, description="ok, succeeded, failed or rejected")
    details: dict[str, Any] | None = None


class CommandAckOut(BaseModel):
    command_id: str
    status: str = Field(description="the command's status after the ack")


class DeviceAuthError(BaseModel):
    detail: str


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": DeviceAuthError, "description": "missing or invalid X-Provision-Token"},
    429: {"model": DeviceAuthError, "description": "too many failed authentications from this address"},
}
