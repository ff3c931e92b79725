"""Notifier: routing-rule matching (pure) and job delivery — retries, backoff, ordering, rate limits,
throttling — against real HTTP targets on 127.0.0.1. Time is moved by passing `now`, never slept."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from pulse.domain.windows import in_window
from pulse.services.notifier import match_rules
from pulse.errors import Invalid
from pulse.services import notifications as service
from pulse.storage import notifications as store
from pulse.storage.db import utcnow
from pulse.storage.secrets import SecretBox
from tests.integrations.helpers import (T0, Reply, http_targets, jobs_of, make_channel, notifier,  # noqa: F401
                                        sample_alert)

S = timedelta(seconds=1)


async def webhook_with_open_alert(notifier, target) -> dict:
    """A webhook channel posting to `target`, with one OPEN alert queued for it at T0; returns the channel."""
    ch = await make_channel(notifier, "webhook", {"url": target.url})
    await notifier.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]], now=T0)
    return ch


# ---- match_rules ---------------------------------------------------------------------------------
def rule(channel: str, **fields) -> dict:
    return {"rule_id": f"rule-{channel}", "channel_ids": [channel], "enabled": True, "priority": 100, "stop": False,
            "events": ["OPEN"], **fields}


def event(**fields) -> dict:
    return {"severity": 3, "alert_type": "THRESHOLD", "rule_id": "r1", "device_id": "d1", "event": "OPEN", **fields}


FACTS = {"group_ids": {"g-boilers"}, "tags": {"pump", "roof"}, "site_id": "plant-a"}


def test_rules_apply_in_priority_order_and_each_channel_once():
    rules = [rule("late", priority=300), rule("early", priority=10), rule("mid", priority=200),
             {**rule("early"), "rule_id": "dup", "priority": 250}]
    assert match_rules(rules, event(), FACTS, T0) == ["early", "mid", "late"]


def test_a_matching_stop_rule_ends_evaluation_but_a_non_matching_one_does_not():
    rules = [rule("a", priority=1), rule("b", priority=2, stop=True, min_severity=5), rule("c", priority=3, stop=True),
             rule("d", priority=4)]
    assert match_rules(rules, event(severity=3), FACTS, T0) == ["a", "c"]
    assert match_rules(rules, event(severity=5), FACTS, T0) == ["a", "b"]


def test_disabled_rules_never_match():
    assert match_rules([rule("a", enabled=False), rule("b")], event(), FACTS, T0) == ["b"]


def test_events_default_to_open_only():
    rules = [rule("open"), rule("all", events=["OPEN", "ACKNOWLEDGED", "CLOSED", "ESCALATED"]),
             {**rule("legacy"), "events": None}]
    assert match_rules(rules, event(event="OPEN"), FACTS, T0) == ["open", "all", "legacy"]
    for ev in ("ACKNOWLEDGED", "CLOSED", "ESCALATED"):
        assert match_rules(rules, event(event=ev), FACTS, T0) == ["all"]


@pytest.mark.parametrize("severity, expected", [(1, []), (3, []), (4, ["c"]), (5, ["c"])])
def test_min_severity_passes_at_or_above(severity, expected):
    assert match_rules([rule("c", min_severity=4)], event(severity=severity), FACTS, T0) == expected


@pytest.mark.parametrize("criteria, matches", [
    ({"alert_types": ["THRESHOLD", "ANOMALY"]}, True),
    ({"alert_types": ["NO_HEARTBEAT"]}, False),
    ({"rule_ids": ["r1"]}, True),
    ({"rule_ids": ["r2"]}, False),
    ({"device_ids": ["d0", "d1"]}, True),
    ({"device_ids": ["d2"]}, False),
    ({"site_ids": ["plant-a"]}, True),
    ({"site_ids": ["plant-b"]}, False),
    ({"group_ids": ["g-other", "g-boilers"]}, True),
    ({"group_ids": ["g-other"]}, False),
    ({"tags": ["roof", "x"]}, True),
    ({"tags": ["x"]}, False),
    ({"alert_types": [], "tags": []}, True),  # empty = any
    ({"device_ids": ["d1"], "tags": ["x"]}, False),  # all criteria must hold
])
def test_match_criteria(criteria, matches):
    assert match_rules([rule("c", **criteria)], event(), FACTS, T0) == (["c"] if matches else [])


def test_site_comes_from_the_device_facts_or_else_the_alert():
    r = [rule("c", site_ids=["plant-b"])]
    assert match_rules(r, event(site_id="plant-b"), {"site_id": None}, T0) == ["c"]
    assert match_rules(r, event(site_id="plant-b"), {"site_id": "plant-a"}, T0) == []
    assert match_rules([rule("c", group_ids=["g"])], event(), None, T0) == []


def test_time_window_is_local_time_and_follows_dst():
    office = {"start": "08:00", "end": "18:00", "timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"]}
    winter, summer = datetime(2026, 1, 5, tzinfo=timezone.utc), datetime(2026, 7, 6, tzinfo=timezone.utc)  # Mondays
    assert in_window(office, winter.replace(hour=7))  # 08:00 CET
    assert not in_window(office, winter.replace(hour=6, minute=59))
    assert in_window(office, summer.replace(hour=6))  # 08:00 CEST
    assert not in_window(office, summer.replace(hour=16))  # 18:00 CEST: end is exclusive
    assert not in_window(office, (winter + timedelta(days=5)).replace(hour=10))  # Saturday
    r = [rule("c", active_hours=office)]
    assert match_rules(r, event(), FACTS, winter.replace(hour=9)) == ["c"]
    assert match_rules(r, event(), FACTS, winter.replace(hour=20)) == []


def test_overnight_window_belongs_to_the_day_it_starts():
    friday_night = {"start": "22:00", "end": "06:00", "timezone": "UTC", "days": ["fri"]}
    fri = datetime(2026, 3, 6, tzinfo=timezone.utc)
    assert in_window(friday_night, fri.replace(hour=23))
    assert in_window(friday_night, (fri + timedelta(days=1)).replace(hour=3))  # Saturday 03:00
    assert not in_window(friday_night, fri.replace(hour=3))  # Friday 03:00 is Thursday's night
    assert not in_window(friday_night, fri.replace(hour=12))


# ---- enqueue -----------------------------------------------------------------------------------
async def test_enqueue_is_idempotent_per_alert_channel_and_event(notifier, http_targets):
    target = await http_targets()
    a = await make_channel(notifier, "webhook", {"url": target.url})
    b = await make_channel(notifier, "webhook", {"url": target.url})
    first = await notifier.enqueue("acme", sample_alert(), "OPEN", [a["channel_id"], b["channel_id"]], now=T0)
    again = await notifier.enqueue("acme", sample_alert(), "OPEN", [b["channel_id"], a["channel_id"]], now=T0)
    assert len(first) == 2 and again == first[::-1]
    closed = await notifier.enqueue("acme", sample_alert(status="CLOSED"), "CLOSED", [a["channel_id"]], now=T0)
    assert closed[0] not in first
    jobs = await jobs_of(notifier)
    assert [(j["event"], j["status"], j["attempts"]) for j in jobs] == [("OPEN", "PENDING", 0)] * 2 + [
        ("CLOSED", "PENDING", 0)]


async def test_each_escalation_level_is_its_own_delivery(notifier, http_targets):
    ch = await make_channel(notifier, "webhook", {"url": (await http_targets()).url})
    one = await notifier.enqueue("acme", sample_alert(escalation_level=1), "ESCALATED", [ch["channel_id"]])
    two = await notifier.enqueue("acme", sample_alert(escalation_level=2), "ESCALATED", [ch["channel_id"]])
    assert one != two and one == await notifier.enqueue("acme", sample_alert(escalation_level=1), "ESCALATED",
                                                        [ch["channel_id"]])


async def test_unknown_disabled_and_foreign_channels_get_no_job(notifier, http_targets):
    url = (await http_targets()).url
    on = await make_channel(notifier, "webhook", {"url": url})
    off = await make_channel(notifier, "webhook", {"url": url}, enabled=False)
    foreign = await make_channel(notifier, "webhook", {"url": url}, tenant="globex")
    ids = await notifier.enqueue("acme", sample_alert(), "OPEN",
                                 ["nope", off["channel_id"], foreign["channel_id"], on["channel_id"]])
    assert len(ids) == 1 and [j["channel_id"] for j in await jobs_of(notifier)] == [on["channel_id"]]
    assert await jobs_of(notifier, "globex") == []


async def test_enqueue_refuses_unknown_events_and_alerts_without_id(notifier):
    with pytest.raises(Invalid):
        await notifier.enqueue("acme", sample_alert(), "REOPENED", ["c"])
    with pytest.raises(Invalid):
        await notifier.enqueue("acme", {"device_id": "d"}, "OPEN", ["c"])


# ---- delivery ----------------------------------------------------------------------------------
async def test_503_twice_then_200_is_retried_with_backoff_and_delivered_once(notifier, http_targets):
    target = await http_targets(503, 503, default=200)
    ch = await make_channel(notifier, "webhook", {"url": target.url})
    [job_id] = await notifier.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]], now=T0)

    assert await notifier.run_due(now=T0) == 1
    [job] = await jobs_of(notifier)
    assert (job["status"], job["attempts"], job["last_status_code"]) == ("PENDING", 1, 503)
    assert job["next_attempt_at"] == T0 + 1 * S and "503" in job["last_error"]
    assert await notifier.run_due(now=T0 + 0.5 * S) == 0  # not due yet

    assert await notifier.run_due(now=T0 + 1 * S) == 1
    [job] = await jobs_of(notifier)
    assert job["attempts"] == 2 and job["next_attempt_at"] == T0 + 3 * S  # 1 s, then 2 s

    assert await notifier.run_due(now=T0 + 3 * S) == 1
    [job] = await jobs_of(notifier)
    assert (job["status"], job["attempts"], job["last_error"], job["next_attempt_at"]) == ("COMPLETED", 3, None, None)
    assert job["completed_at"] is not None
    assert [line["status_code"] for line in job["log"]] == [503, 503, 200]
    assert await notifier.run_due(now=T0 + 60 * S) == 0
    assert len(target.requests) == 3
    assert {r.headers["x-pulse-delivery"] for r in target.requests} == {f"job-{job_id}"}  # one delivery id


async def test_a_target_that_is_down_delays_delivery_and_loses_nothing(notifier, http_targets):
    target = await http_targets(start=False)  # nothing listens on its port yet
    await webhook_with_open_alert(notifier, target)
    await notifier.run_due(now=T0)
    await notifier.run_due(now=T0 + 1 * S)
    [job] = await jobs_of(notifier)
    assert (job["status"], job["attempts"], job["last_status_code"]) == ("PENDING", 2, None)
    assert "Connect" in job["last_error"]

    await target.start()
    assert await notifier.run_due(now=T0 + 3 * S) == 1
    [job] = await jobs_of(notifier)
    assert job["status"] == "COMPLETED" and job["attempts"] == 3
    assert len(target.requests) == 1 and target.requests[0].json()["alert"]["alert_id"] == 1


async def test_retries_stop_after_max_attempts(notifier, http_targets):
    target = await http_targets(default=502)
    await webhook_with_open_alert(notifier, target)
    t = T0
    for _ in range(6):
        await notifier.run_due(now=t)
        t += 10 * S
    [job] = await jobs_of(notifier)
    assert (job["status"], job["attempts"]) == ("FAILED", 4)  # notifier_max_attempts
    assert job["last_error"].startswith("gave up after 4 attempts: HTTP 502")
    assert len(target.requests) == 4 and len(job["log"]) == 4


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_client_errors_fail_at_once(notifier, http_targets, status):
    target = await http_targets(default=Reply(status, b"bad routing key"))
    await webhook_with_open_alert(notifier, target)
    await notifier.run_due(now=T0)
    await notifier.run_due(now=T0 + 60 * S)
    [job] = await jobs_of(notifier)
    assert (job["status"], job["attempts"], job["last_status_code"]) == ("FAILED", 1, status)
    assert "bad routing key" in job["last_error"] and len(target.requests) == 1


async def test_429_is_retried_no_sooner_than_retry_after(notifier, http_targets):
    target = await http_targets(Reply(429, headers={"Retry-After": "5"}), default=200)
    await webhook_with_open_alert(notifier, target)
    await notifier.run_due(now=T0)
    [job] = await jobs_of(notifier)
    assert job["status"] == "PENDING" and job["next_attempt_at"] == T0 + 5 * S
    assert await notifier.run_due(now=T0 + 4 * S) == 0
    assert await notifier.run_due(now=T0 + 5 * S) == 1
    assert (await jobs_of(notifier))[0]["status"] == "COMPLETED"


async def test_an_alerts_events_reach_a_channel_in_order(notifier, http_targets):
    target = await http_targets(503, default=200)
    ch = await webhook_with_open_alert(notifier, target)
    await notifier.run_due(now=T0)  # OPEN: 503, retried in 1 s
    await notifier.enqueue("acme", sample_alert(status="CLOSED"), "CLOSED", [ch["channel_id"]], now=T0)
    other = await notifier.enqueue("acme", sample_alert(2, fingerprint="RULE:r1:d2"), "OPEN", [ch["channel_id"]],
                                   now=T0)
    assert await notifier.run_due(now=T0) == 1  # another alert is not held up; CLOSED waits for OPEN
    assert [r.json()["event"] for r in target.requests] == ["OPEN", "OPEN"]
    await notifier.run_due(now=T0 + 1 * S)
    await notifier.run_due(now=T0 + 1 * S)
    assert [(r.json()["alert"]["alert_id"], r.json()["event"]) for r in target.requests] == [
        (1, "OPEN"), (2, "OPEN"), (1, "OPEN"), (1, "CLOSED")]
    assert all(j["status"] == "COMPLETED" for j in await jobs_of(notifier)) and len(other) == 1


async def test_the_channel_rate_limit_defers_without_spending_attempts(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "webhook", {"url": target.url}, rate_limit_per_minute=2)  # burst 2, 1 per 30 s
    for i in range(1, 5):
        await notifier.enqueue("acme", sample_alert(i, fingerprint=f"F{i}"), "OPEN", [ch["channel_id"]], now=T0)
    assert await notifier.run_due(now=T0) == 2
    waiting = [j for j in await jobs_of(notifier) if j["status"] == "PENDING"]
    assert len(waiting) == 2 and all(j["attempts"] == 0 and j["next_attempt_at"] == T0 + 30 * S for j in waiting)
    assert await notifier.run_due(now=T0 + 30 * S) == 1
    assert await notifier.run_due(now=T0 + 60 * S) == 1
    assert len(target.requests) == 4
    assert [j["attempts"] for j in await jobs_of(notifier)] == [1, 1, 1, 1]


async def test_a_job_whose_sender_died_is_taken_again_when_its_claim_lapses(notifier, http_targets):
    target = await http_targets()
    await webhook_with_open_alert(notifier, target)
    [claimed] = await store.claim_due(notifier.db, T0, T0 + 60 * S, 10)  # a sender takes it, then crashes
    assert claimed["status"] == "PROCESSING"
    assert await notifier.run_due(now=T0 + 30 * S) == 0
    assert await notifier.run_due(now=T0 + 60 * S) == 1
    assert (await jobs_of(notifier))[0]["status"] == "COMPLETED" and len(target.requests) == 1


async def test_deleting_a_channel_fails_its_undelivered_jobs(notifier, http_targets):
    target = await http_targets(default=503)
    ch = await webhook_with_open_alert(notifier, target)
    await notifier.run_due(now=T0)
    await store.delete_channel(notifier.db, "acme", ch["channel_id"])
    assert await notifier.run_due(now=T0 + 60 * S) == 0
    [job] = await jobs_of(notifier)
    assert (job["status"], job["last_error"]) == ("FAILED", "channel deleted")


async def test_a_disabled_channel_gets_nothing_more(notifier, http_targets):
    target = await http_targets()
    ch = await webhook_with_open_alert(notifier, target)
    await service.update_channel(notifier.db, notifier.settings, "acme", ch["channel_id"], {"enabled": False})
    await notifier.run_due(now=T0)
    [job] = await jobs_of(notifier)
    assert (job["status"], job["last_error"]) == ("FAILED", "channel disabled") and target.requests == []


async def test_secrets_that_no_longer_decrypt_are_retried_not_sent(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "webhook", {"url": target.url, "secret": "s3cret-value-123"})
    await notifier.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]], now=T0)
    notifier.box = SecretBox(Fernet.generate_key().decode())  # the key was replaced, the data was not
    await notifier.run_due(now=T0)
    [job] = await jobs_of(notifier)
    assert job["status"] == "PENDING" and "decrypt" in job["last_error"] and target.requests == []


async def test_the_delivery_loop_sends_enqueued_jobs_promptly(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "webhook", {"url": target.url})
    await notifier.start()
    await notifier.enqueue("acme", sample_alert(), "OPEN", [ch["channel_id"]])
    [received] = await target.wait_for(1, timeout=5)
    assert received.json()["event"] == "OPEN"
    for _ in range(100):  # the outcome is recorded just after the target answered
        if (await jobs_of(notifier))[0]["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.02)
    stats = await notifier.stats()
    assert stats["delivered"] == 1 and stats["jobs"]["COMPLETED"] == 1


# ---- dispatch: routing rules + device facts + throttle -----------------------------------------------
async def _device(db, device_id: str, site_id: str | None = None, tags: tuple[str, ...] = ()) -> None:
    from pulse.storage.tables import device_tags, devices

    async with db.begin() as conn:
        await conn.execute(devices.insert().values(tenant_id="acme", device_id=device_id, site_id=site_id, metadata={},
                                                   created_at=utcnow(), updated_at=utcnow()))
        for tag in tags:
            await conn.execute(device_tags.insert().values(tenant_id="acme", device_id=device_id, tag=tag))


async def test_dispatch_routes_by_rules_and_device_facts_from_the_store(notifier, http_targets):
    from pulse.storage import groups

    url = (await http_targets()).url
    ops, oncall, roof = [await make_channel(notifier, "webhook", {"url": url}) for _ in range(3)]
    await _device(notifier.db, "boiler-7", site_id="plant-a", tags=("roof",))
    group = await groups.create(notifier.db, "acme", {"name": "boilers"})
    await groups.add_member(notifier.db, "acme", group["group_id"], "boiler-7")
    for fields in ({"channel_ids": [oncall["channel_id"]], "priority": 1, "min_severity": 5, "stop": True},
                   {"channel_ids": [ops["channel_id"]], "priority": 2, "group_ids": [group["group_id"]]},
                   {"channel_ids": [roof["channel_id"]], "priority": 3, "tags": ["roof"], "site_ids": ["plant-a"]},
                   {"channel_ids": [oncall["channel_id"]], "priority": 4, "enabled": False}):
        await store.create_rule(notifier.db, "acme", {"events": ["OPEN"], **fields})

    ids = await notifier.dispatch("acme", sample_alert(1, severity=4), "OPEN", now=T0)
    assert [j["channel_id"] for j in await jobs_of(notifier, alert_id=1)] == [ops["channel_id"], roof["channel_id"]]
    assert len(ids) == 2
    await notifier.dispatch("acme", sample_alert(2, severity=5, fingerprint="F2"), "OPEN", now=T0)
    assert [j["channel_id"] for j in await jobs_of(notifier, alert_id=2)] == [oncall["channel_id"]]  # stop
    assert await notifier.dispatch("acme", sample_alert(3), "CLOSED", now=T0) == []
    assert await notifier.dispatch("globex", sample_alert(4), "OPEN", now=T0) == []


async def test_throttle_skips_a_flapping_alert_within_the_window(notifier, http_targets):
    ch = await make_channel(notifier, "webhook", {"url": (await http_targets()).url})
    await store.create_rule(notifier.db, "acme", {"channel_ids": [ch["channel_id"]], "events": ["OPEN"],
                                                  "throttle_minutes": 10})
    facts = {"group_ids": set(), "tags": set(), "site_id": None}
    assert len(await notifier.dispatch("acme", sample_alert(1), "OPEN", facts, now=T0)) == 1
    assert len(await notifier.dispatch("acme", sample_alert(1), "OPEN", facts, now=T0)) == 1  # same alert: same job
    assert await notifier.dispatch("acme", sample_alert(2), "OPEN", facts, now=T0 + 5 * 60 * S) == []  # re-opened
    assert len(await notifier.dispatch("acme", sample_alert(3, fingerprint="other"), "OPEN", facts,
                                       now=T0 + 5 * 60 * S)) == 1
    assert len(await notifier.dispatch("acme", sample_alert(4), "OPEN", facts, now=T0 + 11 * 60 * S)) == 1
    assert [j["alert_id"] for j in await jobs_of(notifier)] == [1, 3, 4]


async def test_jobs_keep_the_alert_as_it_was_at_the_event(notifier, http_targets):
    target = await http_targets()
    ch = await make_channel(notifier, "webhook", {"url": target.url})
    alert = sample_alert(severity=5, summary="first")
    await notifier.enqueue("acme", alert, "OPEN", [ch["channel_id"]], now=T0)
    alert["summary"] = "changed later"
    await notifier.run_due(now=T0)
    body = target.requests[0].json()
    assert body["alert"]["summary"] == "first" and body["alert"]["created_at"] == T0.isoformat()
    assert body["alert"]["severity_label"] == "critical" and json.loads(target.requests[0].body) == body
