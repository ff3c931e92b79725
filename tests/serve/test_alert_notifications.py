"""Alert lifecycle -> routing -> real webhook deliveries; maintenance and silence suppress sends, not alerts."""
import asyncio
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from tests.integrations.helpers import HttpTarget, SmtpTarget
from tests.serve.helpers import telemetry

SECRET = "whsec-0123456789abcdef"
RULE = {"name": "hot", "metric": "temp", "operator": "GT", "threshold": 30, "severity": "critical"}


@pytest.fixture
async def hook(api):
    target = await HttpTarget().start()
    ch = await api.post("/api/v1/customer/notification-channels",
                        json={"name": "ops", "channel_type": "webhook", "config": {"url": target.url, "secret": SECRET}})
    assert ch.status_code == 201, ch.text
    r = await api.post("/api/v1/customer/notification-routing-rules",
                       json={"channel_ids": [ch.json()["channel_id"]], "events": ["OPEN", "ACKNOWLEDGED", "CLOSED"]})
    assert r.status_code == 201, r.text
    await api.post("/api/v1/customer/devices", json={"device_id": "d1"})
    await api.post("/api/v1/customer/alert-rules", json=RULE)
    yield target
    await target.stop()


@pytest.fixture
async def mailbox(api):
    """A real SMTP server on 127.0.0.1 behind the tenant's e-mail channel (recipients: noc@)."""
    smtp = SmtpTarget().start()
    try:
        ch = await api.post("/api/v1/customer/notification-channels", json={
            "name": "mail", "channel_type": "email",
            "config": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "pulse@acme.example",
                       "recipients": ["noc@acme.example"]}})
        assert ch.status_code == 201, ch.text
        smtp.channel_id = ch.json()["channel_id"]
        yield smtp
    finally:
        smtp.stop()


async def deliveries(api, target, n, now=None):
    """The target's requests once `n` arrived and no send is still in flight: the notifier's own loop
    runs too, so a job it claimed may have reached the target before its outcome is recorded."""
    notifier = api.services.runtime.notifier_ref
    for _ in range(20):
        await notifier.run_due(now)
        if len(target.requests) >= n:
            break
    for _ in range(100):
        if (await api.get("/api/v1/customer/notification-jobs", params={"status": "PROCESSING"})).json()["total"] == 0:
            break
        await asyncio.sleep(0.05)
    return target.requests


async def test_open_ack_close_are_delivered_signed_in_order(api, hook):
    await telemetry(api, "d1", 0, temp=35)
    (first,) = await deliveries(api, hook, 1)
    sig = hmac.new(SECRET.encode(), first.body, hashlib.sha256).hexdigest()
    assert first.headers["x-signature-256"] == f"sha256={sig}"
    body = first.json()
    assert body["event"] == "OPEN" and body["alert"]["device_id"] == "d1"
    aid = body["alert"]["alert_id"]
    await api.patch(f"/api/v1/customer/alerts/{aid}/acknowledge")
    await telemetry(api, "d1", 60, temp=20)  # clears: auto-closed
    sent = await deliveries(api, hook, 3)
    assert [r.json()["event"] for r in sent] == ["OPEN", "ACKNOWLEDGED", "CLOSED"]
    jobs = (await api.get("/api/v1/customer/notification-jobs", params={"alert_id": aid})).json()
    assert {j["status"] for j in jobs["jobs"]} == {"COMPLETED"}


async def test_maintenance_window_suppresses_the_notification_not_the_alert(api, hook):
    now = datetime.now(timezone.utc)
    r = await api.post("/api/v1/customer/maintenance-windows",
                       json={"name": "swap", "starts_at": (now - timedelta(hours=2)).isoformat(),
                             "ends_at": (now + timedelta(hours=1)).isoformat(), "scope": {"device_ids": ["d1"]}})
    assert r.status_code == 201, r.text
    await telemetry(api, "d1", 0, temp=35)
    assert (await api.get("/api/v1/customer/alerts", params={"status": "OPEN"})).json()["total"] == 1
    assert await deliveries(api, hook, 1) == []


async def test_unacknowledged_alert_escalates_level_by_level_until_acknowledged(api, hook):
    second = await HttpTarget().start()
    try:
        ch2 = (await api.post("/api/v1/customer/notification-channels",
                              json={"name": "oncall", "channel_type": "webhook", "config": {"url": second.url}})).json()
        ch1 = (await api.get("/api/v1/customer/notification-channels")).json()["channels"][0]
        policy = await api.post("/api/v1/customer/escalation-policies", json={
            "name": "default", "is_default": True,
            "levels": [{"delay_minutes": 0, "targets": [{"type": "channel", "id": ch1["channel_id"]}]},
                       {"delay_minutes": 5, "targets": [{"type": "channel", "id": ch2["channel_id"]}]}]})
        assert policy.status_code == 201, policy.text
        await telemetry(api, "d1", 0, temp=35)
        notifier = api.services.runtime.notifier_ref
        now = datetime.now(timezone.utc)
        assert await notifier.escalate_due(now + timedelta(seconds=1)) == 1  # level 1 (delay 0)
        assert await notifier.escalate_due(now + timedelta(minutes=2)) == 0  # level 2 not yet due
        assert await notifier.escalate_due(now + timedelta(minutes=6)) == 1  # level 2
        await deliveries(api, second, 1, now + timedelta(minutes=6))
        assert [r.json()["event"] for r in second.requests] == ["ESCALATED"]
        aid = second.requests[0].json()["alert"]["alert_id"]
        await api.patch(f"/api/v1/customer/alerts/{aid}/acknowledge")
        assert await notifier.escalate_due(now + timedelta(hours=1)) == 0  # acknowledged: no more pages
        detail = (await api.get(f"/api/v1/customer/alerts/{aid}")).json()
        assert [t["action"] for t in detail["transitions"]].count("ESCALATED") == 2
    finally:
        await second.stop()


async def test_hourly_digest_is_mailed_to_its_recipients(api, hook, mailbox):
    r = await api.request("PUT", "/api/v1/customer/alert-digest-settings", json={
        "frequency": "hourly", "recipients": ["ops@acme.example"], "channel_id": mailbox.channel_id})
    assert r.status_code == 200, r.text
    await telemetry(api, "d1", 3000, temp=35)  # one critical alert, a few minutes ago
    notifier = api.services.runtime.notifier_ref
    later = datetime.now(timezone.utc) + timedelta(hours=1, minutes=1)
    assert await notifier.send_digests(later) == 1
    (sender, rcpts, mail), = mailbox.messages
    assert rcpts == ["ops@acme.example"] and "1 open" in mail["Subject"]
    assert "critical" in mail.get_body(("plain",)).get_content()
    assert mail.get_body(("html",)) is not None
    assert await notifier.send_digests(later) == 0  # once per period


async def test_escalation_emails_the_people_of_a_step_and_the_on_call_responder(api, hook, mailbox):
    now = datetime.now(timezone.utc)
    schedule = await api.post("/api/v1/customer/oncall-schedules", json={"name": "primary", "timezone": "UTC"})
    assert schedule.status_code == 201, schedule.text
    layer = await api.post(f"/api/v1/customer/oncall-schedules/{schedule.json()['schedule_id']}/layers", json={
        "name": "week", "start_at": (now - timedelta(days=1)).isoformat(), "participants": ["oncall@acme.example"]})
    assert layer.status_code == 201, layer.text
    policy = await api.post("/api/v1/customer/escalation-policies", json={
        "name": "people", "is_default": True,
        "levels": [{"delay_minutes": 0, "targets": [
            {"type": "user", "id": "head-of-ops@acme.example"},
            {"type": "oncall_schedule", "id": str(schedule.json()["schedule_id"])}]}]})
    assert policy.status_code == 201, policy.text
    await telemetry(api, "d1", 0, temp=35)
    notifier = api.services.runtime.notifier_ref
    due = datetime.now(timezone.utc) + timedelta(seconds=1)  # after the alert opened, however slow the host
    assert await notifier.escalate_due(due) == 1
    for _ in range(20):
        await notifier.run_due(due)
        if mailbox.messages:
            break
    (sender, rcpts, message), = mailbox.messages  # one mail to the step's people, not the channel's list
    assert sorted(rcpts) == ["head-of-ops@acme.example", "oncall@acme.example"]
    assert "escalated" in message["Subject"].lower()
