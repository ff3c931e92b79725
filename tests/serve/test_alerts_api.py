"""Alert rules CRUD and the alert lifecycle, driven by telemetry through the actors."""
import pytest

from tests.serve.helpers import telemetry

RULES = "/api/v1/customer/alert-rules"
ALERTS = "/api/v1/customer/alerts"
RULE = {"name": "Too hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "major"}


@pytest.fixture
async def devices(api):
    for d in ("d1", "d2"):
        assert (await api.post("/api/v1/customer/devices", json={"device_id": d})).status_code == 201


async def test_rule_crud_and_named_severity(api):
    r = await api.post(RULES, json=RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["severity"] == 4 and rule["enabled"] and rule["auto_resolve"] and rule["duration_seconds"] == 0
    assert (await api.get(f"{RULES}/{rule['rule_id']}")).json()["name"] == "Too hot"
    r = await api.patch(f"{RULES}/{rule['rule_id']}", json={"threshold": 35, "severity": 5})
    assert r.json()["threshold"] == 35 and r.json()["severity"] == 5
    listing = (await api.get(RULES)).json()
    assert listing["total"] == 1 and listing["rules"][0]["rule_id"] == rule["rule_id"]
    assert (await api.delete(f"{RULES}/{rule['rule_id']}")).status_code == 204
    assert (await api.get(f"{RULES}/{rule['rule_id']}")).status_code == 404


@pytest.mark.parametrize("bad", [
    {**RULE, "operator": ">"}, {**RULE, "severity": 9}, {**RULE, "severity": "apocalyptic"},
    {**RULE, "threshold": "high"}, {**RULE, "duration_seconds": -1}, {k: v for k, v in RULE.items() if k != "metric"},
    {**RULE, "device_ids": ["bad id"]}, {**RULE, "rule_type": "anomaly"},
])
async def test_bad_rule_definitions_are_422(api, bad):
    r = await api.post(RULES, json=bad)
    assert r.status_code == 422 and r.json()["detail"]


async def test_anomaly_rules_can_be_created(api):
    """An anomaly rule has no operator/threshold (z_threshold is its threshold); it used to be refused
    for lacking them, so neither the API nor the temp_anomaly template could create one."""
    r = await api.post(RULES, json={"name": "odd", "rule_type": "anomaly", "metric": "temp", "z_threshold": 3.5})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["z_threshold"] == 3.5
    r = await api.post("/api/v1/customer/alert-rule-templates/apply", json={"template_keys": ["temp_anomaly"]})
    assert r.status_code == 200 and len(r.json()["created"]) == 1, r.text


async def test_unknown_rule_fields_are_ignored(api):
    """A client sending a superset of the body (the documented system ignores unknown fields) still works."""
    r = await api.post(RULES, json={**RULE, "extra": 1, "sensor_type": "temperature"})
    assert r.status_code == 201, r.text
    assert "extra" not in r.json()


async def test_patch_rejects_nulls_and_empty_bodies(api):
    rid = (await api.post(RULES, json=RULE)).json()["rule_id"]
    assert (await api.patch(f"{RULES}/{rid}", json={})).status_code == 422
    assert (await api.patch(f"{RULES}/{rid}", json={"threshold": None})).status_code == 422


async def test_threshold_opens_one_alert_retriggers_and_auto_closes(api, devices):
    await api.post(RULES, json=RULE)
    await telemetry(api, "d1", 0, temp=25)
    await telemetry(api, "d1", 10, temp=31)
    await telemetry(api, "d1", 20, temp=33)
    alerts = (await api.get(ALERTS, params={"status": "OPEN"})).json()
    assert alerts["total"] == 1
    a = alerts["alerts"][0]
    assert (a["device_id"], a["severity"], a["trigger_value"], a["metric"]) == ("d1", 4, 31.0, "temp")
    await telemetry(api, "d1", 30, temp=29)
    detail = (await api.get(f"{ALERTS}/{a['alert_id']}")).json()
    assert detail["status"] == "CLOSED" and [t["action"] for t in detail["transitions"]] == ["OPENED", "AUTO_CLOSED"]


async def test_rule_changes_reach_actors_without_restart(api, devices):
    await telemetry(api, "d1", 0, temp=31)  # no rule yet
    rid = (await api.post(RULES, json=RULE)).json()["rule_id"]
    await telemetry(api, "d1", 10, temp=31)
    assert (await api.get(ALERTS)).json()["total"] == 1
    await api.patch(f"{RULES}/{rid}", json={"enabled": False})
    await telemetry(api, "d2", 10, temp=99)
    assert (await api.get(ALERTS)).json()["total"] == 1


async def test_device_scoped_rule_and_duration(api, devices):
    await api.post(RULES, json={**RULE, "device_ids": ["d2"], "duration_seconds": 60})
    await telemetry(api, "d1", 0, temp=99)
    await telemetry(api, "d2", 0, temp=99)
    await telemetry(api, "d2", 30, temp=99)
    assert (await api.get(ALERTS)).json()["total"] == 0
    await telemetry(api, "d2", 61, temp=99)
    (a,) = (await api.get(ALERTS)).json()["alerts"]
    assert a["device_id"] == "d2"


async def test_acknowledge_silence_close_record_who_and_when(api, devices):
    await api.post(RULES, json={**RULE, "auto_resolve": False})
    await telemetry(api, "d1", 0, temp=31)
    aid = (await api.get(ALERTS)).json()["alerts"][0]["alert_id"]
    r = await api.patch(f"{ALERTS}/{aid}/acknowledge")
    assert r.status_code == 200 and r.json()["status"] == "ACKNOWLEDGED" and r.json()["acknowledged_by"] == "customer_admin@acme"
    assert (await api.patch(f"{ALERTS}/{aid}/acknowledge")).status_code == 409
    r = await api.patch(f"{ALERTS}/{aid}/silence", json={"minutes": 15})
    assert r.json()["silenced"] is True and r.json()["silenced_until"]
    assert (await api.patch(f"{ALERTS}/{aid}/silence", json={"minutes": 0})).status_code == 422
    await telemetry(api, "d1", 10, temp=20)  # clears, but auto_resolve is off
    assert (await api.get(f"{ALERTS}/{aid}")).json()["status"] == "ACKNOWLEDGED"
    r = await api.patch(f"{ALERTS}/{aid}/close")
    assert r.json()["status"] == "CLOSED" and r.json()["closed_by"] == "customer_admin@acme"
    assert (await api.patch(f"{ALERTS}/{aid}/close")).status_code == 409
    actions = [t["action"] for t in (await api.get(f"{ALERTS}/{aid}")).json()["transitions"]]
    assert actions == ["OPENED", "ACKNOWLEDGED", "SILENCED", "CLOSED"]
    assert (await api.get(ALERTS, params={"status": "CLOSED"})).json()["total"] == 1


async def test_new_alert_after_clear_and_deleted_rule_closes_alerts(api, devices):
    rid = (await api.post(RULES, json=RULE)).json()["rule_id"]
    await telemetry(api, "d1", 0, temp=31)
    await telemetry(api, "d1", 10, temp=20)
    await telemetry(api, "d1", 20, temp=31)
    assert (await api.get(ALERTS, params={"status": "all"})).json()["total"] == 2
    assert (await api.get(ALERTS)).json()["total"] == 1  # OPEN by default, as documented
    assert (await api.delete(f"{RULES}/{rid}")).status_code == 204
    assert (await api.get(ALERTS, params={"status": "OPEN"})).json()["total"] == 0


async def test_alerts_of_other_tenants_are_404_and_viewers_cannot_act(api, devices):
    await api.post(RULES, json=RULE)
    await telemetry(api, "d1", 0, temp=31)
    aid = (await api.get(ALERTS)).json()["alerts"][0]["alert_id"]
    for path in ("", "/acknowledge", "/close"):
        method = "GET" if not path else "PATCH"
        assert (await api.request(method, f"{ALERTS}/{aid}{path}", tenant="globex")).status_code == 404
    assert (await api.get(ALERTS, tenant="globex")).json()["total"] == 0
    assert (await api.patch(f"{ALERTS}/{aid}/acknowledge", role="customer_viewer")).status_code == 403
    assert (await api.post(RULES, json=RULE, role="customer_viewer")).status_code == 403
    assert (await api.get(RULES, role="customer_viewer")).status_code == 200
    rid = (await api.get(RULES)).json()["rules"][0]["rule_id"]
    assert (await api.get(f"{RULES}/{rid}", tenant="globex")).status_code == 404
    assert (await api.patch(f"{RULES}/{rid}", tenant="globex", json={"threshold": 1})).status_code == 404
    assert (await api.delete(f"{RULES}/{rid}", tenant="globex")).status_code == 404
    assert (await api.get(ALERTS, params={"status": "BOGUS"})).status_code == 422


async def test_a_silent_device_opens_a_telemetry_gap_alert_without_any_message(api, devices):
    import time

    from pulse.actors.scheduler import Scheduler

    r = await api.post(RULES, json={"name": "silent", "rule_type": "telemetry_gap", "metric": "*", "gap_seconds": 60,
                                    "device_ids": ["d1"]})
    assert r.status_code == 201, r.text
    await telemetry(api, "d1", 0, temp=20)  # last heard of an hour ago (helpers.T0)
    scheduler = Scheduler(api.services.settings, api.services.runtime)
    scheduler.db = api.services.db
    assert await scheduler.tick_telemetry_gaps() == 1
    (a,) = (await api.get(ALERTS, params={"status": "OPEN"})).json()["alerts"]
    assert a["alert_type"] == "NO_TELEMETRY" and a["device_id"] == "d1"
    assert await scheduler.tick_telemetry_gaps() == 0  # not twice
    await telemetry(api, "d1", 3600 + time.time() % 1, temp=21)  # the device speaks again
    assert (await api.get(ALERTS, params={"status": "OPEN"})).json()["total"] == 0


async def test_rule_types_and_group_scope_through_the_api(api, devices):
    g = (await api.post("/api/v1/customer/device-groups", json={"name": "boilers"})).json()
    await api.request("PUT", f"/api/v1/customer/device-groups/{g['group_id']}/devices/d2")
    r = await api.post(RULES, json={"name": "avg hot", "rule_type": "window", "metric": "temp", "operator": "GT",
                                    "threshold": 30, "aggregation": "avg", "window_seconds": 600,
                                    "group_ids": [g["group_id"]]})
    assert r.status_code == 201, r.text
    await telemetry(api, "d1", 0, temp=99)
    await telemetry(api, "d2", 0, temp=99)
    (a,) = (await api.get(ALERTS)).json()["alerts"]
    assert a["device_id"] == "d2" and a["alert_type"] == "WINDOW"
    bad = await api.post(RULES, json={"name": "x", "rule_type": "window", "metric": "temp", "operator": "GT",
                                      "threshold": 1, "group_ids": ["nope"], "aggregation": "avg", "window_seconds": 60})
    assert bad.status_code == 422
    assert (await api.post(RULES, json={"name": "x", "rule_type": "window", "metric": "temp", "operator": "GT",
                                        "threshold": 1})).status_code == 422  # aggregation missing
    multi = await api.post(RULES, json={"name": "m", "conditions": [{"metric": "a", "operator": "GT", "threshold": 1},
                                                                     {"metric": "b", "operator": "LT", "threshold": 0}],
                                        "match": "any"})
    assert multi.status_code == 201
    r = await api.patch(f"{RULES}/{multi.json()['rule_id']}", json={"match": "all"})
    assert r.status_code == 200 and r.json()["config"]["match"] == "all"


async def test_scope_follows_tag_changes_without_restart(api, devices):
    await api.post(RULES, json={**RULE, "tags": ["hot-zone"]})
    await telemetry(api, "d1", 0, temp=99)
    assert (await api.get(ALERTS)).json()["total"] == 0
    await api.post("/api/v1/customer/devices/d1/tags/hot-zone")
    await telemetry(api, "d1", 10, temp=99)
    assert (await api.get(ALERTS)).json()["total"] == 1


async def test_backtest_agrees_with_live_evaluation_on_the_same_data(api, devices):
    import random

    from tests.serve.helpers import ts

    rng = random.Random(7)
    rule_body = {**RULE, "duration_seconds": 120, "clear_threshold": 28}
    await api.post(RULES, json=rule_body)
    for i in range(55):  # two devices, 55 one-minute readings hovering around the threshold
        for d in ("d1", "d2"):
            await telemetry(api, d, i * 60, seq=i, temp=29 + 3 * rng.uniform(-1, 1) + (4 if 20 < i < 35 else 0))
    await api.services.runtime.flush()
    live = (await api.get(ALERTS, params={"limit": 1000, "status": "ALL"})).json()["alerts"]
    r = await api.post(f"{RULES}/backtest", json={"rule": rule_body, "start": ts(-1), "end": ts(55 * 60)})
    assert r.status_code == 200, r.text
    bt = r.json()
    assert bt["rows_scanned"] == 110 and bt["devices"] == 2 and bt["total"] >= 2
    as_pairs = lambda alerts, key_open, key_close: sorted(  # noqa: E731
        (a["device_id"], a[key_open][:19], (a[key_close] or "")[:19]) for a in alerts)
    assert as_pairs(bt["alerts"], "opened_at", "closed_at") == as_pairs(live, "triggered_at", "closed_at")


async def test_backtest_validates_its_input(api):
    from tests.serve.helpers import ts

    assert (await api.post(f"{RULES}/backtest", json={"rule": RULE, "start": ts(60), "end": ts(0)})).status_code == 422
    assert (await api.post(f"{RULES}/backtest", json={"rule": {**RULE, "operator": "~"}, "start": ts(0),
                                                      "end": ts(60)})).status_code == 422
    r = await api.post(f"{RULES}/backtest", json={"rule": RULE, "start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"})
    assert r.status_code == 422 and "days" in r.json()["detail"]
    r = await api.post(f"{RULES}/backtest", json={"rule": RULE, "start": ts(0), "end": ts(60)}, tenant="globex")
    assert r.status_code == 200 and r.json()["total"] == 0


async def test_rule_templates_apply_idempotently_per_scope(api, devices):
    cat = (await api.get("/api/v1/customer/alert-rule-templates")).json()
    assert cat["total"] >= 10 and {"temp_high", "device_silent"} <= {t["key"] for t in cat["templates"]}
    url = "/api/v1/customer/alert-rule-templates/apply"
    r = await api.post(url, json={"template_keys": ["temp_high", "battery_low"], "device_ids": ["d1"]})
    assert r.status_code == 200 and len(r.json()["created"]) == 2
    again = (await api.post(url, json={"template_keys": ["temp_high"], "device_ids": ["d1"]})).json()
    assert again["created"] == [] and len(again["existing"]) == 1
    other = (await api.post(url, json={"template_keys": ["temp_high"], "device_ids": ["d2"]})).json()
    assert len(other["created"]) == 1
    assert (await api.get(RULES)).json()["total"] == 3
    assert (await api.post(url, json={"template_keys": ["nope"]})).status_code == 422
    assert (await api.post(url, json={"template_keys": ["temp_high"]}, role="customer_viewer")).status_code == 403


async def test_trend_counts_alerts_per_bucket(api, devices):
    from tests.serve.helpers import T0, ts

    await api.post(RULES, json=RULE)
    await telemetry(api, "d1", 0, temp=31)
    await telemetry(api, "d2", 0, temp=31)
    await telemetry(api, "d2", 60, temp=20)
    r = (await api.get(f"{ALERTS}/trend", params={"start": ts(-3600), "end": ts(3600)})).json()
    assert len(r["buckets"]) == 2 and sum(b["total"] for b in r["buckets"]) == 2
    b = next(b for b in r["buckets"] if b["total"])
    assert b["by_severity"] == {"major": 2} and b["by_status"] == {"OPEN": 1, "CLOSED": 1}
    assert sum(h["opened"] for h in r["trend"]) == 2 and sum(h["closed"] for h in r["trend"]) == 1  # documented form
    hours = (await api.get(f"{ALERTS}/trend", params={"hours": 2, "end": ts(3600)})).json()
    assert hours["start"] == r["start"] and len(hours["trend"]) == 2
    assert (await api.get(f"{ALERTS}/trend", params={"hours": 169})).status_code == 422
    assert (await api.get(f"{ALERTS}/trend", params={"hours": 2, "start": ts(0)})).status_code == 422
    assert (await api.get(f"{ALERTS}/trend", params={"start": ts(10), "end": ts(0)})).status_code == 422
    assert (await api.get(f"{ALERTS}/trend", params={"bucket": "week"})).status_code == 422
    assert (await api.get(f"{ALERTS}/trend", tenant="globex")).json()["buckets"][0]["total"] == 0


async def test_a_device_that_goes_silent_opens_a_no_heartbeat_alert(api, devices):
    from pulse.actors.scheduler import Scheduler

    await telemetry(api, "d1", 0, temp=20)  # an hour ago: silent since
    scheduler = Scheduler(api.services.settings, api.services.runtime)
    assert await scheduler.tick_presence() == 1
    (a,) = (await api.get(ALERTS, params={"status": "OPEN"})).json()["alerts"]
    assert a["alert_type"] == "NO_HEARTBEAT" and a["fingerprint"] == "NO_HEARTBEAT:d1" and a["rule_id"] is None
    assert a["summary"].startswith("No heartbeat: silent for")
    assert await scheduler.tick_presence() == 0


async def test_a_rule_scope_needs_every_key_it_sets(api, devices):
    """One scope reading (pulse.domain.scopes): `tags` and `device_ids` together select d1 only when it is tagged."""
    await api.post(RULES, json={**RULE, "device_ids": ["d1", "d2"], "tags": ["hot-zone"]})
    await api.post("/api/v1/customer/devices/d2/tags/hot-zone")
    await telemetry(api, "d1", 0, temp=99)
    await telemetry(api, "d2", 0, temp=99)
    assert [a["device_id"] for a in (await api.get(ALERTS)).json()["alerts"]] == ["d2"]


async def test_a_scoped_rule_sees_devices_created_or_moved_after_it_loaded(api, devices):
    """Scopes are resolved when rules load: creating a device or changing its site/status re-resolves them."""
    g = (await api.post("/api/v1/customer/device-groups", json={"name": "active", "query": {"status": "ACTIVE"}})).json()
    await api.patch("/api/v1/customer/devices/d1", json={"status": "SUSPENDED"})
    await api.post(RULES, json={**RULE, "site_ids": ["plant-a"]})
    await api.post(RULES, json={**RULE, "name": "active", "metric": "rpm", "group_ids": [g["group_id"]]})
    await telemetry(api, "d2", 0, temp=20)  # the tenant's rules are now loaded in the shards
    await api.post("/api/v1/customer/devices", json={"device_id": "d3", "site_id": "plant-a"})
    await telemetry(api, "d3", 10, temp=99)
    await api.patch("/api/v1/customer/devices/d2", json={"site_id": "plant-a"})
    await telemetry(api, "d2", 10, temp=99)
    await api.patch("/api/v1/customer/devices/d1", json={"status": "ACTIVE"})  # joins the dynamic group
    await telemetry(api, "d1", 20, rpm=99)
    alerts = (await api.get(ALERTS)).json()["alerts"]
    assert sorted((a["device_id"], a["metric"]) for a in alerts) == [("d1", "rpm"), ("d2", "temp"), ("d3", "temp")]
