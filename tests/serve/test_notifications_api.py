"""Notification channels, routing rules and the job log over HTTP: CRUD, write-only secrets (masked on
read, encrypted at rest), tenant isolation, roles, validation, and real test sends to local targets."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pulse.services.notifier import Notifier
from pulse.storage.secrets import box_for
from pulse.storage.tables import notification_channels
from tests.integrations.helpers import Reply, http_targets, sample_alert  # noqa: F401

CHANNELS = "/api/v1/customer/notification-channels"
RULES = "/api/v1/customer/notification-routing-rules"
JOBS = "/api/v1/customer/notification-jobs"

WEBHOOK_SECRET = "whsec-AAAA-0123456789"
SECRETS = {  # type -> (config, the secret values that must never be read back)
    "webhook": ({"url": "https://hooks.example/in", "secret": WEBHOOK_SECRET,
                 "headers": {"Authorization": "Bearer hdr-secret-0123456789"}},
                [WEBHOOK_SECRET, "hdr-secret-0123456789"]),
    "email": ({"smtp_host": "smtp.example", "smtp_port": 587, "username": "pulse", "password": "smtp-pw-0123456789",
               "starttls": True, "from": "alerts@pulse.example", "recipients": ["ops@acme.example"]},
              ["smtp-pw-0123456789"]),
    "slack": ({"webhook_url": "https://hooks.slack.com/services/T01/B02/slacksecret0123"}, ["slacksecret0123"]),
    "teams": ({"webhook_url": "https://acme.webhook.office.com/webhookb2/teamssecret0123"}, ["teamssecret0123"]),
    "pagerduty": ({"routing_key": "pdroutingkey0123456789abcdef0123"}, ["pdroutingkey0123456789abcdef0123"]),
    "mqtt": ({"topic": "tenant/{tenant_id}/alerts/{device_id}", "qos": 1}, []),
}


async def make_channel(api, channel_type="webhook", config=None, tenant="acme", **fields) -> dict:
    body = {"name": f"{channel_type}-{uuid.uuid4().hex[:8]}", "channel_type": channel_type,
            "config": config if config is not None else SECRETS[channel_type][0], **fields}
    r = await api.post(CHANNELS, tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def make_rule(api, channel_ids, tenant="acme", **fields) -> dict:
    r = await api.post(RULES, tenant=tenant, json={"channel_ids": channel_ids, **fields})
    assert r.status_code == 201, r.text
    return r.json()


async def raw_row(api, channel_id) -> dict:
    async with api.services.db.connect() as conn:
        row = (await conn.execute(sa.select(notification_channels).where(
            notification_channels.c.channel_id == channel_id))).one()
        return dict(row._mapping)


# ---- channels ----------------------------------------------------------------------------------
@pytest.mark.parametrize("channel_type", sorted(SECRETS))
async def test_channels_of_every_type_keep_secrets_write_only_and_encrypted(api, channel_type):
    config, secrets = SECRETS[channel_type]
    created = await make_channel(api, channel_type, config)
    assert created["channel_type"] == channel_type and created["enabled"] is True and created["channel_id"]
    listed = (await api.get(CHANNELS)).json()
    got = (await api.get(f"{CHANNELS}/{created['channel_id']}")).json()
    assert got == created and listed["channels"] == [created] and listed["total"] == 1
    for text in (json.dumps(created), json.dumps(listed)):
        for secret in secrets:
            assert secret not in text
    row = await raw_row(api, created["channel_id"])
    for secret in secrets:
        assert secret not in json.dumps(row, default=str)  # not in plain text at rest either
    stored = box_for(api.services.settings).decrypt(row["secrets"]) if secrets else {}
    assert all(any(s in json.dumps(v) for v in stored.values()) for s in secrets)
    for name, value in config.items():  # everything else reads back as written
        if name in stored:
            shown = created["config"][name]
            assert all(v.startswith("***") for v in (shown.values() if isinstance(shown, dict) else [shown]))
        else:
            assert created["config"][name] == value


async def test_masks_show_the_last_four_characters(api):
    ch = await make_channel(api, "webhook")
    assert ch["config"]["secret"] == "***" + WEBHOOK_SECRET[-4:]
    assert ch["config"]["headers"] == {"Authorization": "***6789"}
    ch = await make_channel(api, "pagerduty")
    assert ch["config"] == {"routing_key": "***0123", "events_url": "https://events.pagerduty.com/v2/enqueue"}


async def test_type_is_accepted_as_an_alias_and_disabled_channels_list(api):
    r = await api.post(CHANNELS, json={"name": "m", "type": "mqtt", "config": {}, "enabled": False,
                                       "rate_limit_per_minute": 30})
    assert r.status_code == 201, r.text
    assert r.json()["config"] == {"topic": "tenant/{tenant_id}/alerts/{device_id}", "qos": 1, "retain": False}
    assert r.json()["enabled"] is False and r.json()["rate_limit_per_minute"] == 30
    await make_channel(api, "slack")
    r = (await api.get(CHANNELS, params={"channel_type": "mqtt"})).json()
    assert [c["name"] for c in r["channels"]] == ["m"] and r["total"] == 1


async def test_put_keeps_omitted_or_masked_secrets_and_replaces_given_ones(api, http_targets):
    target = await http_targets()
    ch = await make_channel(api, "webhook", {"url": "https://old.example", "secret": WEBHOOK_SECRET})
    url = f"{CHANNELS}/{ch['channel_id']}"
    r = await api.request("PUT", url, json={"config": {**ch["config"], "url": target.url}})  # mask sent back
    assert r.status_code == 200 and r.json()["config"] == {"url": target.url, "secret": ch["config"]["secret"]}
    r = await api.request("PUT", url, json={"name": "renamed", "config": {"url": target.url}})  # secret left out
    assert r.status_code == 200 and r.json()["name"] == "renamed"

    async def signed_with() -> str:
        n = len(target.requests)
        assert (await api.post(f"{url}/test")).json()["ok"] is True
        req = target.requests[n]
        for key in (WEBHOOK_SECRET, "new-secret-0123456789"):
            if req.headers["x-signature-256"] == "sha256=" + hmac.new(key.encode(), req.body, hashlib.sha256).hexdigest():
                return key
        raise AssertionError("signed with an unknown key")

    assert await signed_with() == WEBHOOK_SECRET
    r = await api.request("PUT", url, json={"config": {"url": target.url, "secret": "new-secret-0123456789"}})
    assert r.json()["config"]["secret"] == "***6789"
    assert await signed_with() == "new-secret-0123456789"
    r = await api.request("PUT", url, json={"config": {"url": target.url, "secret": None}})  # removed
    assert r.status_code == 200 and "secret" not in r.json()["config"]
    r = await api.request("PUT", url, json={"config": {"url": target.url, "secret": "***6789"}})
    assert r.status_code == 422  # nothing stored to keep


async def test_put_validates_and_keeps_the_type(api):
    ch = await make_channel(api, "slack")
    url = f"{CHANNELS}/{ch['channel_id']}"
    assert (await api.request("PUT", url, json={"channel_type": "teams"})).status_code == 409
    assert (await api.request("PUT", url, json={"channel_type": "slack", "enabled": False})).json()["enabled"] is False
    r = await api.request("PUT", url, json={"config": {"webhook_url": "ftp://x"}})
    assert r.status_code == 422 and "webhook_url" in r.json()["detail"]
    for body in ({}, {"name": None}, {"config": None}, {"bogus": 1}):
        assert (await api.request("PUT", url, json=body)).status_code == 422, body


@pytest.mark.parametrize("body", [
    {"name": "x", "channel_type": "sms", "config": {}},
    {"name": "x", "channel_type": "webhook", "config": {"url": "file:///etc/passwd"}},
    {"name": "x", "channel_type": "webhook", "config": {"url": "gopher://h.example"}},
    {"name": "x", "channel_type": "webhook", "config": {}},
    {"name": "x", "channel_type": "email", "config": {"smtp_host": "h", "smtp_port": 25, "recipients": ["a@b.example"]}},
    {"name": "x", "channel_type": "email", "config": {"smtp_host": "h", "smtp_port": 25, "from": "a@b.example",
                                                      "recipients": ["nope"]}},
    {"name": "x", "channel_type": "slack", "config": {"webhook_url": "hooks.slack.com/x"}},
    {"name": "x", "channel_type": "teams", "config": {}},
    {"name": "x", "channel_type": "pagerduty", "config": {"routing_key": "k", "events_url": "ws://x.example"}},
    {"name": "x", "channel_type": "mqtt", "config": {"topic": "tenant/globex/alerts"}},
    {"name": "x", "channel_type": "mqtt", "config": {"topic": "tenant/{tenant_id}/device/{device_id}/commands"}},
    {"name": "", "channel_type": "mqtt", "config": {}},
    {"name": "x", "channel_type": "mqtt", "config": {}, "rate_limit_per_minute": 0},
    {"name": "x", "channel_type": "mqtt"},
])
async def test_bad_channels_are_422(api, body):
    r = await api.post(CHANNELS, json=body)
    assert r.status_code == 422, r.text
    assert (await api.get(CHANNELS)).json()["total"] == 0


async def test_channel_names_are_unique_per_tenant(api):
    await make_channel(api, "mqtt", {}, name="ops")
    assert (await api.post(CHANNELS, json={"name": "ops", "channel_type": "mqtt", "config": {}})).status_code == 409
    await make_channel(api, "mqtt", {}, tenant="globex", name="ops")


async def test_another_tenants_channels_rules_and_jobs_are_404_or_invisible(api):
    ch = await make_channel(api, "mqtt", {})
    rule = await make_rule(api, [ch["channel_id"]])
    url = f"{CHANNELS}/{ch['channel_id']}"
    for method, path, body in (("GET", url, None), ("PUT", url, {"enabled": False}), ("DELETE", url, None),
                               ("POST", f"{url}/test", None), ("PUT", f"{RULES}/{rule['rule_id']}", {"priority": 1}),
                               ("DELETE", f"{RULES}/{rule['rule_id']}", None)):
        r = await api.request(method, path, tenant="globex", json=body)
        assert r.status_code == 404, (method, path, r.text)
    r = await api.post(RULES, tenant="globex", json={"channel_ids": [ch["channel_id"]]})  # can't route to it
    assert r.status_code == 422
    for path in (CHANNELS, RULES, JOBS):
        assert (await api.get(path, tenant="globex")).json()["total"] == 0
    assert (await api.get(url)).json()["enabled"] is True  # untouched


async def test_viewers_read_but_cannot_write(api):
    ch = await make_channel(api, "mqtt", {})
    rule = await make_rule(api, [ch["channel_id"]])
    url = f"{CHANNELS}/{ch['channel_id']}"
    for path in (CHANNELS, url, RULES, JOBS):
        assert (await api.get(path, role="customer_viewer")).status_code == 200, path
    for method, path, body in (("POST", CHANNELS, {"name": "v", "channel_type": "mqtt", "config": {}}),
                               ("PUT", url, {"enabled": False}), ("DELETE", url, None), ("POST", f"{url}/test", None),
                               ("POST", RULES, {"channel_ids": [ch["channel_id"]]}),
                               ("PUT", f"{RULES}/{rule['rule_id']}", {"priority": 1}),
                               ("DELETE", f"{RULES}/{rule['rule_id']}", None)):
        r = await api.request(method, path, role="customer_viewer", json=body)
        assert r.status_code == 403, (method, path)
    assert (await api.client.get(CHANNELS)).status_code == 401


async def test_delete_channel_refused_while_a_rule_routes_to_it(api):
    ch = await make_channel(api, "mqtt", {})
    rule = await make_rule(api, [ch["channel_id"]])
    r = await api.delete(f"{CHANNELS}/{ch['channel_id']}")
    assert r.status_code == 409 and rule["rule_id"] in r.json()["detail"]
    assert (await api.delete(f"{RULES}/{rule['rule_id']}")).status_code == 204
    assert (await api.delete(f"{CHANNELS}/{ch['channel_id']}")).status_code == 204
    assert (await api.get(f"{CHANNELS}/{ch['channel_id']}")).status_code == 404
    assert (await api.delete(f"{CHANNELS}/{ch['channel_id']}")).status_code == 404


# ---- test sends --------------------------------------------------------------------------------
async def test_test_send_delivers_a_signed_test_message_now(api, http_targets):
    target = await http_targets()
    ch = await make_channel(api, "webhook", {"url": target.url, "secret": WEBHOOK_SECRET}, enabled=False)
    r = await api.post(f"{CHANNELS}/{ch['channel_id']}/test")
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["ok"], result["status_code"], result["error"], result["channel_id"]) == (
        True, 200, None, ch["channel_id"])
    [req] = target.requests
    assert req.headers["x-signature-256"] == "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), req.body,
                                                                  hashlib.sha256).hexdigest()
    body = req.json()
    assert body["event"] == "TEST" and body["test"] is True and body["delivery_id"] == result["delivery_id"]
    assert body["alert"]["device_id"] == "pulse-test"


async def test_test_send_reports_failures(api, http_targets):
    failing = await http_targets(default=Reply(503, b"maintenance"))
    down = await http_targets(start=False)
    ch = await make_channel(api, "webhook", {"url": failing.url})
    r = (await api.post(f"{CHANNELS}/{ch['channel_id']}/test")).json()
    assert (r["ok"], r["retryable"], r["status_code"]) == (False, True, 503) and "maintenance" in r["error"]
    ch = await make_channel(api, "slack", {"webhook_url": down.url + "/secret-path-0123"})
    r = (await api.post(f"{CHANNELS}/{ch['channel_id']}/test")).json()
    assert r["ok"] is False and r["status_code"] is None and "secret-path" not in r["error"]


async def test_pagerduty_test_triggers_then_resolves(api, http_targets):
    target = await http_targets(default=202)
    ch = await make_channel(api, "pagerduty", {"routing_key": "pdroutingkey0123456789abcdef0123",
                                               "events_url": target.url})
    r = (await api.post(f"{CHANNELS}/{ch['channel_id']}/test")).json()
    assert r["ok"] is True and r["extra"]["resolve"]["ok"] is True
    trigger, resolve = (q.json() for q in target.requests)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] and trigger["payload"]["severity"] == "info"


async def test_mqtt_test_publishes_on_the_tenant_topic(api, embedded_broker):
    ch = await make_channel(api, "mqtt", {"topic": "tenant/{tenant_id}/alerts/{device_id}"})
    async with embedded_broker.client() as sub:
        await sub.subscribe("tenant/acme/alerts/#", qos=1)
        r = (await api.post(f"{CHANNELS}/{ch['channel_id']}/test")).json()
        assert r["ok"] is True, r
        msg = await asyncio.wait_for(anext(aiter(sub.messages)), 5)
    assert str(msg.topic) == "tenant/acme/alerts/pulse-test" and json.loads(msg.payload)["event"] == "TEST"


# ---- routing rules -----------------------------------------------------------------------------
async def test_routing_rule_crud_and_evaluation_order(api):
    a = await make_channel(api, "mqtt", {}, name="a")
    b = await make_channel(api, "mqtt", {}, name="b")
    late = await make_rule(api, [a["channel_id"]], name="late", priority=500)
    first = await make_rule(api, [b["channel_id"], a["channel_id"], b["channel_id"]], name="pager",
                            priority=10, min_severity="critical", stop=True, alert_types=["threshold", "NO_HEARTBEAT"],
                            tags=["roof"], site_ids=[], events=["OPEN", "CLOSED"], throttle_minutes=15,
                            active_hours={"start": "22:00", "end": "06:00", "timezone": "Europe/Berlin",
                                          "days": ["fri", "sat"]})
    assert first["channel_ids"] == [b["channel_id"], a["channel_id"]] and first["min_severity"] == 5
    assert first["alert_types"] == ["THRESHOLD", "NO_HEARTBEAT"] and first["site_ids"] is None
    assert first["active_hours"]["timezone"] == "Europe/Berlin" and first["stop"] is True
    assert late["events"] == ["OPEN"] and late["enabled"] is True and late["throttle_minutes"] == 0
    r = (await api.get(RULES)).json()
    assert [x["name"] for x in r["rules"]] == ["pager", "late"] and r["total"] == 2
    r = await api.request("PUT", f"{RULES}/{late['rule_id']}", json={"priority": 1, "min_severity": 2,
                                                                      "device_ids": ["d1"]})
    assert r.status_code == 200 and (r.json()["priority"], r.json()["min_severity"]) == (1, 2)
    assert r.json()["name"] == "late" and r.json()["device_ids"] == ["d1"]
    assert [x["name"] for x in (await api.get(RULES, params={"limit": 1})).json()["rules"]] == ["late"]
    r = await api.request("PUT", f"{RULES}/{late['rule_id']}", json={"min_severity": None, "active_hours": None})
    assert r.json()["min_severity"] is None
    assert (await api.delete(f"{RULES}/{late['rule_id']}")).status_code == 204
    assert (await api.delete(f"{RULES}/{late['rule_id']}")).status_code == 404
    assert (await api.get(RULES)).json()["total"] == 1


@pytest.mark.parametrize("fields", [
    {"channel_ids": []},
    {"min_severity": 6},
    {"min_severity": "apocalyptic"},
    {"events": ["REOPENED"]},
    {"events": []},
    {"active_hours": {"start": "25:00", "end": "06:00"}},
    {"active_hours": {"start": "08:00", "end": "08:00"}},
    {"active_hours": {"start": "08:00", "end": "18:00", "timezone": "Mars/Olympus"}},
    {"active_hours": {"start": "08:00", "end": "18:00", "days": ["funday"]}},
    {"throttle_minutes": -1},
    {"tags": ["bad tag!"]},
    {"device_prefixes": ["pump-"]},
    {"device_tag_key": "env", "device_tag_val": "prod"},
])
async def test_bad_routing_rules_are_422(api, fields):
    ch = await make_channel(api, "mqtt", {})
    r = await api.post(RULES, json={"channel_ids": [ch["channel_id"]], **fields})
    assert r.status_code == 422, r.text


async def test_documented_names_and_unknown_fields(api):
    """`is_enabled`, `channel_id`, `alert_type`, `deliver_on` (documented) work; unknown fields are ignored."""
    r = await api.post(CHANNELS, json={"name": "doc", "channel_type": "mqtt", "config": {}, "is_enabled": False,
                                       "color": "red"})
    assert r.status_code == 201, r.text
    ch = r.json()
    assert (ch["enabled"], ch["is_enabled"], ch["tenant_id"]) == (False, False, "acme")
    r = await api.post(RULES, json={"channel_id": ch["channel_id"], "alert_type": "threshold", "color": "red",
                                    "deliver_on": ["OPEN", "CLOSED"], "is_enabled": False})
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["channel_ids"], rule["alert_types"], rule["events"], rule["enabled"]) == (
        [ch["channel_id"]], ["THRESHOLD"], ["OPEN", "CLOSED"], False)
    assert (rule["channel_id"], rule["deliver_on"], rule["is_enabled"]) == (ch["channel_id"], ["OPEN", "CLOSED"], False)


async def test_rules_only_route_to_the_tenants_channels(api):
    ch = await make_channel(api, "mqtt", {})
    r = await api.post(RULES, json={"channel_ids": [ch["channel_id"], "no-such-channel"]})
    assert r.status_code == 422 and "no-such-channel" in r.json()["detail"]
    rule = await make_rule(api, [ch["channel_id"]])
    r = await api.request("PUT", f"{RULES}/{rule['rule_id']}", json={"channel_ids": ["no-such-channel"]})
    assert r.status_code == 422
    for body in ({}, {"channel_ids": None}, {"events": None}):
        assert (await api.request("PUT", f"{RULES}/{rule['rule_id']}", json=body)).status_code == 422


# ---- jobs --------------------------------------------------------------------------------------
async def test_jobs_list_shows_status_attempts_errors_and_log_with_filters(api, http_targets):
    ok = await http_targets()
    bad = await http_targets(default=Reply(503, b"busy"))
    good_ch = await make_channel(api, "webhook", {"url": ok.url})
    bad_ch = await make_channel(api, "webhook", {"url": bad.url})
    notifier = Notifier(api.services.settings, api.services.db)
    # A day ahead: the runtime's own notifier loop runs too and must not find these jobs (or their retries) due.
    later = datetime.now(timezone.utc) + timedelta(days=1)
    try:
        for alert_id in (1, 2, 3):
            await notifier.enqueue("acme", sample_alert(alert_id), "OPEN", [good_ch["channel_id"], bad_ch["channel_id"]],
                                   now=later)
        await notifier.run_due(now=later)
    finally:
        await notifier.stop()
    r = (await api.get(JOBS)).json()
    assert r["total"] == 6 and [j["job_id"] for j in r["jobs"]] == sorted((j["job_id"] for j in r["jobs"]), reverse=True)
    failed = (await api.get(JOBS, params={"channel_id": bad_ch["channel_id"]})).json()["jobs"]
    assert {(j["status"], j["attempts"], j["last_status_code"]) for j in failed} == {("PENDING", 1, 503)}
    assert all("busy" in j["last_error"] and j["next_attempt_at"] and j["completed_at"] is None for j in failed)
    assert failed[0]["log"][0]["status_code"] == 503 and failed[0]["log"][0]["ok"] is False
    done = (await api.get(JOBS, params={"status": "COMPLETED", "alert_id": 2})).json()
    assert done["total"] == 1
    [job] = done["jobs"]
    assert (job["alert_id"], job["channel_id"], job["event"], job["attempts"]) == (2, good_ch["channel_id"], "OPEN", 1)
    assert job["completed_at"] and job["created_at"] and job["updated_at"] and job["last_error"] is None
    assert "payload" not in job
    page = (await api.get(JOBS, params={"limit": 2, "offset": 2})).json()
    assert len(page["jobs"]) == 2 and (page["limit"], page["offset"], page["total"]) == (2, 2, 6)
    assert (await api.get(JOBS, params={"status": "DONE"})).status_code == 422
    assert (await api.get(JOBS, params={"limit": 0})).status_code == 422
