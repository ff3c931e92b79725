"""Channels end to end: real deliveries to local targets on 127.0.0.1 through the Notifier, checking
what the receiver gets (signatures verified independently, payload shapes as documented)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest

from pulse.services.notifier import Notifier
from pulse.integrations.channels import CHANNELS, Message, canonical, merge_secrets, parse_config, split_secrets
from pulse.integrations.channels.pagerduty import severity as pd_severity
from pulse.errors import Invalid
from tests.integrations.helpers import (FAST, T0, Reply, SmtpTarget, http_targets, jobs_of,  # noqa: F401
                                        make_channel, notifier, notifier_for, sample_alert)

ALL = ["OPEN", "ACKNOWLEDGED", "CLOSED", "ESCALATED"]


async def deliver(notifier: Notifier, channel: dict, *events: str, alert: dict | None = None) -> list[dict]:
    """Enqueue the events for one alert and run the loop until nothing is due; the jobs."""
    for ev in events or ("OPEN",):
        await notifier.enqueue("acme", alert or sample_alert(), ev, [channel["channel_id"]], now=T0)
    while await notifier.run_due(now=T0):
        pass
    return await jobs_of(notifier)


def message(event: str = "OPEN", **alert) -> Message:
    return Message("acme", event, {**sample_alert(), "triggered_at": T0.isoformat(), **alert}, "job-1")


# ---- webhook -----------------------------------------------------------------------------------
async def test_webhook_body_is_signed_with_hmac_sha256_of_the_raw_bytes(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "webhook", {"url": target.url, "secret": "whsec-0123456789abcdef",
                                                  "headers": {"Authorization": "Bearer t0k3n-abcdef"}})
    [job] = await deliver(notifier, ch)
    assert job["status"] == "COMPLETED"
    [req] = target.requests
    expected = "sha256=" + hmac.new(b"whsec-0123456789abcdef", req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["x-signature-256"], expected)
    assert req.method == "POST" and req.path == "/hook"
    assert req.headers["content-type"] == "application/json" and req.headers["authorization"] == "Bearer t0k3n-abcdef"
    assert req.headers["x-pulse-event"] == "OPEN" and req.headers["x-pulse-delivery"] == f"job-{job['job_id']}"
    body = req.json()
    assert body["version"] == "1" and body["event"] == "OPEN" and body["tenant_id"] == "acme" and body["test"] is False
    assert {k: body["alert"][k] for k in (
        "alert_id", "device_id", "rule_id", "alert_type", "fingerprint", "severity", "severity_label", "summary",
        "status", "metric", "trigger_value", "details")} == {
        "alert_id": 1, "device_id": "boiler-7", "rule_id": "r1", "alert_type": "THRESHOLD",
        "fingerprint": "RULE:r1:boiler-7", "severity": 4, "severity_label": "major", "summary": "temp=91 GT 80",
        "status": "OPEN", "metric": "temp", "trigger_value": 91.0, "details": {"threshold": 80}}


async def test_webhook_without_secret_is_unsigned(notifier, http_targets):
    target = await http_targets()
    await deliver(notifier, await make_channel(notifier, "webhook", {"url": target.url}))
    assert "x-signature-256" not in target.requests[0].headers


async def test_redirects_are_not_followed(notifier, http_targets):
    final = await http_targets()
    target = await http_targets(default=Reply(302, headers={"Location": final.url}))
    [job] = await deliver(notifier, await make_channel(notifier, "webhook", {"url": target.url}))
    assert (job["status"], job["last_status_code"]) == ("FAILED", 302) and final.requests == []


async def test_private_targets_can_be_refused(broker_db, tmp_path, http_targets):
    from pulse.config.settings import Settings

    settings = Settings(data_dir=tmp_path / "p", database_url=broker_db.url, notifier_block_private_targets=True, **FAST)
    n = await notifier_for(settings, broker_db)
    try:
        target = await http_targets()
        [job] = await deliver(n, await make_channel(n, "webhook", {"url": target.url}))
        assert job["status"] == "FAILED" and "non-public" in job["last_error"] and target.requests == []
    finally:
        await n.stop()


# ---- slack / teams -----------------------------------------------------------------------------
async def test_slack_gets_blocks_with_a_text_fallback(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "slack", {"webhook_url": target.url + "/T000/B000/XXXXSECRET"})
    [job] = await deliver(notifier, ch, alert=sample_alert(summary="temp <91> & rising", severity=5))
    assert job["status"] == "COMPLETED"
    body = target.requests[0].json()
    assert body["text"] == "[CRITICAL] Alert opened: temp <91> & rising"
    header, summary, fields, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": body["text"], "emoji": False}}
    assert summary["text"] == {"type": "mrkdwn", "text": "*temp &lt;91&gt; &amp; rising*"}
    assert {"type": "mrkdwn", "text": "*Device*\nboiler-7"} in fields["fields"] and len(fields["fields"]) <= 10
    assert context["type"] == "context"


async def test_a_slack_url_never_shows_in_errors(notifier, http_targets):
    target = await http_targets(start=False)
    ch = await make_channel(notifier, "slack", {"webhook_url": target.url + "/T000/B000/XXXXSECRET"})
    await notifier.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]], now=T0)
    await notifier.run_due(now=T0)
    [job] = await jobs_of(notifier)
    assert job["status"] == "PENDING" and "XXXXSECRET" not in job["last_error"]


async def test_teams_message_card(notifier, http_targets):
    target = await http_targets(default=Reply(200, b"1"))
    ch = await make_channel(notifier, "teams", {"webhook_url": target.url})
    await deliver(notifier, ch)
    card = target.requests[0].json()
    assert card["@type"] == "MessageCard" and card["@context"] == "https://schema.org/extensions"
    assert card["themeColor"] == "E8590C" and card["title"] == card["summary"] == "[MAJOR] Alert opened: temp=91 GT 80"
    [section] = card["sections"]
    assert {"name": "Device", "value": "boiler-7"} in section["facts"]
    assert {"name": "Severity", "value": "major (4)"} in section["facts"]


async def test_teams_adaptive_card(notifier, http_targets):
    target = await http_targets(default=202)
    ch = await make_channel(notifier, "teams", {"webhook_url": target.url, "format": "adaptivecard"})
    [job] = await deliver(notifier, ch)
    assert job["status"] == "COMPLETED"
    doc = target.requests[0].json()
    assert doc["type"] == "message"
    [attachment] = doc["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "[MAJOR] Alert opened: temp=91 GT 80" and card["body"][0]["color"] == "Attention"
    assert {"title": "Device", "value": "boiler-7"} in card["body"][2]["facts"]


# ---- pagerduty ---------------------------------------------------------------------------------
async def test_pagerduty_events_v2_lifecycle_shares_the_fingerprint_as_dedup_key(notifier, http_targets):
    target = await http_targets(default=Reply(202, b'{"status":"success","message":"Event processed"}'))
    ch = await make_channel(notifier, "pagerduty", {"routing_key": "R0UT1NGKEY0123456789abcdefABCDEF",
                                                    "events_url": target.url})
    jobs = await deliver(notifier, ch, *ALL, alert=sample_alert(escalation_level=1, site_id="plant-a"))
    assert [j["status"] for j in jobs] == ["COMPLETED"] * 4
    events = [r.json() for r in target.requests]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve", "trigger"]
    assert {e["dedup_key"] for e in events} == {"RULE:r1:boiler-7"}
    assert {e["routing_key"] for e in events} == {"R0UT1NGKEY0123456789abcdefABCDEF"}
    trigger = events[0]
    assert trigger["client"] == "Pulse"
    p = trigger["payload"]
    assert (p["summary"], p["source"], p["severity"], p["class"], p["component"], p["group"]) == (
        "[MAJOR] Alert opened: temp=91 GT 80", "boiler-7", "critical", "THRESHOLD", "temp", "plant-a")
    assert p["timestamp"] == T0.isoformat() and p["custom_details"]["details"] == {"threshold": 80}
    assert "payload" not in events[1] and "payload" not in events[2]


@pytest.mark.parametrize("level, expected", [(5, "critical"), (4, "critical"), (3, "error"), (2, "warning"),
                                             (1, "info")])
def test_pagerduty_severity_follows_the_documented_mapping(level, expected):
    assert pd_severity(level) == expected


async def test_pagerduty_400_is_permanent(notifier, http_targets):
    target = await http_targets(default=Reply(400, b'{"status":"invalid event","errors":["bad"]}'))
    ch = await make_channel(notifier, "pagerduty", {"routing_key": "k" * 32, "events_url": target.url})
    [job] = await deliver(notifier, ch)
    assert (job["status"], job["attempts"]) == ("FAILED", 1) and "invalid event" in job["last_error"]


# ---- email -------------------------------------------------------------------------------------
async def test_email_is_multipart_text_and_html_and_authenticates(notifier):
    smtp = SmtpTarget(user="pulse", password="smtp-pass-0123456789").start()
    try:
        ch = await make_channel(notifier, "email", {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "username": "pulse", "password": "smtp-pass-0123456789",
            "from": "alerts@pulse.example", "recipients": ["ops@acme.example", "oncall@acme.example"]})
        [job] = await deliver(notifier, ch, alert=sample_alert(summary="temp <b>91</b>"))
        assert job["status"] == "COMPLETED", job["last_error"]
        [(sender, rcpts, mail)] = smtp.messages
    finally:
        smtp.stop()
    assert sender == "alerts@pulse.example" and rcpts == ["ops@acme.example", "oncall@acme.example"]
    assert mail["Subject"] == "[Pulse] [MAJOR] Alert opened: temp <b>91</b> (boiler-7)"
    assert mail["X-Pulse-Delivery"] == f"job-{job['job_id']}" and mail["Message-ID"]
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text.get_content_type() == "text/plain" and "Device: boiler-7" in text.get_content()
    assert html.get_content_type() == "text/html"
    assert "temp &lt;b&gt;91&lt;/b&gt;" in html.get_content() and "<b>91</b>" not in html.get_content()


async def test_email_wrong_password_fails_at_once(notifier):
    smtp = SmtpTarget(user="pulse", password="right-password-123").start()
    try:
        ch = await make_channel(notifier, "email", {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "username": "pulse", "password": "wrong-password-123",
            "from": "alerts@pulse.example", "recipients": ["ops@acme.example"]})
        [job] = await deliver(notifier, ch)
    finally:
        smtp.stop()
    assert (job["status"], job["attempts"], job["last_status_code"]) == ("FAILED", 1, 535)
    assert smtp.messages == []


async def test_email_refused_recipient_fails_and_server_down_retries(notifier):
    smtp = SmtpTarget(refuse_rcpt="nobody@acme.example").start()
    try:
        ch = await make_channel(notifier, "email", {
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "from": "alerts@pulse.example",
            "recipients": ["nobody@acme.example"]})
        [job] = await deliver(notifier, ch)
        assert (job["status"], job["last_status_code"]) == ("FAILED", 550)
    finally:
        smtp.stop()
    ch = await make_channel(notifier, "email", {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                                                "from": "alerts@pulse.example", "recipients": ["ops@acme.example"]})
    await notifier.enqueue("acme", sample_alert(2), "OPEN", [ch["channel_id"]], now=T0)
    await notifier.run_due(now=T0)
    job = (await jobs_of(notifier, alert_id=2))[0]
    assert job["status"] == "PENDING" and job["attempts"] == 1


# ---- mqtt --------------------------------------------------------------------------------------
async def test_mqtt_republishes_through_pulse_broker_as_the_service_account(embedded_broker):
    settings = embedded_broker.settings.model_copy(update=FAST)
    n = await notifier_for(settings, embedded_broker.db)
    try:
        ch = await make_channel(n, "mqtt", {"topic": "tenant/{tenant_id}/alerts/{device_id}/{event}"})
        async with embedded_broker.client() as sub:
            await sub.subscribe("tenant/acme/alerts/#", qos=1)
            [job] = await deliver(n, ch)
            assert job["status"] == "COMPLETED", job["last_error"]
            msg = await asyncio.wait_for(anext(aiter(sub.messages)), 5)
        assert str(msg.topic) == "tenant/acme/alerts/boiler-7/OPEN"
        body = json.loads(msg.payload)
        assert body["alert"]["fingerprint"] == "RULE:r1:boiler-7" and body["event"] == "OPEN"
    finally:
        await n.stop()


async def test_mqtt_broker_down_is_retried(broker_db, tmp_path):
    from pulse.config.settings import Settings
    from tests.broker.fixtures import free_port

    settings = Settings(data_dir=tmp_path / "p", database_url=broker_db.url, mqtt_port=free_port(), **FAST)
    n = await notifier_for(settings, broker_db)
    try:
        [job] = await deliver(n, await make_channel(n, "mqtt", {}))
        assert job["status"] == "PENDING" and job["attempts"] == 1 and job["last_error"]
    finally:
        await n.stop()


# ---- config validation and secrets (pure) ----------------------------------------------------------
@pytest.mark.parametrize("channel_type, config, fragment", [
    ("webhook", {"url": "ftp://example.com/x"}, "url"),
    ("webhook", {"url": "javascript:alert(1)"}, "url"),
    ("webhook", {"url": "http://"}, "url"),
    ("webhook", {"url": "https://ok.example", "headers": {"Content-Type": "text/plain"}}, "headers"),
    ("webhook", {"url": "https://ok.example", "headers": {"X-A": "a\r\nX-B: b"}}, "headers"),
    ("webhook", {"url": "https://ok.example", "extra": 1}, "extra"),
    ("slack", {}, "webhook_url"),
    ("teams", {"webhook_url": "https://x.example", "format": "html"}, "format"),
    ("pagerduty", {"routing_key": "k" * 32, "events_url": "file:///etc/passwd"}, "events_url"),
    ("pagerduty", {}, "routing_key"),
    ("email", {"smtp_host": "mail.example", "smtp_port": 25, "from": "not-an-address", "recipients": ["a@b.example"]},
     "from"),
    ("email", {"smtp_host": "mail.example", "smtp_port": 25, "from": "a@b.example", "recipients": []}, "recipients"),
    ("email", {"smtp_host": "mail.example", "smtp_port": 70000, "from": "a@b.example", "recipients": ["a@b.example"]},
     "smtp_port"),
    ("email", {"smtp_host": "mail.example", "smtp_port": 465, "ssl": True, "starttls": True, "from": "a@b.example",
               "recipients": ["a@b.example"]}, "starttls"),
    ("mqtt", {"topic": "alerts/{device_id}"}, "tenant/{tenant_id}/"),
    ("mqtt", {"topic": "tenant/{tenant_id}/device/{device_id}/telemetry"}, "device protocol"),
    ("mqtt", {"topic": "tenant/{tenant_id}/alerts/#"}, "wildcards"),
    ("mqtt", {"topic": "tenant/{tenant_id}/alerts/{secret}"}, "placeholder"),
])
def test_invalid_configs_are_refused(channel_type, config, fragment):
    with pytest.raises(Invalid) as e:
        parse_config(channel_type, config)
    assert fragment in e.value.detail


def test_pagerduty_accepts_the_documented_integration_key_name():
    assert canonical("pagerduty", {"integration_key": "abc123"}) == {
        "routing_key": "abc123", "events_url": "https://events.pagerduty.com/v2/enqueue"}


def test_secrets_are_split_masked_and_kept_on_round_trip():
    config = canonical("webhook", {"url": "https://h.example/x", "secret": "whsec-0123456789",
                                   "headers": {"Authorization": "Bearer abcdefghijkl", "X-Short": "abc"}})
    plain, secret = split_secrets("webhook", config)
    assert plain == {"url": "https://h.example/x", "secret": "***6789",
                     "headers": {"Authorization": "***ijkl", "X-Short": "***"}}
    assert secret == {"secret": "whsec-0123456789", "headers": {"Authorization": "Bearer abcdefghijkl", "X-Short": "abc"}}
    assert merge_secrets("webhook", plain, secret) == config  # a form sent back as read
    assert merge_secrets("webhook", {"url": "https://h.example/y"}, secret)["secret"] == "whsec-0123456789"
    assert merge_secrets("webhook", {"url": "u", "secret": None}, secret)["secret"] is None
    with pytest.raises(Invalid):
        merge_secrets("webhook", {"url": "u", "secret": "***6789"}, {})


@pytest.mark.parametrize("channel_type", sorted(CHANNELS))
def test_every_builder_renders_every_event(channel_type):
    samples = {"webhook": {"url": "https://h.example"}, "slack": {"webhook_url": "https://h.example"},
               "teams": {"webhook_url": "https://h.example"}, "pagerduty": {"routing_key": "k"},
               "mqtt": {}, "email": {"smtp_host": "m.example", "smtp_port": 25, "from": "a@b.example",
                                     "recipients": ["c@d.example"]}, "telemetron": {}}
    config = parse_config(channel_type, samples[channel_type])
    for ev in ALL:
        assert CHANNELS[channel_type].build(message(ev), config)
