"""Messages actors receive and effects they return.

Plain slotted dataclasses: they cross the hot path by the thousand, so no validation here;
validation happens once at the edge (`pulse.domain.envelope`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


# ---- messages into device actors -------------------------------------------------------------
@dataclass(slots=True)
class FromDevice:
    """What every message from a device carries: whose it is and when the device sent it."""

    tenant_id: str
    device_id: str
    ts_ms: int


@dataclass(slots=True)
class Telemetry(FromDevice):
    metrics: dict[str, float]
    seq: int | None = None
    site_id: str | None = None


@dataclass(slots=True)
class Heartbeat(FromDevice):
    """The device is alive: its presence and last-seen time move, nothing else."""


@dataclass(slots=True)
class ReportedState(FromDevice):
    reported: dict[str, Any]
    version: int | None = None


@dataclass(slots=True)
class CommandAck(FromDevice):
    command_id: str
    status: str
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class Presence(FromDevice):
    """The device's MQTT connection opened or closed (from the broker, or the device's own LWT)."""

    connected: bool
    subscribed: bool = True  # False: connected but not yet listening on its commands topic


@dataclass(slots=True)
class OtaStatus(FromDevice):
    """A device's progress on an OTA campaign's instruction (`…/ota/status`)."""

    campaign_id: int
    status: str  # DOWNLOADING | INSTALLING | SUCCESS | FAILED, checked by the campaign's service
    progress_pct: int | None = None
    error: str | None = None


@dataclass(slots=True)
class JobUpdate(FromDevice):
    """A device moves its execution of a job on (`…/jobs/{job_id}/update`)."""

    job_id: str
    status: str  # IN_PROGRESS | SUCCEEDED | FAILED | REJECTED, checked by the jobs service
    expected_execution_number: int | None = None
    status_details: dict[str, Any] | None = None


DeviceMessage = Telemetry | Heartbeat | ReportedState | CommandAck | Presence | OtaStatus | JobUpdate
# Reports on field operations: the actor only notes the device was seen; the services own their state.
FieldReport = OtaStatus | JobUpdate


@dataclass(slots=True)
class Rejection:
    """A message the edge refused: it becomes a quarantine event, never a silent drop."""

    reason: str
    topic: str
    tenant_id: str | None
    device_id: str | None
    payload: bytes | str | None
    ts_ms: int
    detail: str | None = None


# ---- effects out of actors -------------------------------------------------------------------
@dataclass(slots=True)
class AlertEvent:
    """A rule changed state for one device: `open` on a rising edge, `clear` on a falling one."""

    kind: Literal["open", "clear"]
    tenant_id: str
    device_id: str
    rule_id: str
    rule_name: str
    severity: int
    metric: str
    value: float | None
    ts_ms: int
    auto_resolve: bool = True
    alert_type: str = "THRESHOLD"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """One open alert per rule x device; built-in alerts (no rule) per type x device."""
        return f"RULE:{self.rule_id}:{self.device_id}" if self.rule_id else f"{self.alert_type}:{self.device_id}"


@dataclass(slots=True)
class Publish:
    """An MQTT message Pulse sends to a device. One carrying a `command_id` delivers that command:
    the command becomes `delivered` once the broker has the message, not when it is queued."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    command_id: str | None = None


@dataclass(slots=True)
class CommandStatus:
    """A command moved on (sent to the device, or acknowledged by it): the shard persists it."""

    command_id: str
    status: str
    ts_ms: int
    details: dict[str, Any] | None = None


@dataclass(slots=True)
class MetricsDiscovered:
    """The device reported metric keys for the first time (they become `unmodeled` sensors if new)."""

    keys: list[str]


@dataclass(slots=True)
class Listening:
    """The device is connected and subscribed again: downlinks the store holds for it (an OTA
    instruction of a running campaign, queued job executions) are sent now."""


LISTENING = Listening()

Effect = AlertEvent | Publish | CommandStatus | MetricsDiscovered | Listening | OtaStatus | JobUpdate
