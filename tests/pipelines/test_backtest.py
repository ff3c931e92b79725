"""Backtest's alert lifecycle is the tenant actor's: one open alert per rule x device, retriggers, auto-close."""
from datetime import datetime, timezone

from pulse.domain.messages import AlertEvent
from pulse.pipelines.backtest import Lifecycle


def event(kind: str, device: str, minute: int, auto_resolve: bool = True) -> AlertEvent:
    return AlertEvent(kind=kind, tenant_id="acme", device_id=device, rule_id="r1", rule_name="hot", severity=4,
                      metric="temp", value=float(minute), ts_ms=minute * 60_000, auto_resolve=auto_resolve)


def at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=timezone.utc)


def test_open_retrigger_and_auto_close_follow_the_tenant_actor():
    alerts = Lifecycle("acme")
    for ev in (event("open", "d1", 1), event("open", "d1", 2), event("open", "d2", 3), event("clear", "d1", 4),
               event("open", "d1", 5), None):
        alerts.apply(ev)
    assert [(a["device_id"], a["opened_at"], a["closed_at"], a["trigger_count"]) for a in alerts.alerts()] == [
        ("d1", at(1), at(4), 2), ("d2", at(3), None, 1), ("d1", at(5), None, 1)]


def test_a_clear_without_auto_resolve_leaves_the_alert_open():
    alerts = Lifecycle("acme")
    alerts.apply(event("open", "d1", 1, auto_resolve=False))
    alerts.apply(event("clear", "d1", 2, auto_resolve=False))
    assert [(a["opened_at"], a["closed_at"]) for a in alerts.alerts()] == [(at(1), None)]
