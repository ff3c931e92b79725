"""Live push, the pure parts: event shapes, what a client subscribed to, what a node must watch,
and a client's bounded queue. No I/O: the actors publish, `pulse.serve.live` fans out.

Events are plain JSON-ready dicts (they cross the hot path and go straight onto the wire);
every event carries `type` and `tenant_id`, which is what matching and isolation rely on.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

TELEMETRY, ALERTS, STATUS = "telemetry", "alerts", "status"
CHANNELS = (TELEMETRY, ALERTS, STATUS)
Event = dict[str, Any]


def iso_ms(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")


# ---- event shapes (docs/live.md) ---------------------------------------------------------------
def telemetry_event(tenant_id: str, device_id: str, metrics: dict[str, float], ts_ms: int,
                    seq: int | None) -> Event:
    """The documented telemetry event, plus `ts_ms` and `seq`; `acked_ms` is stamped on publish."""
    return {"type": "telemetry", "tenant_id": tenant_id, "device_id": device_id, "metrics": metrics,
            "timestamp": iso_ms(ts_ms), "ts_ms": ts_ms, "seq": seq,
            "topic": f"tenant/{tenant_id}/device/{device_id}/telemetry"}


def status_event(tenant_id: str, device_id: str, status: str, previous: str | None, now_ms: int,
                 last_seen_ms: int | None) -> Event:
    return {"type": "status", "tenant_id": tenant_id, "device_id": device_id, "status": status,
            "previous": previous, "last_seen_ms": last_seen_ms, "ts_ms": now_ms}


def alert_event(tenant_id: str, alert_id: int, status: str, action: str, now_ms: int,
                device_id: str | None = None, alert_type: str | None = None, severity: int | None = None,
                message: str | None = None) -> Event:
    """An alert opened (`action` OPEN), re-triggered (RETRIGGER) or changed state (ACKNOWLEDGED,
    SILENCED, CLOSED, AUTO_CLOSED, ...). Clients re-read the alert for the full record."""
    return {"type": "alert", "tenant_id": tenant_id, "alert_id": alert_id, "status": status, "action": action,
            "device_id": device_id, "alert_type": alert_type, "severity": severity, "message": message,
            "ts_ms": now_ms}


def channel_of(event: Event) -> str:
    return ALERTS if event["type"] == "alert" else event["type"]


# ---- what a node watches ------------------------------------------------------------------------
@dataclass(frozen=True)
class Watch:
    """What at least one client anywhere is subscribed to: the hosts publish only this.

    `telemetry` maps a tenant to its watched device ids, or to None for all of its devices;
    status changes and alerts are watched per tenant (they are rare)."""

    telemetry: dict[str, frozenset[str] | None] = field(default_factory=dict)
    status: frozenset[str] = frozenset()
    alerts: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.telemetry or self.status or self.alerts)

    def wants_telemetry(self, tenant_id: str, device_id: str) -> bool:
        if tenant_id not in self.telemetry:
            return False
        devices = self.telemetry[tenant_id]
        return devices is None or device_id in devices

    def wants(self, event: Event) -> bool:
        """Whether this watch covers an event (the hub's per-process filter)."""
        channel, tenant = channel_of(event), event["tenant_id"]
        if channel == TELEMETRY:
            return self.wants_telemetry(tenant, event["device_id"])
        return tenant in (self.status if channel == STATUS else self.alerts)

    @staticmethod
    def union(watches: Iterable[Watch]) -> Watch:
        telemetry: dict[str, set[str] | None] = {}
        status: set[str] = set()
        alerts: set[str] = set()
        for w in watches:
            for tenant, devices in w.telemetry.items():
                if devices is None or tenant in telemetry and telemetry[tenant] is None:
                    telemetry[tenant] = None
                else:
                    telemetry.setdefault(tenant, set()).update(devices)  # type: ignore[union-attr]
            status |= w.status
            alerts |= w.alerts
        return Watch({t: None if d is None else frozenset(d) for t, d in telemetry.items()},
                     frozenset(status), frozenset(alerts))


# ---- what one client subscribed to -------------------------------------------------------------
@dataclass
class Subscription:
    """One client's filters, always inside its own tenant (the tenant comes from its token).

    Device filter: explicit device ids plus the members of subscribed groups (resolved when
    subscribing); both empty means every device of the tenant, as documented. `metrics` empty
    means every metric. Alerts are tenant-wide; status changes follow the device filter."""

    tenant_id: str
    channels: set[str] = field(default_factory=lambda: {TELEMETRY})
    device_ids: set[str] = field(default_factory=set)
    groups: dict[str, frozenset[str]] = field(default_factory=dict)
    metrics: set[str] = field(default_factory=set)

    def devices(self) -> frozenset[str] | None:
        """The device filter, None for all devices."""
        if not self.device_ids and not self.groups:
            return None
        out = set(self.device_ids)
        for members in self.groups.values():
            out |= members
        return frozenset(out)

    def watch(self) -> Watch:
        t = self.tenant_id
        return Watch({t: self.devices()} if TELEMETRY in self.channels else {},
                     frozenset({t}) if STATUS in self.channels else frozenset(),
                     frozenset({t}) if ALERTS in self.channels else frozenset())

    def filters(self) -> dict[str, Any]:
        return {"device_ids": sorted(self.device_ids), "group_ids": sorted(self.groups),
                "metric_names": sorted(self.metrics), "channels": sorted(self.channels)}

    def shape(self, event: Event, devices: frozenset[str] | None) -> Event | None:
        """The event as this client gets it, or None if it is not for this client. `devices` is
        `self.devices()`, computed once per client by the caller (this runs per event)."""
        if event["tenant_id"] != self.tenant_id:  # isolation: never another tenant's event
            return None
        channel = channel_of(event)
        if channel not in self.channels:
            return None
        if channel == ALERTS:
            return event
        if devices is not None and event["device_id"] not in devices:
            return None
        if channel == STATUS or not self.metrics:
            return event
        kept = {k: v for k, v in event["metrics"].items() if k in self.metrics}
        return {**event, "metrics": kept} if kept else None


def parse_csv(value: str | None) -> set[str]:
    return {v.strip() for v in (value or "").split(",") if v.strip()}


def parse_channels(value: str | None) -> set[str]:
    """`telemetry,alerts,status`; None or empty = telemetry only (the documented stream)."""
    channels = parse_csv(value) or {TELEMETRY}
    unknown = channels - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown channel(s): {', '.join(sorted(unknown))}; use {', '.join(CHANNELS)}")
    return channels


# ---- back-pressure -------------------------------------------------------------------------------
class DropOldestQueue:
    """A bounded FIFO of events: when full, the oldest event is dropped and counted.

    Why drop-oldest: a live view cares about the newest values, and a client that fell behind
    is better served by a gap it is told about (`dropped`) than by a growing backlog. Memory is
    bounded by `capacity` events whatever the producer does."""

    __slots__ = ("items", "capacity", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.items: deque[Event] = deque()
        self.capacity = capacity
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.items)

    def put(self, event: Event) -> None:
        if len(self.items) >= self.capacity:
            self.items.popleft()
            self.dropped += 1
        self.items.append(event)

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.put(event)

    def take(self) -> tuple[list[Event], int]:
        """Everything waiting, and how many were dropped since the last take."""
        items, dropped = list(self.items), self.dropped
        self.items.clear()
        self.dropped = 0
        return items, dropped


def dropped_notice(tenant_id: str, count: int, now_ms: int) -> Event:
    """Sent to a client in place of the events it was too slow to take."""
    return {"type": "dropped", "tenant_id": tenant_id, "count": count, "ts_ms": now_ms}
