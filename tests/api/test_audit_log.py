"""The tenant audit trail: written once for every successful customer change, read back filtered."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pulse.actors.scheduler import Scheduler
from pulse.domain.audit import describe, is_audited
from pulse.storage.tables import audit_log

LOG = "/api/v1/customer/audit-log"
DEVICES = "/api/v1/customer/devices"
DOCUMENTED_KEYS = {"timestamp", "event_type", "category", "severity", "entity_type", "entity_id", "entity_name", "action",
                   "message", "details", "source_service", "actor_type", "actor_id", "actor_name"}
RULE = {"name": "hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "critical"}


async def events(api, tenant="acme", **params):
    r = await api.get(LOG, tenant=tenant, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def _fleet_changes(api):
    assert (await api.post(DEVICES, json={"device_id": "d1", "name": "pump"})).status_code == 201
    assert (await api.patch(f"{DEVICES}/d1", json={"name": "pump 2"})).status_code == 200
    r = await api.post("/api/v1/customer/alert-rules", json=RULE)
    assert r.status_code == 201, r.text
    assert (await api.post(DEVICES, json={"device_id": "d2"})).status_code == 201
    assert (await api.delete(f"{DEVICES}/d2")).status_code in (200, 204)
    return r.json()


async def test_each_change_is_recorded_once_newest_first_with_who_what_and_where(api):
    rule = await _fleet_changes(api)
    page = await events(api)
    assert page["total"] == 5 and page["limit"] == 100 and page["offset"] == 0
    got = [(e["event_type"], e["entity_id"]) for e in page["events"]]
    assert got == [("device.delete", "d2"), ("device.create", "d2"), ("alert_rule.create", str(rule["rule_id"])),
                   ("device.update", "d1"), ("device.create", "d1")]
    assert all(DOCUMENTED_KEYS | {"ip", "request_id"} <= set(e) for e in page["events"])
    update = page["events"][3]
    assert update["action"] == "update" and update["entity_type"] == "device" and update["category"] == "devices"
    assert update["entity_name"] == "pump 2" and update["severity"] == "info"
    assert update["actor_type"] == "user" and update["actor_id"] == "customer_admin@acme"
    assert update["details"]["role"] == "customer_admin" and update["details"]["method"] == "PATCH"
    assert update["details"]["path"] == "/api/v1/customer/devices/{device_id}"
    assert update["ip"] == "127.0.0.1" and update["request_id"] and update["source_service"] == "api"
    assert page["events"][0]["severity"] == "warning"
    assert "customer_admin@acme update device d1" == update["message"]


async def test_reads_and_failed_changes_are_not_recorded(api):
    await api.get(DEVICES)
    assert (await api.patch(f"{DEVICES}/nope", json={"name": "x"})).status_code == 404
    assert (await api.post(DEVICES, json={"device_id": "d1"}, role="customer_viewer")).status_code == 403
    sql = await api.post("/api/v1/customer/analytics/sql", json={"sql": "SELECT 1 AS one"})  # a read sent as POST
    assert sql.status_code == 200, sql.text
    assert (await events(api))["total"] == 0


async def test_a_change_whose_row_cannot_be_written_still_succeeds(api):
    async with api.services.db.begin() as conn:
        await conn.execute(sa.text("DROP TABLE audit_log"))
    try:
        r = await api.post(DEVICES, json={"device_id": "d1"})
        assert r.status_code == 201 and r.headers["x-request-id"]
        assert (await api.get(f"{DEVICES}/d1")).status_code == 200
    finally:  # the PostgreSQL test database is shared by the session
        async with api.services.db.begin() as conn:
            await conn.run_sync(audit_log.create)


async def test_request_id_is_honoured_or_generated_and_stored(api):
    mine = f"req-{uuid.uuid4().hex}"
    r = await api.post(DEVICES, json={"device_id": "d1"},
                       headers={**api.headers(), "X-Request-ID": mine})
    assert r.headers["x-request-id"] == mine
    r = await api.patch(f"{DEVICES}/d1", json={"name": "n"}, headers={**api.headers(), "X-Request-ID": "bad id\t"})
    generated = r.headers["x-request-id"]
    assert generated and generated != "bad id\t"
    ids = [e["request_id"] for e in (await events(api))["events"]]
    assert ids == [generated, mine]
    assert (await api.get(DEVICES)).headers["x-request-id"]  # every response carries one


async def test_filters_and_pages(api):
    await _fleet_changes(api)
    assert [e["entity_id"] for e in (await events(api, entity_type="device", entity_id="d1"))["events"]] == ["d1", "d1"]
    assert (await events(api, category="alert_rules"))["total"] == 1
    assert [e["action"] for e in (await events(api, severity="warning"))["events"]] == ["delete"]
    assert (await events(api, search="UPDATE DEVICE"))["total"] == 1  # case-insensitive
    assert (await events(api, search="%"))["total"] == 0  # wildcards are literal
    assert (await events(api, search="_"))["total"] == 5  # customer_admin@acme
    first = await events(api, limit=2)
    second = await events(api, limit=2, offset=2)
    assert first["total"] == second["total"] == 5 and second["offset"] == 2
    everything = [e["request_id"] for e in (await events(api))["events"]]
    assert [e["request_id"] for e in first["events"] + second["events"]] == everything[:4]
    now = datetime.now(timezone.utc)
    assert (await events(api, start=(now - timedelta(minutes=5)).isoformat(), end=now.isoformat()))["total"] == 5
    assert (await events(api, start=(now + timedelta(minutes=5)).isoformat()))["total"] == 0
    assert (await events(api, end="2020-01-01T00:00:00"))["total"] == 0  # no offset: UTC


@pytest.mark.parametrize("params", [{"start": "yesterday"}, {"end": "2026-13-45"}, {"limit": 0}, {"limit": 1001},
                                    {"start": "2026-02-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}])
async def test_bad_query_is_a_4xx_with_detail(api, params):
    r = await api.get(LOG, params=params)
    assert 400 <= r.status_code < 500 and r.json()["detail"], r.text


async def test_another_tenants_events_are_never_visible(api):
    await _fleet_changes(api)
    assert (await api.post(DEVICES, tenant="globex", json={"device_id": "g1"})).status_code == 201
    theirs = await events(api, tenant="globex")
    assert [e["entity_id"] for e in theirs["events"]] == ["g1"]
    assert (await events(api, entity_id="g1"))["total"] == 0
    assert (await events(api))["total"] == 5


async def test_viewer_may_read_the_trail(api):
    await api.post(DEVICES, json={"device_id": "d1"})
    r = await api.get(LOG, role="customer_viewer")
    assert r.status_code == 200 and r.json()["total"] == 1


async def test_retention_tick_drops_rows_older_than_the_setting(api):
    await api.post(DEVICES, json={"device_id": "d1"})
    scheduler = Scheduler(api.services.settings, api.services.runtime)
    scheduler.db = api.services.db
    assert await scheduler.tick_audit_retention() == 0  # 90 days: kept
    assert (await events(api))["total"] == 1
    api.services.settings.audit_retention_days = 1e-9
    assert await scheduler.tick_audit_retention() == 1
    assert (await events(api))["total"] == 0


@pytest.mark.parametrize("method, template, params, result, expected", [
    ("POST", "/api/v1/customer/devices", {}, {"device_id": "d1"}, ("device", "d1", "create")),
    ("PATCH", "/api/v1/customer/alerts/{alert_id}/acknowledge", {"alert_id": "7"}, None, ("alert", "7", "acknowledge")),
    ("POST", "/api/v1/customer/devices/{device_id}/tokens/rotate", {"device_id": "d1"}, None,
     ("device", "d1", "tokens.rotate")),
    ("PUT", "/api/v1/customer/devices/{device_id}/tags", {"device_id": "d1"}, None, ("device", "d1", "tags.update")),
    ("DELETE", "/api/v1/customer/device-groups/{group_id}/devices/{device_id}", {"group_id": "g", "device_id": "d"},
     None, ("device_group", "g", "devices.delete")),
    ("POST", "/api/v1/customer/escalation-policies", {}, {"policy_id": "p1"}, ("escalation_policy", "p1", "create")),
    ("POST", "/api/v1/customer/alert-rules/backtest", {}, {"alerts": []}, ("alert_rule", None, "backtest")),
])
def test_entity_and_action_come_from_the_route(method, template, params, result, expected):
    a = describe(method, template, params, result)
    assert (a.entity_type, a.entity_id, a.action) == expected


def test_posts_that_only_compute_an_answer_are_reads():
    assert not is_audited("POST", "/api/v1/customer/analytics/query")
    assert not is_audited("POST", "/api/v1/customer/alert-rules/backtest")
    assert is_audited("POST", "/api/v1/customer/exports") and is_audited("POST", "/api/v1/customer/alert-rules")
