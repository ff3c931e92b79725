"""Alert rule evaluation: pure functions over one device's readings.

The device actor calls `step` for every reading of a rule's metric; a backtest can replay
the lake through the same function and get the same alerts.
"""
from __future__ import annotations

import operator as op
from dataclasses import dataclass, field
from typing import Any, Callable

from pulse.actors.messages import AlertEvent

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GT": op.gt,
    "GTE": op.ge,
    "LT": op.lt,
    "LTE": op.le,
    "EQ": op.eq,
    "NE": op.ne,
}

# Higher number = more severe (the documented system's senders and UI agree on this).
SEVERITY_NAMES: dict[str, int] = {"info": 1, "warning": 2, "minor": 3, "major": 4, "critical": 5}
SEVERITY_LABELS: dict[int, str] = {v: k for k, v in SEVERITY_NAMES.items()}


@dataclass(frozen=True, slots=True)
class Rule:
    rule_id: str
    tenant_id: str
    name: str
    metric: str
    operator: str
    threshold: float
    severity: int = 3
    duration_seconds: int = 0
    device_ids: frozenset[str] | None = None
    auto_resolve: bool = True
    enabled: bool = True

    def applies_to(self, device_id: str) -> bool:
        return self.enabled and (self.device_ids is None or device_id in self.device_ids)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Rule":
        ids = row.get("device_ids")
        return cls(
            rule_id=row["rule_id"],
            tenant_id=row["tenant_id"],
            name=row["name"],
            metric=row["metric"],
            operator=row["operator"],
            threshold=float(row["threshold"]),
            severity=int(row["severity"]),
            duration_seconds=int(row.get("duration_seconds") or 0),
            device_ids=frozenset(ids) if ids else None,
            auto_resolve=bool(row.get("auto_resolve", True)),
            enabled=bool(row.get("enabled", True)),
        )


@dataclass(slots=True)
class RuleState:
    """Per (device, rule): when the condition started holding, and whether the alert is firing."""

    pending_since_ms: int | None = None
    firing: bool = False
    last_ts_ms: int = field(default=0)

    def to_dict(self) -> dict[str, Any]:
        return {"p": self.pending_since_ms, "f": self.firing, "t": self.last_ts_ms}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RuleState":
        return cls(d.get("p"), bool(d.get("f")), int(d.get("t") or 0))


def condition(rule: Rule, value: float) -> bool:
    return OPERATORS[rule.operator](value, rule.threshold)


def step(rule: Rule, state: RuleState, device_id: str, value: float, ts_ms: int) -> AlertEvent | None:
    """Advance one rule by one reading; returns an event on a state change.

    Readings older than the last one seen are ignored so late or replayed data cannot flap
    an alert. With `duration_seconds`, the condition must hold continuously for that long
    (measured in device time) before the alert opens.
    """
    if ts_ms < state.last_ts_ms:
        return None
    state.last_ts_ms = ts_ms
    if condition(rule, value):
        if state.pending_since_ms is None:
            state.pending_since_ms = ts_ms
        held_ms = ts_ms - state.pending_since_ms
        if not state.firing and held_ms >= rule.duration_seconds * 1000:
            state.firing = True
            return _event("open", rule, device_id, value, ts_ms)
        return None
    state.pending_since_ms = None
    if state.firing:
        state.firing = False
        return _event("clear", rule, device_id, value, ts_ms)
    return None


def _event(kind: str, rule: Rule, device_id: str, value: float, ts_ms: int) -> AlertEvent:
    return AlertEvent(
        kind=kind,  # type: ignore[arg-type]
        tenant_id=rule.tenant_id,
        device_id=device_id,
        rule_id=rule.rule_id,
        rule_name=rule.name,
        severity=rule.severity,
        metric=rule.metric,
        value=value,
        ts_ms=ts_ms,
        auto_resolve=rule.auto_resolve,
        details={"operator": rule.operator, "threshold": rule.threshold, "duration_seconds": rule.duration_seconds},
    )
