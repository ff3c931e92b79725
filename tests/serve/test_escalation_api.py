"""Escalation policies over HTTP (CRUD, one default per tenant, target checks, tenancy, roles, 409/422)
and the alert escalation timers in the store (start, due, mark_escalated with its compare-and-set, stop),
walked by the scheduler's tick: the real `Notifier.escalate_due`."""
from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pulse.config.settings import Settings
from pulse.errors import Conflict, Invalid
from pulse.services.notifier import Notifier
from pulse.storage import escalation, tenants
from pulse.storage.db import Database
from pulse.storage.tables import alert_rules, alert_transitions, alerts, escalation_policies
from tests.serve.resources import make_channel

POLICIES = "/api/v1/customer/escalation-policies"
SCHEDULES = "/api/v1/customer/oncall-schedules"
RULES = "/api/v1/customer/alert-rules"
UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def lvl(delay: int, *targets: tuple[str, str]) -> dict:
    return {"delay_minutes": delay, "targets": [{"type": t, "id": i} for t, i in targets]}


USER = ("user", "ops@acme.example")


async def make_policy(api, name="standard", tenant="acme", **fields) -> dict:
    body = {"name": name, "levels": [lvl(0, USER)], **fields}
    r = await api.post(POLICIES, tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def make_schedule(api, tenant="acme") -> str:
    r = await api.post(SCHEDULES, tenant=tenant, json={"name": f"primary-{tenant}"})
    assert r.status_code == 201, r.text
    return r.json()["schedule_id"]


async def make_rule(api, name="too hot") -> str:
    r = await api.post(RULES, json={"name": name, "metric": "temp", "operator": "GT", "threshold": 30})
    assert r.status_code == 201, r.text
    return r.json()["rule_id"]


# ---- policies over HTTP ----------------------------------------------------------------------------
async def test_create_read_and_list_policies_by_name(api):
    ch, sched = await make_channel(api), await make_schedule(api)
    p = await make_policy(api, "night", description="after hours", repeat=2, levels=[
        lvl(0, ("channel", ch)), lvl(15, ("oncall_schedule", sched), USER, USER), lvl(30, USER)])
    assert p["policy_id"] and p["name"] == "night" and p["description"] == "after hours"
    assert p["is_default"] is False and p["repeat"] == 2
    assert [(lv["level"], lv["delay_minutes"], len(lv["targets"])) for lv in p["levels"]] == [(1, 0, 1), (2, 15, 2), (3, 30, 1)]
    assert p["levels"][1]["targets"] == [{"type": "oncall_schedule", "id": sched}, {"type": "user", "id": USER[1]}]
    assert p["tenant_id"] == "acme"  # a documented key
    assert (await api.get(f"{POLICIES}/{p['policy_id']}", role="customer_viewer")).json() == p

    await make_policy(api, "alpha")
    await make_policy(api, "zulu")
    await make_policy(api, "hidden", tenant="globex")
    r = (await api.get(POLICIES, role="customer_viewer")).json()
    assert [x["name"] for x in r["policies"]] == ["alpha", "night", "zulu"] and r["total"] == 3
    r = (await api.get(POLICIES, params={"limit": 1, "offset": 1})).json()
    assert [x["name"] for x in r["policies"]] == ["night"] and (r["limit"], r["offset"], r["total"]) == (1, 1, 3)


async def test_at_most_one_default_policy_per_tenant(api):
    a = await make_policy(api, "a", is_default=True)
    b = await make_policy(api, "b", is_default=True)
    other = await make_policy(api, "other", tenant="globex", is_default=True)
    defaults = lambda r: [x["name"] for x in r.json()["policies"] if x["is_default"]]  # noqa: E731
    assert defaults(await api.get(POLICIES)) == ["b"]
    r = await api.request("PUT", f"{POLICIES}/{a['policy_id']}", json={"is_default": True})
    assert r.status_code == 200 and r.json()["is_default"] is True
    assert defaults(await api.get(POLICIES)) == ["a"]
    assert defaults(await api.get(POLICIES, tenant="globex")) == ["other"]  # untouched
    await api.request("PUT", f"{POLICIES}/{a['policy_id']}", json={"is_default": False})
    assert defaults(await api.get(POLICIES)) == [] and b["policy_id"] != other["policy_id"]


async def test_names_are_unique_per_tenant(api):
    await make_policy(api, "standard")
    r = await api.post(POLICIES, json={"name": "standard", "levels": [lvl(0, USER)]})
    assert r.status_code == 409 and "standard" in r.json()["detail"]
    await make_policy(api, "standard", tenant="globex")
    other = await make_policy(api, "other")
    assert (await api.request("PUT", f"{POLICIES}/{other['policy_id']}", json={"name": "standard"})).status_code == 409
    assert (await api.request("PUT", f"{POLICIES}/{other['policy_id']}", json={"name": "other"})).status_code == 200


async def test_update_is_partial_and_checked_as_a_whole(api):
    p = await make_policy(api, "p", levels=[lvl(0, USER), lvl(10, USER)])
    url = f"{POLICIES}/{p['policy_id']}"
    r = await api.request("PUT", url, json={"description": "new", "repeat": 3})
    assert r.status_code == 200 and r.json()["description"] == "new" and r.json()["repeat"] == 3
    assert len(r.json()["levels"]) == 2 and r.json()["updated_at"] >= p["updated_at"]
    r = await api.request("PUT", url, json={"levels": [lvl(5, ("user", "b@acme.example"))]})
    assert r.status_code == 200 and [{k: lv[k] for k in ("level", "delay_minutes", "targets")}
                                     for lv in r.json()["levels"]] == [
        {"level": 1, "delay_minutes": 5, "targets": [{"type": "user", "id": "b@acme.example"}]}]
    # the stored repeat (3) needs a last level with a delay
    r = await api.request("PUT", url, json={"levels": [lvl(0, USER)]})
    assert r.status_code == 422 and "delay_minutes" in r.json()["detail"]
    for body in ({}, {"name": None}, {"levels": None}, {"bogus": 1}):
        assert (await api.request("PUT", url, json=body)).status_code == 422, body
    assert (await api.get(url)).json()["levels"][0]["delay_minutes"] == 5


async def test_documented_levels_and_unknown_fields(api):
    """Levels as the documented system writes them (`level_number`, `notify_email`, `oncall_schedule_id`,
    default delay 15) become targets; unknown fields are ignored."""
    sched = await make_schedule(api)
    body = {"name": "doc", "bogus": 1, "levels": [
        {"level_number": 2, "delay_minutes": 30, "oncall_schedule_id": sched, "extra": True},
        {"level_number": 1, "notify_email": "ops@acme.example"}]}
    r = await api.post(POLICIES, json=body)
    assert r.status_code == 201, r.text
    levels = r.json()["levels"]
    assert [(lv["level_number"], lv["delay_minutes"], lv["targets"]) for lv in levels] == [
        (1, 15, [{"type": "user", "id": "ops@acme.example"}]), (2, 30, [{"type": "oncall_schedule", "id": sched}])]
    assert levels[0]["notify_email"] == "ops@acme.example" and levels[1]["oncall_schedule_id"] == sched
    r = await api.post(POLICIES, json={"name": "hook", "levels": [{"notify_webhook": "https://hooks.example/x"}]})
    assert r.status_code == 422 and "notify_webhook" in r.text


MANY = [lvl(1, USER)] * 11
TOO_MANY_TARGETS = [{"type": "user", "id": f"u{i}@acme.example"} for i in range(21)]


@pytest.mark.parametrize("body", [
    {"name": "x"},
    {"name": "x", "levels": []},
    {"name": "x", "levels": MANY},
    {"name": "", "levels": [lvl(0, USER)]},
    {"name": "x", "levels": [lvl(-1, USER)]},
    {"name": "x", "levels": [lvl(1441, USER)]},
    {"name": "x", "levels": [{"delay_minutes": 0, "targets": []}]},
    {"name": "x", "levels": [{"delay_minutes": 0, "targets": TOO_MANY_TARGETS}]},
    {"name": "x", "levels": [lvl(0, ("sms", "123"))]},
    {"name": "x", "levels": [lvl(0, ("user", "has space"))]},
    {"name": "x", "levels": [lvl(0, ("channel", "c" * 37))]},
    {"name": "x", "levels": [{"delay_minutes": 0, "targets": [{"type": "user"}]}]},
    {"name": "x", "repeat": 6, "levels": [lvl(5, USER)]},
    {"name": "x", "repeat": -1, "levels": [lvl(5, USER)]},
    {"name": "x", "repeat": 1, "levels": [lvl(5, USER), lvl(0, USER)]},
    {"name": "x", "levels": [{"delay_minutes": 5, "notify_webhook": "https://hooks.example/x"}]},
])
async def test_invalid_policy_bodies_are_422(api, body):
    r = await api.post(POLICIES, json=body)
    assert r.status_code == 422 and r.json()["detail"]


async def test_targets_must_exist_in_the_tenant(api):
    mine, theirs = await make_channel(api), await make_channel(api, tenant="globex")
    sched_theirs = await make_schedule(api, tenant="globex")
    for target in (("channel", theirs), ("channel", "00000000-0000-0000-0000-000000000000"),
                   ("oncall_schedule", sched_theirs)):
        r = await api.post(POLICIES, json={"name": "x", "levels": [lvl(0, ("channel", mine)), lvl(5, target)]})
        assert r.status_code == 422 and target[1] in r.json()["detail"], r.text
    p = await make_policy(api, "ok", levels=[lvl(0, ("channel", mine))])
    r = await api.request("PUT", f"{POLICIES}/{p['policy_id']}", json={"levels": [lvl(0, ("channel", theirs))]})
    assert r.status_code == 422


async def test_other_tenants_policies_are_404(api):
    p = await make_policy(api, "mine")
    url = f"{POLICIES}/{p['policy_id']}"
    assert (await api.get(url, tenant="globex")).status_code == 404
    assert (await api.request("PUT", url, tenant="globex", json={"name": "stolen"})).status_code == 404
    assert (await api.delete(url, tenant="globex")).status_code == 404
    assert (await api.get(url)).json()["name"] == "mine"
    assert (await api.get(f"{POLICIES}/nope")).status_code == 404


async def test_viewers_read_but_cannot_write(api):
    p = await make_policy(api)
    url = f"{POLICIES}/{p['policy_id']}"
    v = {"role": "customer_viewer"}
    assert (await api.get(POLICIES, **v)).status_code == 200
    assert (await api.post(POLICIES, json={"name": "x", "levels": [lvl(0, USER)]}, **v)).status_code == 403
    assert (await api.request("PUT", url, json={"name": "y"}, **v)).status_code == 403
    assert (await api.delete(url, **v)).status_code == 403
    assert (await api.client.get(POLICIES)).status_code == 401
    assert (await api.get(POLICIES, tenant=None, role="operator")).status_code == 403


async def test_a_policy_an_alert_rule_names_cannot_be_deleted(api):
    p = await make_policy(api)
    rule_id = await make_rule(api)
    await escalation.link_rule(api.services.db, "acme", rule_id, p["policy_id"])
    assert (await api.get(f"{RULES}/{rule_id}")).json()["escalation_policy_id"] == p["policy_id"]
    r = await api.delete(f"{POLICIES}/{p['policy_id']}")
    assert r.status_code == 409 and "too hot" in r.json()["detail"]
    await escalation.link_rule(api.services.db, "acme", rule_id, None)
    assert (await api.delete(f"{POLICIES}/{p['policy_id']}")).status_code == 204
    assert (await api.delete(f"{POLICIES}/{p['policy_id']}")).status_code == 404
    assert (await api.get(POLICIES)).json()["total"] == 0


async def test_linking_a_rule_needs_a_policy_of_the_tenant(api):
    theirs = await make_policy(api, tenant="globex")
    rule_id = await make_rule(api)
    with pytest.raises(Invalid, match="unknown escalation policy"):
        await escalation.link_rule(api.services.db, "acme", rule_id, theirs["policy_id"])


# ---- alert timers in the store -----------------------------------------------------------------------
@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    try:
        yield db
    finally:
        await db.dispose()


async def store_policy(db, tenant="acme", name="p", **fields) -> str:
    body = {"name": name, "levels": [lvl(0, ("user", "a@x.io")), lvl(10, ("user", "b@x.io"))], **fields}
    return (await escalation.create(db, tenant, body))["policy_id"]


async def open_alert(db, tenant="acme", device="d1", rule_id=None, policy_id=None, opened_at=T0) -> int:
    """An alert as the tenant host creates it, with its timer armed in the same transaction."""
    async with db.begin() as conn:
        alert_id = (await conn.execute(alerts.insert().values(
            tenant_id=tenant, device_id=device, rule_id=rule_id, alert_type="THRESHOLD",
            fingerprint=f"RULE:{rule_id}:{device}:{opened_at.timestamp()}", status="OPEN", severity=4, summary="hot",
            triggered_at=opened_at, last_triggered_at=opened_at, details={}, created_at=opened_at,
        ).returning(alerts.c.alert_id))).scalar_one()
        await escalation.start(conn, tenant, alert_id, policy_id, opened_at, rule_id=rule_id)
    return alert_id


async def alert_row(db, alert_id) -> dict:
    async with db.connect() as conn:
        return dict((await conn.execute(sa.select(alerts).where(alerts.c.alert_id == alert_id))).one()._mapping)


async def escalations(db, alert_id) -> list[dict]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alert_transitions.c.details).where(
            alert_transitions.c.alert_id == alert_id, alert_transitions.c.action == "ESCALATED")
            .order_by(alert_transitions.c.id))
        return [r.details for r in rows]


# the notifier's settings: only its secrets box reads them (a fixed key, so no file is generated)
SCHEDULER = Settings(secrets_key=base64.urlsafe_b64encode(bytes(32)).decode())


async def escalate(db, now) -> int:
    """One scheduler tick of escalation, as the scheduler runs it: the real `Notifier.escalate_due`."""
    return await Notifier(SCHEDULER, db).escalate_due(now)


async def escalated_since(db, after_id: int) -> list[tuple[int, int, list[str]]]:
    """The ESCALATED transitions recorded after `after_id`: [(alert_id, level, target ids)]."""
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(alert_transitions.c.alert_id, alert_transitions.c.details).where(
            alert_transitions.c.id > after_id, alert_transitions.c.action == "ESCALATED")
            .order_by(alert_transitions.c.id))
        return [(r.alert_id, r.details["level"], r.details["targets"]["channel_ids"] + r.details["targets"]["people"])
                for r in rows]


async def last_transition(db) -> int:
    async with db.connect() as conn:
        return (await conn.execute(sa.select(sa.func.coalesce(sa.func.max(alert_transitions.c.id), 0)))).scalar_one()


async def tick(db, now) -> list[tuple[int, int, list[str]]]:
    """One escalation tick; -> the steps it fired [(alert_id, level, target ids)], read back from
    the transitions it recorded (one per step it counted)."""
    before = await last_transition(db)
    steps = await escalate(db, now)
    fired = await escalated_since(db, before)
    assert len(fired) == steps
    return fired


async def test_concurrent_defaults_leave_exactly_one(db):
    other = Database(db.url)
    try:
        results = await asyncio.gather(*(store_policy(d, name=f"p{i}", is_default=True)
                                         for i, d in enumerate([db, other] * 3)), return_exceptions=True)
    finally:
        await other.dispose()
    assert all(isinstance(r, str) or isinstance(r, Conflict) for r in results), results
    policies, _ = await escalation.list_policies(db, "acme", 50, 0)
    assert len(policies) == sum(isinstance(r, str) for r in results) >= 1
    assert sum(p["is_default"] for p in policies) == 1


async def test_start_arms_the_default_policy_and_ticks_walk_the_levels(db):
    pid = await store_policy(db, is_default=True, repeat=1)
    aid = await open_alert(db)
    row = await alert_row(db, aid)
    assert (row["escalation_policy_id"], row["escalation_level"], row["next_escalation_at"]) == (pid, 0, T0)
    assert await tick(db, T0 - timedelta(seconds=1)) == []
    assert await tick(db, T0) == [(aid, 1, ["a@x.io"])]
    assert await tick(db, T0 + timedelta(minutes=9)) == []
    assert await tick(db, T0 + timedelta(minutes=10)) == [(aid, 2, ["b@x.io"])]
    assert await tick(db, T0 + timedelta(minutes=20)) == [(aid, 3, ["b@x.io"])]  # the repeat
    row = await alert_row(db, aid)
    assert row["escalation_level"] == 3 and row["next_escalation_at"] is None
    assert row["last_escalated_at"] == T0 + timedelta(minutes=20)
    assert [e["level"] for e in await escalations(db, aid)] == [1, 2, 3]
    # the step's targets as resolved when it fired (users as given, on-call schedules as who was on call)
    assert (await escalations(db, aid))[0]["targets"] == {"channel_ids": [], "people": ["a@x.io"]}
    assert await tick(db, T0 + timedelta(days=1)) == []


async def test_the_rules_policy_wins_over_the_default_and_no_policy_means_no_escalation(db):
    await store_policy(db, name="default", is_default=True)
    special = await store_policy(db, name="special", levels=[lvl(5, ("user", "boss@x.io"))])
    async with db.begin() as conn:
        await conn.execute(alert_rules.insert().values(
            rule_id="r1", tenant_id="acme", name="r", created_at=T0, updated_at=T0, config={},
            escalation_policy_id=special))
    from_rule = await open_alert(db, rule_id="r1")
    assert (await alert_row(db, from_rule))["escalation_policy_id"] == special
    assert (await alert_row(db, from_rule))["next_escalation_at"] == T0 + timedelta(minutes=5)
    explicit = await open_alert(db, device="d2", policy_id=special)
    assert (await alert_row(db, explicit))["escalation_policy_id"] == special
    dangling = await open_alert(db, device="d3", policy_id="gone")  # deleted since: the default
    assert (await alert_row(db, dangling))["escalation_policy_id"] != special
    none = await open_alert(db, tenant="globex")  # globex has no policy at all
    row = await alert_row(db, none)
    assert row["escalation_policy_id"] is None and row["next_escalation_at"] is None
    assert {a["alert_id"] for a in await escalation.due(db, T0 + timedelta(hours=1))} == {from_rule, explicit, dangling}


async def test_acknowledged_closed_and_silenced_alerts_do_not_escalate(db):
    await store_policy(db, is_default=True)
    acked, closed, silenced, stopped, fine = [await open_alert(db, device=f"d{i}") for i in range(5)]
    later = T0 + timedelta(minutes=30)
    async with db.begin() as conn:
        await conn.execute(alerts.update().where(alerts.c.alert_id == acked).values(
            status="ACKNOWLEDGED", acknowledged_at=T0))
        await conn.execute(alerts.update().where(alerts.c.alert_id == closed).values(status="CLOSED", closed_at=T0))
        await conn.execute(alerts.update().where(alerts.c.alert_id == silenced).values(silenced_until=later))
        await escalation.stop(conn, stopped)
    assert [a["alert_id"] for a in await escalation.due(db, T0)] == [fine]
    due_later = await escalation.due(db, later)
    assert {a["alert_id"] for a in due_later} == {fine, silenced}  # silence postpones, it does not cancel
    assert due_later[0]["policy"]["levels"][0]["targets"] == [{"type": "user", "id": "a@x.io"}]
    assert (await alert_row(db, stopped))["next_escalation_at"] is None


async def test_due_is_cross_tenant_oldest_first_and_limited(db):
    await store_policy(db, "acme", is_default=True)
    await store_policy(db, "globex", is_default=True)
    ids = [await open_alert(db, tenant=t, device=f"d{i}", opened_at=T0 + timedelta(minutes=i))
           for i, t in enumerate(["globex", "acme", "globex", "acme"])]
    due = await escalation.due(db, T0 + timedelta(hours=1), limit=3)
    assert [a["alert_id"] for a in due] == ids[:3]
    assert [a["tenant_id"] for a in due] == ["globex", "acme", "globex"]


async def test_mark_escalated_is_a_compare_and_set_on_the_level(db):
    await store_policy(db, is_default=True)
    aid = await open_alert(db)
    assert await escalation.mark_escalated(db, "acme", aid, 1, T0 + timedelta(minutes=10), T0)
    assert not await escalation.mark_escalated(db, "acme", aid, 1, T0 + timedelta(minutes=10), T0)  # already at 1
    assert not await escalation.mark_escalated(db, "acme", aid, 3, None, T0)  # skipping a level
    assert not await escalation.mark_escalated(db, "globex", aid, 2, None, T0)  # another tenant's id
    async with db.begin() as conn:
        await escalation.stop(conn, aid)
    assert not await escalation.mark_escalated(db, "acme", aid, 2, None, T0)  # acknowledged meanwhile
    assert [e["level"] for e in await escalations(db, aid)] == [1]


async def test_two_schedulers_never_escalate_the_same_step_twice(db):
    await store_policy(db, is_default=True)
    ids = [await open_alert(db, device=f"d{i}") for i in range(8)]
    before = await last_transition(db)
    other = Database(db.url)  # a second scheduler process: its own engine and connections
    try:
        steps = await asyncio.gather(escalate(db, T0), escalate(other, T0), escalate(db, T0), escalate(other, T0))
    finally:
        await other.dispose()
    assert sum(steps) == len(ids)  # each step counted (paged) by exactly one of them
    fired = sorted(await escalated_since(db, before))
    assert fired == sorted((aid, 1, ["a@x.io"]) for aid in ids)
    for aid in ids:
        assert [e["level"] for e in await escalations(db, aid)] == [1]
        assert (await alert_row(db, aid))["escalation_level"] == 1


async def test_timers_survive_a_restart(db):
    await store_policy(db, is_default=True)
    aid = await open_alert(db)
    await tick(db, T0)
    fresh = Database(db.url)  # a new process after a restart: nothing but the store
    try:
        assert await tick(fresh, T0 + timedelta(minutes=10)) == [(aid, 2, ["b@x.io"])]
    finally:
        await fresh.dispose()


async def test_a_shortened_or_deleted_policy_ends_the_chain(db):
    pid = await store_policy(db, is_default=True)
    aid = await open_alert(db)
    await tick(db, T0)
    await escalation.update(db, "acme", pid, {"levels": [lvl(0, ("user", "a@x.io"))]})
    assert await tick(db, T0 + timedelta(minutes=10)) == []
    assert (await alert_row(db, aid))["next_escalation_at"] is None

    other = await open_alert(db, device="d2")
    await escalation.delete(db, "acme", pid)
    assert (await alert_row(db, other))["next_escalation_at"] is None
    assert await escalation.due(db, T0 + timedelta(days=1)) == []
    async with db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(escalation_policies))).scalar_one() == 0


async def test_resolve_targets_expands_channels_people_and_on_call(db):
    from pulse.storage import oncall

    sched = await oncall.create_schedule(db, "acme", {"name": "primary", "timezone": "UTC"})
    targets = [{"type": "channel", "id": "c1"}, {"type": "user", "id": "a@x.io"}, {"type": "channel", "id": "c1"},
               {"type": "oncall_schedule", "id": sched["schedule_id"]}, {"type": "oncall_schedule", "id": "gone"}]
    got = await escalation.resolve_targets(db, "acme", targets, T0)
    assert got == {"channel_ids": ["c1"], "people": ["a@x.io"]}  # nobody on call in a schedule without layers


async def test_a_level_sent_in_an_update_without_its_delay_takes_the_default(api):
    """Found by the fuzzer: a PUT whose level left out delay_minutes was a 500."""
    policy = await make_policy(api)
    r = await api.request("PUT", f"{POLICIES}/{policy['policy_id']}",
                          json={"levels": [{"targets": [{"type": "user", "id": "ops@acme.example"}]}]})
    assert r.status_code == 200, r.text
    assert r.json()["levels"][0]["delay_minutes"] == 15
