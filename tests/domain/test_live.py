"""Live push, pure parts: subscriptions match only their tenant and filters, watches union
correctly, and a client's queue stays bounded by dropping its oldest events."""
from __future__ import annotations

import pytest

from pulse.domain.live import (ALERTS, STATUS, TELEMETRY, DropOldestQueue, Subscription, Watch, alert_event,
                               parse_channels, status_event, telemetry_event)


def tel(tenant: str = "acme", device: str = "d1", **metrics: float) -> dict:
    return telemetry_event(tenant, device, metrics or {"temp": 1.0}, 1_700_000_000_000, 7)


def test_telemetry_event_has_the_documented_keys():
    e = tel(temp=21.5)
    assert {"type", "device_id", "tenant_id", "metrics", "timestamp", "topic"} <= e.keys()
    assert e["topic"] == "tenant/acme/device/d1/telemetry"
    assert e["timestamp"].startswith("2023-11-14T22:13:20")


def test_a_subscription_never_matches_another_tenants_event():
    sub = Subscription("acme", {TELEMETRY, ALERTS, STATUS})
    assert sub.shape(tel("globex"), None) is None
    assert sub.shape(alert_event("globex", 1, "OPEN", "OPEN", 0), None) is None
    assert sub.shape(status_event("globex", "d1", "ONLINE", "OFFLINE", 0, 0), None) is None
    assert sub.shape(tel("acme"), None) is not None


def test_empty_device_filter_means_every_device_and_groups_add_members():
    sub = Subscription("acme")
    assert sub.devices() is None
    assert sub.shape(tel(device="any"), sub.devices()) is not None
    sub.device_ids.add("d1")
    sub.groups["g"] = frozenset({"d2", "d3"})
    devices = sub.devices()
    assert devices == {"d1", "d2", "d3"}
    assert sub.shape(tel(device="d3"), devices) is not None
    assert sub.shape(tel(device="d4"), devices) is None


def test_metric_filter_keeps_matching_keys_and_drops_events_with_none():
    sub = Subscription("acme", metrics={"temp"})
    shaped = sub.shape(tel(temp=1.0, hum=2.0), None)
    assert shaped["metrics"] == {"temp": 1.0}
    assert sub.shape(tel(hum=2.0), None) is None


def test_channels_select_event_kinds_and_alerts_are_tenant_wide():
    sub = Subscription("acme", {ALERTS}, {"d1"})
    assert sub.shape(tel(), sub.devices()) is None
    assert sub.shape(alert_event("acme", 5, "OPEN", "OPEN", 0, device_id="other"), sub.devices()) is not None
    status_sub = Subscription("acme", {STATUS}, {"d1"})
    assert status_sub.shape(status_event("acme", "d1", "STALE", "ONLINE", 0, 0), status_sub.devices()) is not None
    assert status_sub.shape(status_event("acme", "d2", "STALE", "ONLINE", 0, 0), status_sub.devices()) is None


def test_watch_union_widens_to_all_devices_and_collects_tenants():
    a = Subscription("acme", {TELEMETRY}, {"d1"}).watch()
    b = Subscription("acme", {TELEMETRY}, {"d2"}).watch()
    c = Subscription("globex", {ALERTS, STATUS}).watch()
    w = Watch.union([a, b, c])
    assert w.telemetry == {"acme": frozenset({"d1", "d2"})}
    assert w.alerts == {"globex"} and w.status == {"globex"}
    assert w.wants_telemetry("acme", "d1") and not w.wants_telemetry("acme", "d9")
    assert not w.wants_telemetry("globex", "d1")
    everything = Watch.union([a, Subscription("acme").watch()])
    assert everything.telemetry == {"acme": None} and everything.wants_telemetry("acme", "d9")
    assert not Watch() and Watch.union([]) == Watch()


def test_watch_wants_filters_events_by_kind_and_tenant():
    w = Watch({"acme": None}, frozenset(), frozenset({"globex"}))
    assert w.wants(tel("acme"))
    assert not w.wants(tel("globex"))
    assert w.wants(alert_event("globex", 1, "OPEN", "OPEN", 0))
    assert not w.wants(status_event("acme", "d1", "ONLINE", None, 0, 0))


def test_queue_drops_oldest_and_counts_and_stays_bounded():
    q = DropOldestQueue(3)
    for i in range(10):
        q.put({"i": i})
    assert len(q) == 3
    items, dropped = q.take()
    assert [e["i"] for e in items] == [7, 8, 9] and dropped == 7
    assert q.take() == ([], 0)
    with pytest.raises(ValueError):
        DropOldestQueue(0)


def test_channels_parse_and_refuse_unknown_ones():
    assert parse_channels(None) == {TELEMETRY}
    assert parse_channels("alerts, status") == {ALERTS, STATUS}
    with pytest.raises(ValueError, match="bogus"):
        parse_channels("telemetry,bogus")
