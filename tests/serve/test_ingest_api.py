"""HTTP ingest: same envelopes, validation and quarantine as MQTT; token auth; per-device rate limit."""
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from pulse.domain.rate_limit import RateLimiter
from pulse.storage import quarantine, tokens

URL = "/ingest/v1/tenant/acme/device/d1/telemetry"


@pytest.fixture
async def token(api):
    r = await api.post("/api/v1/customer/devices", json={"device_id": "d1"})
    return r.json()["token"]


async def post(api, token, body, url=URL):
    return await api.client.post(url, json=body, headers={"X-Provision-Token": token} if token else {})


async def test_accepted_data_shows_in_history_and_latest_like_mqtt(api, token):
    r = await post(api, token, {"version": "1", "ts": "2026-01-01T00:00:00Z", "seq": 1, "metrics": {"temp": 20}})
    assert r.status_code == 202 and r.json()["accepted"] == 1
    r = await post(api, token, [{"seq": 2, "ts": "2026-01-01T00:01:00Z", "metrics": {"temp": 21}},
                                {"seq": 3, "metrics": {"temp": "bad"}}])
    assert r.status_code == 202 and r.json()["accepted"] == 1 and r.json()["rejected"][0]["reason"] == "METRIC_VALUE_INVALID"
    hist = (await api.get("/api/v1/customer/devices/d1/telemetry/history",
                          params={"metric": "temp", "start": "2026-01-01T00:00:00Z"})).json()
    assert [p["value"] for p in hist["points"]] == [20, 21]
    assert (await api.client.post("/ingest/v1/tenant/acme/device/d1/heartbeat", content=b"",
                                  headers={"X-Provision-Token": token})).status_code == 202


async def test_bad_tokens_are_401_and_quarantined(api, token):
    assert (await post(api, None, {"metrics": {"a": 1}})).status_code == 401
    assert (await post(api, token + "x", {"metrics": {"a": 1}})).status_code == 401
    other = "/ingest/v1/tenant/globex/device/d1/telemetry"
    assert (await post(api, token, {"metrics": {"a": 1}}, url=other)).status_code == 401
    reasons = (await api.get("/api/v1/customer/quarantine")).json()["counts_by_reason"]
    assert reasons == {"TOKEN_MISSING": 1, "TOKEN_INVALID": 1}


async def test_wholly_invalid_payload_is_422_and_quarantined(api, token):
    r = await api.client.post(URL, content=b"{nope", headers={"X-Provision-Token": token})
    assert r.status_code == 422 and r.json()["rejected"][0]["reason"] == "INVALID_JSON"
    assert (await api.get("/api/v1/customer/quarantine")).json()["total"] == 1
    assert (await api.client.post("/ingest/v1/tenant/acme/device/d1/bogus", json={},
                                  headers={"X-Provision-Token": token})).status_code == 422


async def test_per_device_rate_limit_answers_429(api, token):
    api.services.rate_limiter = RateLimiter(rate=0.001, burst=3)
    codes = [(await post(api, token, {"metrics": {"a": i}})).status_code for i in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    assert (await api.get("/api/v1/customer/quarantine", params={"reason": "RATE_LIMITED"})).json()["total"] == 2


@contextmanager
def statements(db):
    """The SQL statements the store runs meanwhile (a real count, on the engine)."""
    seen: list[str] = []
    engine = db.engine.sync_engine
    listener = lambda conn, cursor, sql, *rest: seen.append(sql)  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


async def test_unauthenticated_floods_cost_bounded_reads_and_quarantine_rows(api, token):
    """Junk under any tenant id: no token costs no read, wrong tokens a few reads per client, rows a fixed budget."""
    svc = api.services
    svc.quarantine_budget = RateLimiter(rate=0.001, burst=3)
    svc.auth_failures = RateLimiter(rate=0.001, burst=4)
    assert (await post(api, token, {"metrics": {"a": 1}})).status_code == 202
    with statements(svc.db) as seen:
        missing = [(await post(api, None, {"metrics": {"a": 1}}, url=f"/ingest/v1/tenant/t{i}/device/d/telemetry"))
                   .status_code for i in range(10)]
        reads = len(seen)
        wrong = [(await post(api, f"guess-{i}", {"metrics": {"a": 1}}, url=f"/ingest/v1/tenant/acme/device/x{i}/telemetry"))
                 .status_code for i in range(10)]
    assert missing == [401] * 10 and reads <= 3 * 3  # only the budgeted quarantine writes
    assert wrong == [401] * 4 + [429] * 6  # this client is refused before the lookup once its failures are spent
    assert sum(1 for sql in seen if "token_hash" in sql) == 4  # token lookups
    assert (await quarantine.list_events(svc.db, None, reason=None, device_id=None, limit=100, offset=0))[1] == 3
    # a device verified before keeps working from the same address (its verdict needs no lookup)
    assert (await post(api, token, {"metrics": {"a": 2}})).status_code == 202


async def test_a_revoked_token_is_refused_at_once_here_and_at_the_next_look_in_other_replicas(api, token):
    """Revoked through this replica: refused at once. Revoked elsewhere (the store only): refused as soon
    as the revocation feed looks again (once a second), well before the cached verdict would expire."""
    feed = api.services.revocations
    feed.interval_s = 3600.0
    assert (await post(api, token, {"metrics": {"a": 1}})).status_code == 202
    (active,) = await tokens.list_tokens(api.services.db, "acme", "d1")
    await tokens.revoke(api.services.db, "acme", "d1", active["token_id"])  # as another replica would
    feed.next_poll = 0.0  # the interval has passed
    r = await post(api, token, {"metrics": {"a": 2}})
    assert r.status_code == 401 and r.json()["reason"] == "TOKEN_INVALID"
    new = (await api.post("/api/v1/customer/devices/d1/tokens/rotate")).json()
    assert (await post(api, new["token"], {"metrics": {"a": 3}})).status_code == 202
    assert (await api.delete(f"/api/v1/customer/devices/d1/tokens/{new['token_id']}")).status_code == 204
    assert (await post(api, new["token"], {"metrics": {"a": 4}})).status_code == 401


def test_token_bucket_refills_over_time():
    rl = RateLimiter(rate=2, burst=2)
    assert [rl.allow("k", now=0) for _ in range(3)] == [True, True, False]
    assert rl.allow("k", now=0.5) and not rl.allow("k", now=0.5)
    assert rl.allow("other", now=0.5)
    assert rl.retry_after("k", now=0.5) == pytest.approx(0.5) and rl.retry_after("k", now=1.0) == 0
    assert rl.retry_after("k", now=1.0) == 0  # looking spends nothing
