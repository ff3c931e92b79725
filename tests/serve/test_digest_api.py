"""Alert digest settings over HTTP (defaults, partial PUT, validation, tenancy, roles) and the digest
store: which digests are due, what one reports, and recording a send."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pulse.storage import digest, tenants
from pulse.storage.db import Database
from pulse.storage.tables import alert_digest_settings, alerts
from tests.serve.resources import make_channel

URL = "/api/v1/customer/alert-digest-settings"
UTC = timezone.utc
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
DAILY = {"frequency": "daily", "recipients": ["ops@acme.example"], "send_at_hour": 7, "timezone": "Europe/Berlin"}


async def put(api, body, **kw):
    return await api.request("PUT", URL, json=body, **kw)


async def test_get_answers_the_disabled_defaults_until_settings_are_stored(api):
    r = await api.get(URL, role="customer_viewer")
    assert r.status_code == 200
    assert r.json() == {"frequency": "disabled", "recipients": [], "channel_id": None, "send_at_hour": 8,
                        "send_on_day": "mon", "timezone": "UTC", "last_sent_at": None, "created_at": None,
                        "updated_at": None, "email": ""}


async def test_put_stores_settings_and_get_reads_them_back(api):
    r = await put(api, {**DAILY, "recipients": ["Ops@Acme.example", "ops@acme.example", "noc@acme.example"]})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["frequency"] == "daily" and s["recipients"] == ["ops@acme.example", "noc@acme.example"]
    assert (s["send_at_hour"], s["timezone"], s["last_sent_at"]) == (7, "Europe/Berlin", None)
    assert s["updated_at"] and "tenant_id" not in s
    assert s["ok"] is True and s["email"] == "ops@acme.example"  # the documented keys
    assert (await api.get(URL)).json() == {k: v for k, v in s.items() if k != "ok"}


async def test_put_changes_only_the_given_fields_and_ignores_read_only_ones(api):
    stored = (await put(api, DAILY)).json()
    r = await put(api, {"frequency": "disabled"})
    assert r.status_code == 200 and r.json()["frequency"] == "disabled"
    assert r.json()["recipients"] == DAILY["recipients"] and r.json()["timezone"] == "Europe/Berlin"
    back = {**stored, "frequency": "weekly", "send_on_day": "fri", "last_sent_at": "2020-01-01T00:00:00Z"}
    r = await put(api, back)  # a GET response sent back: read-only fields are ignored
    assert r.status_code == 200, r.text
    assert (r.json()["frequency"], r.json()["send_on_day"], r.json()["last_sent_at"]) == ("weekly", "fri", None)
    assert r.json()["created_at"] == stored["created_at"]


async def test_settings_are_per_tenant(api):
    await put(api, DAILY)
    assert (await api.get(URL, tenant="globex")).json()["frequency"] == "disabled"
    await put(api, {"frequency": "hourly", "recipients": ["x@globex.example"]}, tenant="globex")
    assert (await api.get(URL)).json()["recipients"] == DAILY["recipients"]


async def test_viewers_cannot_change_settings(api):
    assert (await put(api, DAILY, role="customer_viewer")).status_code == 403
    assert (await api.get(URL)).json()["frequency"] == "disabled"
    assert (await api.client.request("PUT", URL, json=DAILY)).status_code == 401


async def test_documented_email_and_unknown_fields(api):
    """The documented body `{frequency, email}` works; unknown fields are ignored, as there."""
    r = await put(api, {"frequency": "weekly", "email": "Boss@Acme.example", "bogus": 1})
    assert r.status_code == 200, r.text
    assert (r.json()["recipients"], r.json()["email"], r.json()["ok"]) == (["boss@acme.example"], "boss@acme.example", True)
    assert (await put(api, {"frequency": "disabled", "email": ""})).json()["recipients"] == []


async def test_channel_must_be_an_email_channel_of_the_tenant(api):
    email, webhook = await make_channel(api, "email"), await make_channel(api, "webhook")
    theirs = await make_channel(api, "email", tenant="globex")
    r = await put(api, {**DAILY, "channel_id": email})
    assert r.status_code == 200 and r.json()["channel_id"] == email
    for bad, words in ((webhook, "email channel"), (theirs, "unknown"), ("nope", "unknown")):
        r = await put(api, {"channel_id": bad})
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    r = await put(api, {"channel_id": None})
    assert r.status_code == 200 and r.json()["channel_id"] is None


@pytest.mark.parametrize("body", [
    {}, {"frequency": "monthly"}, {"frequency": None}, {**DAILY, "timezone": "Mars/Olympus"},
    {**DAILY, "timezone": "localtime"}, {**DAILY, "send_at_hour": 24}, {**DAILY, "send_at_hour": -1},
    {**DAILY, "send_on_day": "funday"}, {**DAILY, "recipients": ["not-an-email"]},
    {**DAILY, "recipients": [f"u{i}@acme.example" for i in range(21)]}, {"frequency": "daily"},
    {**DAILY, "recipients": []}, {"recipients": None},
])
async def test_invalid_settings_are_422(api, body):
    r = await put(api, body)
    assert r.status_code == 422 and r.json()["detail"], r.text
    assert (await api.get(URL)).json()["frequency"] == "disabled"


# ---- the digest store ------------------------------------------------------------------------------
@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate()
    for t in ("acme", "globex", "initech"):
        await tenants.ensure_tenant(db, t)
    try:
        yield db
    finally:
        await db.dispose()


async def store(db, tenant, saved_at=T0 - timedelta(days=7), **fields):
    await digest.put_settings(db, tenant, {**digest.document(digest.DEFAULTS), **fields})
    async with db.begin() as conn:  # as if saved back then
        await conn.execute(alert_digest_settings.update().where(alert_digest_settings.c.tenant_id == tenant)
                           .values(updated_at=saved_at))


async def test_due_digests_follow_each_tenants_schedule(db):
    saved = T0 - timedelta(hours=12)  # last night: yesterday's 10:00 slot was before it
    await store(db, "acme", saved, frequency="daily", recipients=["a@x.io"], send_at_hour=9)
    await store(db, "globex", saved, frequency="daily", recipients=["g@x.io"], send_at_hour=10)
    await store(db, "initech", frequency="disabled")
    assert [s["tenant_id"] for s in await digest.due_digests(db, T0)] == ["acme"]
    assert await digest.mark_sent(db, "acme", T0)
    assert await digest.due_digests(db, T0 + timedelta(minutes=30)) == []
    due = await digest.due_digests(db, T0 + timedelta(hours=1))
    assert [(s["tenant_id"], s["recipients"]) for s in due] == [("globex", ["g@x.io"])]


async def test_mark_sent_never_moves_back(db):
    await store(db, "acme", frequency="hourly", recipients=["a@x.io"])
    assert await digest.mark_sent(db, "acme", T0)
    assert not await digest.mark_sent(db, "acme", T0 - timedelta(hours=1))
    assert (await digest.get_settings(db, "acme"))["last_sent_at"] == T0
    assert not await digest.mark_sent(db, "globex", T0)  # nothing stored


async def add_alert(db, tenant, device, severity, status, at):
    async with db.begin() as conn:
        await conn.execute(alerts.insert().values(
            tenant_id=tenant, device_id=device, alert_type="THRESHOLD", fingerprint=f"{device}:{at.timestamp()}",
            status=status, severity=severity, summary="s", triggered_at=at, last_triggered_at=at, details={},
            created_at=at))


async def test_digest_content_counts_the_period_and_what_is_open_now(db):
    h = timedelta(hours=1)
    since, until = T0 - 24 * h, T0
    for device, severity, status, at in [
        ("d1", 5, "OPEN", T0 - h), ("d1", 5, "CLOSED", T0 - 2 * h), ("d1", 3, "ACKNOWLEDGED", T0 - 3 * h),
        ("d2", 4, "OPEN", T0 - 4 * h), ("d2", 1, "CLOSED", T0 - 5 * h), ("d3", 2, "OPEN", T0 - 6 * h),
        ("d9", 5, "OPEN", T0 - 48 * h),  # before the period: open now, not opened in it
        ("d8", 5, "OPEN", T0),  # at `until`: the next digest's
    ]:
        await add_alert(db, "acme", device, severity, status, at)
    await add_alert(db, "globex", "d1", 5, "OPEN", T0 - h)
    c = await digest.digest_content(db, "acme", since, until)
    assert (c["tenant_id"], c["since"], c["until"]) == ("acme", since, until)
    assert c["opened"] == {"total": 6, "by_severity": {"critical": 2, "major": 1, "minor": 1, "warning": 1, "info": 1},
                           "by_status": {"OPEN": 3, "ACKNOWLEDGED": 1, "CLOSED": 2}}
    assert list(c["opened"]["by_severity"]) == ["critical", "major", "minor", "warning", "info"]
    assert c["open_now"] == {"total": 6, "by_severity": {"critical": 3, "major": 1, "minor": 1, "warning": 1, "info": 0},
                             "by_status": {"OPEN": 5, "ACKNOWLEDGED": 1}}
    assert c["top_devices"] == [{"device_id": "d1", "alerts": 3}, {"device_id": "d2", "alerts": 2},
                                {"device_id": "d3", "alerts": 1}]


async def test_an_empty_period_reports_zeros(db):
    c = await digest.digest_content(db, "acme", T0 - timedelta(days=1), T0)
    assert c["opened"]["total"] == 0 and c["open_now"]["total"] == 0 and c["top_devices"] == []
    assert set(c["opened"]["by_severity"].values()) == {0}
    async with db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(alert_digest_settings))).scalar_one() == 0
