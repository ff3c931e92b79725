"""TenantActor: one open alert per fingerprint, lifecycle transitions, auto-close."""
import pytest

from pulse.domain.messages import AlertEvent
from pulse.domain.tenant import CreateAlert, OpenAlert, RetriggerAlert, TenantActor, TransitionAlert
from pulse.errors import Conflict, Invalid


def ev(kind="open", device="d1", rule="r1", auto=True):
    return AlertEvent(kind, "t1", device, rule, "hot", 4, "temp", 31.0, 1000, auto_resolve=auto)


def test_open_creates_then_retriggers_instead_of_duplicating():
    t = TenantActor("t1")
    (op,) = t.on_alert_event(ev())
    assert isinstance(op, CreateAlert)
    assert t.on_alert_event(ev()) == []  # create still in flight: no second insert
    t.created("RULE:r1:d1", 11, "r1")
    (op,) = t.on_alert_event(ev())
    assert isinstance(op, RetriggerAlert) and op.alert_id == 11


def test_clear_auto_closes_unless_auto_resolve_is_off():
    t = TenantActor("t1", [OpenAlert(1, "RULE:r1:d1", "r1", "OPEN"), OpenAlert(2, "RULE:r2:d1", "r2", "OPEN")])
    (op,) = t.on_alert_event(ev("clear"))
    assert isinstance(op, TransitionAlert) and op.status == "CLOSED" and op.action == "AUTO_CLOSED"
    assert t.on_alert_event(ev("clear", rule="r2", auto=False)) == []
    assert 2 in t.by_id and 1 not in t.by_id


def test_acknowledge_only_from_open_and_close_from_either():
    t = TenantActor("t1", [OpenAlert(1, "fp", "r1", "OPEN")])
    (op,) = t.acknowledge(1, "ann", 5)
    assert op.status == "ACKNOWLEDGED" and op.actor == "ann"
    with pytest.raises(Conflict):
        t.acknowledge(1, "ann", 6)
    (op,) = t.close(1, "bob", 7)
    assert op.status == "CLOSED"
    with pytest.raises(Conflict):
        t.close(1, "bob", 8)


def test_silence_sets_until_and_validates_minutes():
    t = TenantActor("t1", [OpenAlert(1, "fp", "r1", "OPEN")])
    (op,) = t.silence(1, 30, "ann", 1000)
    assert op.silenced_until_ms == 1000 + 30 * 60_000 and op.status == "OPEN"
    assert t.is_silenced("fp", 2000) and not t.is_silenced("fp", 1000 + 31 * 60_000)
    with pytest.raises(Invalid):
        t.silence(1, 0, "ann", 1)


def test_reopen_after_close_creates_a_new_alert():
    t = TenantActor("t1", [OpenAlert(1, "RULE:r1:d1", "r1", "OPEN")])
    t.close(1, "ann", 5)
    (op,) = t.on_alert_event(ev())
    assert isinstance(op, CreateAlert)


def test_rule_deleted_closes_its_alerts():
    t = TenantActor("t1", [OpenAlert(1, "a", "r1", "OPEN"), OpenAlert(2, "b", "r2", "ACKNOWLEDGED")])
    ops = t.rule_deleted("r1", 9)
    assert [o.alert_id for o in ops] == [1] and list(t.by_id) == [2]


def test_a_removed_device_closes_its_alerts_and_a_new_alert_for_it_opens_afresh():
    t = TenantActor("t1", [OpenAlert(1, "RULE:r1:d1", "r1", "ACKNOWLEDGED", device_id="d1"),
                           OpenAlert(2, "RULE:r1:d2", "r1", "OPEN", device_id="d2")])
    t.on_alert_event(ev(device="d1", rule="r2"))
    t.created("RULE:r2:d1", 3, "r2", "d1")
    ops = t.device_removed("d1", "DEVICE_DECOMMISSIONED", "ann", 9, "replaced")
    assert [(o.alert_id, o.action, o.status, o.actor, o.details) for o in ops] == [
        (1, "DEVICE_DECOMMISSIONED", "CLOSED", "ann", {"reason": "replaced"}),
        (3, "DEVICE_DECOMMISSIONED", "CLOSED", "ann", {"reason": "replaced"})]
    assert list(t.by_id) == [2]
    assert isinstance(t.on_alert_event(ev(device="d1"))[0], CreateAlert)
