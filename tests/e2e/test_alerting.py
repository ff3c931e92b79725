"""Alerting end to end on Ray: threshold -> OPEN -> signed webhook + e-mail -> escalation after its delay
-> acknowledge stops it -> value clears -> CLOSED; and a telemetry_gap alert for a silent device."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import pytest

from tests.e2e.test_node import device_client, envelope
from tests.integrations.helpers import HttpTarget, SmtpTarget

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.broker]
SECRET = "e2e-webhook-secret-000"


async def until(fn, timeout: float = 30.0):
    """Poll without blocking the loop (the webhook targets run on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(fn)
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


def post(stack, url, body):
    r = stack.http.post(url, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
async def test_threshold_alert_is_delivered_escalated_acknowledged_and_closed(stack):
    first, second = await HttpTarget().start(), await HttpTarget().start()
    smtp = SmtpTarget().start()
    try:
        hook1 = post(stack, "/api/v1/customer/notification-channels", {
            "name": "e2e-ops", "channel_type": "webhook", "config": {"url": first.url, "secret": SECRET}})
        hook2 = post(stack, "/api/v1/customer/notification-channels", {
            "name": "e2e-oncall", "channel_type": "webhook", "config": {"url": second.url}})
        mail = post(stack, "/api/v1/customer/notification-channels", {
            "name": "e2e-mail", "channel_type": "email",
            "config": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "pulse@demo.example",
                       "recipients": ["noc@demo.example"]}})
        policy = post(stack, "/api/v1/customer/escalation-policies", {"name": "e2e", "levels": [
            {"delay_minutes": 0, "targets": [{"type": "channel", "id": hook1["channel_id"]},
                                             {"type": "channel", "id": mail["channel_id"]}]},
            {"delay_minutes": 1, "targets": [{"type": "channel", "id": hook2["channel_id"]}]}]})
        post(stack, "/api/v1/customer/notification-routing-rules", {
            "channel_ids": [hook1["channel_id"]], "events": ["OPEN", "ACKNOWLEDGED", "CLOSED"], "device_ids": ["al-1"]})
        post(stack, "/api/v1/customer/alert-rules", {
            "name": "boiler hot", "metric": "temp", "operator": "GT", "threshold": 90, "severity": "critical",
            "device_ids": ["al-1"], "escalation_policy_id": policy["policy_id"]})
        post(stack, "/api/v1/customer/alert-rules", {
            "name": "silent", "rule_type": "telemetry_gap", "metric": "*", "gap_seconds": 60, "device_ids": ["al-2"]})
        secret1, secret2 = stack.create_device("al-1"), stack.create_device("al-2")
        async with device_client(stack, "al-2", secret2) as dev:  # speaks once, then never again
            await dev.publish("tenant/demo/device/al-2/telemetry", envelope(1, temp=20), qos=1)
        opened_at = time.monotonic()
        async with device_client(stack, "al-1", secret1) as dev:
            await dev.publish("tenant/demo/device/al-1/telemetry", envelope(1, temp=95), qos=1)

        # OPEN via routing, and escalation level 1 (webhook + e-mail), signed
        # (al-1 going offline may open its NO_HEARTBEAT alert meanwhile: only the threshold alert counts)
        def threshold_events() -> list[str]:
            return [r.json()["event"] for r in first.requests if r.json()["alert"]["alert_type"] == "THRESHOLD"]

        assert await until(lambda: len(threshold_events()) >= 2, timeout=30)
        for req in first.requests:
            assert req.headers["x-signature-256"] == "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
        assert sorted(threshold_events()[:2]) == ["ESCALATED", "OPEN"]
        alert_id = next(r.json()["alert"]["alert_id"] for r in first.requests
                        if r.json()["alert"]["alert_type"] == "THRESHOLD")
        assert await until(lambda: smtp.messages, timeout=30)
        assert smtp.messages[0][1] == ["noc@demo.example"]
        assert second.requests == []

        # not acknowledged: level 2 after its one-minute delay
        await second.wait_for(1, timeout=120)
        assert time.monotonic() - opened_at >= 55 and second.requests[0].json()["event"] == "ESCALATED"

        # acknowledge: no further pages; value clears: CLOSED (and notified)
        r = await asyncio.to_thread(stack.http.patch, f"/api/v1/customer/alerts/{alert_id}/acknowledge")
        assert r.json()["status"] == "ACKNOWLEDGED"
        async with device_client(stack, "al-1", secret1) as dev:
            await dev.publish("tenant/demo/device/al-1/telemetry", envelope(2, temp=70), qos=1)
        closed = await until(lambda: stack.http.get(f"/api/v1/customer/alerts/{alert_id}").json()["status"] == "CLOSED")
        assert closed
        assert await until(lambda: "CLOSED" in threshold_events(), timeout=30)
        assert [e for e in threshold_events() if e in ("ACKNOWLEDGED", "CLOSED")] == ["ACKNOWLEDGED", "CLOSED"]
        assert len(second.requests) == 1  # escalation stopped

        # the silent device: a gap alert without any message arriving
        gap = await until(lambda: stack.http.get("/api/v1/customer/alerts", params={
            "device_id": "al-2", "alert_type": "NO_TELEMETRY"}).json()["alerts"], timeout=60)
        assert gap and gap[0]["status"] == "OPEN"
    finally:
        await first.stop()
        await second.stop()
        smtp.stop()
