"""TenantActor: the alert lifecycle of one tenant (dedup, acknowledge, close, silence, auto-close).

Pure: methods return `AlertOp`s that the tenant host applies to the store. It keeps the
tenant's open alerts in memory, so "one open alert per rule x device" is decided in one
place, one message at a time, even when events arrive concurrently from many shards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulse.domain.messages import AlertEvent
from pulse.errors import Conflict, Invalid

OPEN, ACKNOWLEDGED, CLOSED = "OPEN", "ACKNOWLEDGED", "CLOSED"
MAX_SILENCE_MINUTES = 7 * 24 * 60


@dataclass(slots=True)
class CreateAlert:
    event: AlertEvent


@dataclass(slots=True)
class RetriggerAlert:
    alert_id: int
    event: AlertEvent


@dataclass(slots=True)
class TransitionAlert:
    alert_id: int
    action: str  # ACKNOWLEDGED | SILENCED | CLOSED | AUTO_CLOSED | RULE_DELETED | DEVICE_DECOMMISSIONED | DEVICE_DELETED
    status: str
    actor: str | None
    at_ms: int
    silenced_until_ms: int | None = None
    details: dict[str, Any] | None = None


AlertOp = CreateAlert | RetriggerAlert | TransitionAlert


@dataclass(slots=True)
class OpenAlert:
    alert_id: int
    fingerprint: str
    rule_id: str | None
    status: str
    silenced_until_ms: int | None = None
    device_id: str | None = None


class TenantActor:
    def __init__(self, tenant_id: str, open_alerts: list[OpenAlert] | None = None) -> None:
        self.tenant_id = tenant_id
        self.by_id: dict[int, OpenAlert] = {a.alert_id: a for a in open_alerts or []}
        self.by_fingerprint: dict[str, OpenAlert] = {a.fingerprint: a for a in open_alerts or []}
        # fingerprints whose create op is in flight: a second open must not create a duplicate
        self.creating: set[str] = set()

    # ---- events from device actors -----------------------------------------------------------
    def on_alert_event(self, ev: AlertEvent) -> list[AlertOp]:
        fp = ev.fingerprint
        current = self.by_fingerprint.get(fp)
        if ev.kind == "open":
            if current is not None:
                return [RetriggerAlert(current.alert_id, ev)]
            if fp in self.creating:
                return []
            self.creating.add(fp)
            return [CreateAlert(ev)]
        if current is not None and ev.auto_resolve:
            self._forget(current)
            return [TransitionAlert(current.alert_id, "AUTO_CLOSED", CLOSED, None, ev.ts_ms,
                                    details={"value": ev.value})]
        return []

    def created(self, fingerprint: str, alert_id: int, rule_id: str | None, device_id: str | None = None) -> None:
        """The host stored a CreateAlert: index it."""
        self.creating.discard(fingerprint)
        alert = OpenAlert(alert_id, fingerprint, rule_id, OPEN, device_id=device_id)
        self.by_id[alert_id] = alert
        self.by_fingerprint[fingerprint] = alert

    def create_failed(self, fingerprint: str) -> None:
        self.creating.discard(fingerprint)

    # ---- user actions ------------------------------------------------------------------------
    def acknowledge(self, alert_id: int, actor: str, now_ms: int) -> list[AlertOp]:
        alert = self._open(alert_id)
        if alert.status != OPEN:
            raise Conflict(f"alert {alert_id} is {alert.status}, only OPEN alerts can be acknowledged")
        alert.status = ACKNOWLEDGED
        return [TransitionAlert(alert_id, "ACKNOWLEDGED", ACKNOWLEDGED, actor, now_ms)]

    def close(self, alert_id: int, actor: str, now_ms: int) -> list[AlertOp]:
        alert = self._open(alert_id)
        self._forget(alert)
        return [TransitionAlert(alert_id, "CLOSED", CLOSED, actor, now_ms)]

    def silence(self, alert_id: int, minutes: int, actor: str, now_ms: int) -> list[AlertOp]:
        if not 1 <= minutes <= MAX_SILENCE_MINUTES:
            raise Invalid(f"minutes must be between 1 and {MAX_SILENCE_MINUTES}")
        alert = self._open(alert_id)
        alert.silenced_until_ms = now_ms + minutes * 60_000
        return [TransitionAlert(alert_id, "SILENCED", alert.status, actor, now_ms,
                                silenced_until_ms=alert.silenced_until_ms, details={"minutes": minutes})]

    def rule_deleted(self, rule_id: str, now_ms: int) -> list[AlertOp]:
        ops: list[AlertOp] = []
        for alert in [a for a in self.by_id.values() if a.rule_id == rule_id]:
            self._forget(alert)
            ops.append(TransitionAlert(alert.alert_id, "RULE_DELETED", CLOSED, None, now_ms))
        return ops

    def device_removed(self, device_id: str, action: str, actor: str | None, now_ms: int,
                       reason: str | None = None) -> list[AlertOp]:
        """The device was decommissioned or deleted (`action` DEVICE_DECOMMISSIONED | DEVICE_DELETED):
        nobody can resolve its alerts any more, so they close instead of escalating forever."""
        ops: list[AlertOp] = []
        for alert in [a for a in self.by_id.values() if a.device_id == device_id]:
            self._forget(alert)
            ops.append(TransitionAlert(alert.alert_id, action, CLOSED, actor, now_ms,
                                       details={"reason": reason} if reason else None))
        return ops

    def is_silenced(self, fingerprint: str, now_ms: int) -> bool:
        alert = self.by_fingerprint.get(fingerprint)
        return bool(alert and alert.silenced_until_ms and alert.silenced_until_ms > now_ms)

    # ---- internals ---------------------------------------------------------------------------
    def _open(self, alert_id: int) -> OpenAlert:
        alert = self.by_id.get(alert_id)
        if alert is None:
            # The caller checked the alert exists for this tenant; not in the open index = closed.
            raise Conflict(f"alert {alert_id} is closed")
        return alert

    def _forget(self, alert: OpenAlert) -> None:
        self.by_id.pop(alert.alert_id, None)
        self.by_fingerprint.pop(alert.fingerprint, None)

