"""DeviceActor: latest values, twin merge/delta/versions, rule open/close/duration/dedup."""
import json

import pytest

from pulse.domain.device import DeviceActor, merge_patch, presence_status
from pulse.domain.latest import unpack
from pulse.domain.messages import AlertEvent, Heartbeat, Presence, Publish, ReportedState, Telemetry
from pulse.domain.rules import Condition, Rule


def tele(ts, **metrics):
    return Telemetry("t1", "d1", ts, {k: float(v) for k, v in metrics.items()})


def alerts(actor, msg, rules):
    return [e for e in actor.on_telemetry(msg, rules) if isinstance(e, AlertEvent)]


def rule(metric="temp", operator="GT", threshold=30.0, **over):
    base = dict(rule_id="r1", tenant_id="t1", name="hot", conditions=(Condition(metric, operator, threshold),))
    base.update(over)
    return Rule(**base)


def test_latest_keeps_newest_value_per_metric_even_out_of_order():
    a = DeviceActor("t1", "d1")
    alerts(a, tele(2000, temp=20, hum=40), [])
    alerts(a, tele(1000, temp=99), [])  # late reading must not overwrite
    assert a.latest_view() == {"hum": {"value": 40.0, "ts_ms": 2000}, "temp": {"value": 20.0, "ts_ms": 2000}}
    assert a.presence["last_telemetry_ms"] == 2000


def test_snapshot_round_trips_through_json():
    a = DeviceActor("t1", "d1")
    alerts(a, tele(1000, temp=31), [rule()])
    a.patch_desired({"mode": "eco"}, 5)
    b = DeviceActor("t1", "d1", json.loads(json.dumps(a.snapshot())))
    assert b.latest_view() == a.latest_view()
    assert b.twin_view(6) == a.twin_view(6)
    assert b.rule_states["r1"].firing is True


def test_rule_opens_once_and_clears_when_condition_stops():
    a, r = DeviceActor("t1", "d1"), rule()
    assert alerts(a, tele(1000, temp=25), [r]) == []
    (ev,) = alerts(a, tele(2000, temp=31), [r])
    assert isinstance(ev, AlertEvent) and ev.kind == "open" and ev.value == 31.0 and ev.ts_ms == 2000
    assert alerts(a, tele(3000, temp=35), [r]) == []  # still firing: no duplicate
    (ev,) = alerts(a, tele(4000, temp=29), [r])
    assert ev.kind == "clear" and ev.fingerprint == "RULE:r1:d1"


def test_duration_requires_the_condition_to_hold_continuously():
    a, r = DeviceActor("t1", "d1"), rule(duration_seconds=10)
    assert alerts(a, tele(0, temp=31), [r]) == []
    assert alerts(a, tele(5000, temp=31), [r]) == []
    assert alerts(a, tele(6000, temp=20), [r]) == []  # broke the streak
    assert alerts(a, tele(7000, temp=31), [r]) == []
    assert alerts(a, tele(16000, temp=31), [r]) == []
    (ev,) = alerts(a, tele(17000, temp=32), [r])
    assert ev.kind == "open"


def test_rule_scoped_to_other_devices_is_ignored():
    a = DeviceActor("t1", "d1")
    assert alerts(a, tele(1, temp=99), [rule(device_ids=frozenset({"d2"}))]) == []
    assert alerts(a, tele(1, temp=99), [rule(enabled=False)]) == []


@pytest.mark.parametrize("op,value,fires", [
    ("GT", 30, False), ("GTE", 30, True), ("LT", 29, True), ("LTE", 30, True), ("EQ", 30, True), ("NE", 30, False)])
def test_operators(op, value, fires):
    a = DeviceActor("t1", "d1")
    events = alerts(a, tele(1, temp=value), [rule(operator=op)])
    assert bool(events) is fires


def test_desired_patch_merges_bumps_version_and_publishes_retained():
    a = DeviceActor("t1", "d1")
    view, (pub,) = a.patch_desired({"cfg": {"rate": 5, "mode": "a"}}, 100)
    assert view["desired_version"] == 1
    view, (pub,) = a.patch_desired({"cfg": {"mode": None}, "led": True}, 200)
    assert view["desired"] == {"cfg": {"rate": 5}, "led": True} and view["desired_version"] == 2
    assert isinstance(pub, Publish) and pub.retain and pub.qos == 1
    assert pub.topic == "tenant/t1/device/d1/shadow/desired"
    assert json.loads(pub.payload) == {"desired": {"cfg": {"rate": 5}, "led": True}, "version": 2, "timestamp": 200}


def test_desired_replace_drops_every_key_the_new_document_lacks():
    a = DeviceActor("t1", "d1")
    a.patch_desired({"cfg": {"rate": 5, "mode": "a"}, "led": True}, 1)
    view, (pub,) = a.patch_desired({"cfg": {"rate": 7}, "off": None}, 2, replace=True)
    assert view["desired"] == {"cfg": {"rate": 7}} and view["desired_version"] == 2
    assert json.loads(pub.payload)["desired"] == {"cfg": {"rate": 7}}


def test_delta_lists_desired_keys_the_device_has_not_reported():
    a = DeviceActor("t1", "d1")
    a.patch_desired({"cfg": {"rate": 5, "mode": "a"}, "led": True}, 1)
    a.on_reported(ReportedState("t1", "d1", 2, {"cfg": {"rate": 5, "mode": "b"}, "fw": "1.0"}, 4))
    assert a.delta() == {"cfg": {"mode": "a"}, "led": True}
    assert a.twin["reported_version"] == 4
    a.on_reported(ReportedState("t1", "d1", 3, {"cfg": {"mode": "a"}, "led": True}))
    assert a.delta() == {} and a.twin["reported_version"] == 5


def test_desired_state_size_is_limited():
    with pytest.raises(ValueError):
        DeviceActor("t1", "d1").patch_desired({"blob": "x" * 9000}, 1)


def test_merge_patch_follows_rfc7386():
    assert merge_patch({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}}) == {"b": {"c": 2, "d": 3}}
    assert merge_patch({"a": {"b": 1}}, {"a": 5}) == {"a": 5}


def test_heartbeat_and_presence_status():
    a = DeviceActor("t1", "d1")
    a.on_heartbeat(Heartbeat("t1", "d1", 10_000))
    assert a.presence["last_heartbeat_ms"] == 10_000
    assert presence_status(10_000, 20_000, 60, 300) == "ONLINE"
    assert presence_status(10_000, 100_000, 60, 300) == "STALE"
    assert presence_status(10_000, 400_000, 60, 300) == "OFFLINE"
    assert presence_status(None, 1, 60, 300) == "OFFLINE"


def test_a_device_that_published_and_disconnected_is_online_until_it_goes_silent():
    a = DeviceActor("t1", "d1")
    a.on_presence(Presence("t1", "d1", 10_000, connected=True))
    a.on_presence(Presence("t1", "d1", 11_000, connected=False))
    assert a.presence["connected"] is False
    assert presence_status(a.presence["last_seen_ms"], 20_000, 60, 300) == "ONLINE"
    assert a.on_tick(20_000, [], (60, 4)) == []  # no NO_HEARTBEAT while heard from recently
    assert [e.kind for e in a.on_tick(80_000, [], (60, 4))] == ["open"]


def test_deleted_rule_state_is_forgotten():
    a = DeviceActor("t1", "d1")
    alerts(a, tele(1, temp=99), [rule()])
    a.rules_changed(set())
    assert a.rule_states == {}


def test_first_sight_of_a_metric_is_reported_once():
    from pulse.domain.messages import MetricsDiscovered

    a = DeviceActor("t1", "d1")
    (d,) = [e for e in a.on_telemetry(tele(1, temp=1, hum=2), []) if isinstance(e, MetricsDiscovered)]
    assert sorted(d.keys) == ["hum", "temp"]
    assert a.on_telemetry(tele(2, temp=1), []) == []


def test_no_heartbeat_opens_when_silent_and_closes_when_back():
    from pulse.domain.messages import AlertEvent

    a = DeviceActor("t1", "d1")
    assert a.on_tick(10_000, [], (60, 4)) == []  # never heard from
    a.on_heartbeat(Heartbeat("t1", "d1", 0))
    assert a.on_tick(30_000, [], (60, 4)) == []
    (ev,) = a.on_tick(61_000, [], (60, 4))
    assert isinstance(ev, AlertEvent) and ev.kind == "open" and ev.alert_type == "NO_HEARTBEAT"
    assert ev.fingerprint == "NO_HEARTBEAT:d1" and ev.severity == 4
    assert a.on_tick(90_000, [], (60, 4)) == []  # once
    a.on_heartbeat(Heartbeat("t1", "d1", 95_000))
    (ev,) = a.on_tick(96_000, [], (60, 4))
    assert ev.kind == "clear"
    a.rules_changed(set())
    assert "NO_HEARTBEAT" in a.rule_states  # not a user rule: kept


def test_the_module_key_map_renames_firmware_keys_for_latest_and_rules():
    a = DeviceActor("t1", "d1", key_map={"t": "temp"})
    msg = tele(1000, t=35, hum=40)
    a.normalize(msg)
    assert msg.metrics == {"temp": 35.0, "hum": 40.0}
    assert len(alerts(a, msg, [rule()])) == 1
    assert set(a.latest_view()) == {"temp", "hum"}
    a.set_key_map({})
    msg = tele(2000, t=1)
    a.normalize(msg)
    assert msg.metrics == {"t": 1.0}


def test_changed_latest_values_are_taken_once_for_the_sensors():
    a = DeviceActor("t1", "d1")
    alerts(a, tele(2000, temp=20, hum=40), [])
    assert a.take_changed() == {"temp": (20.0, 2000), "hum": (40.0, 2000)}
    assert a.take_changed() == {}
    alerts(a, tele(1000, temp=99, hum=41), [])  # late readings change nothing
    alerts(a, tele(3000, hum=42), [])
    assert a.take_changed() == {"hum": (42.0, 3000)}
    a.keep_changed(["hum"])  # a failed write: still to be written
    assert a.take_changed() == {"hum": (42.0, 3000)}


def test_changed_values_need_no_set_while_every_metric_changes():
    """The usual device sends the same metrics each time: 'all changed' is a flag, not a set per actor."""
    a = DeviceActor("t1", "d1")
    alerts(a, tele(1000, temp=20, hum=40), [])
    alerts(a, tele(2000, temp=21, hum=41), [])
    assert a.changed is True
    assert a.take_changed() == {"temp": (21.0, 2000), "hum": (41.0, 2000)}
    alerts(a, tele(3000, hum=42), [])
    assert a.changed == {"hum"}
    alerts(a, tele(4000, temp=22), [])
    assert a.changed is True  # the subsets add up to all of them
    values = a.take_changed()
    a.keep_changed(values)  # a failed write of all of them
    assert a.changed is True and a.take_changed() == {"temp": (22.0, 4000), "hum": (42.0, 3000)}


STORED = {  # a snapshot as device_state holds them (written before the compact layout, issue 13)
    "latest": {"temp": [21.5, 2000], "hum": [40.0, 1500]},
    "twin": {"desired": {"mode": "eco", "net": {"apn": "iot"}}, "desired_version": 3, "desired_ts": 1200,
             "reported": {"fw": "1.4.2", "mode": "eco"}, "reported_version": 7, "reported_ts": 1900},
    "rules": {"r1": {"p": None, "f": True, "t": 2000, "v": {"temp": 21.5}, "s": []},
              "r2": {"p": 1000, "f": False, "t": 2000, "v": {"temp": 21.5, "hum": 40.0}, "s": []},
              "r3": {"p": None, "f": False, "t": 1500, "v": {}, "s": [[1000, 1.0], [1500, 2.0]]}},
    "presence": {"last_seen_ms": 2000, "last_telemetry_ms": 2000, "last_heartbeat_ms": None, "connected": True,
                 "subscribed": False, "connection_changed_ms": 900},
    "queued": {"c1": {"command_id": "c1", "type": "reboot", "params": {}, "expires_at": "x",
                      "created_ms": 1, "expires_ms": 10**13}},
}


def test_a_stored_snapshot_restores_and_is_written_back_unchanged():
    a = DeviceActor("t1", "d1", json.loads(json.dumps(STORED)))
    assert json.loads(json.dumps(a.snapshot())) == STORED
    assert a.twin_view(2000)["desired"] == {"mode": "eco", "net": {"apn": "iot"}}
    assert a.presence_view() == STORED["presence"]
    assert unpack(a.latest_values()) == {"temp": (21.5, 2000), "hum": (40.0, 1500)}


def test_twin_strings_and_keys_are_shared_between_devices():
    a, b = DeviceActor("t1", "d1"), DeviceActor("t1", "d2")
    for actor in (a, b):  # as decoded from two messages: equal strings, distinct objects
        actor.on_reported(ReportedState("t1", actor.device_id, 1, json.loads('{"firmware": "1.4.2-rc1"}')))
    (ka, va), = a.twin["reported"].items()
    (kb, vb), = b.twin["reported"].items()
    assert ka is kb and va is vb


def test_a_rule_for_every_device_applies_to_each_and_a_scoped_or_disabled_one_is_asked():
    a = DeviceActor("t1", "d1")
    assert rule().everywhere and not rule(device_ids=frozenset({"d1"})).everywhere and not rule(enabled=False).everywhere
    (ev,) = alerts(a, tele(1, temp=99), [rule(device_ids=frozenset({"d1", "d2"}))])
    assert ev.kind == "open"
    (ev,) = alerts(DeviceActor("t1", "d1"), tele(1, temp=99), [rule()])
    assert ev.kind == "open"
