"""CarrierSync without a carrier: which integrations are due, outcomes recorded per integration when
the carrier is unreachable or the credentials unreadable, request settling (idempotent, give-up time),
data-usage threshold crossings, and how provider errors become HTTP answers."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulse.config.settings import Settings
from pulse.domain.carriers import usage_alert
from pulse.services.carrier_sync import REQUEST_GIVE_UP, CarrierSync
from pulse.services.carriers import apply_settled, failure
from pulse.integrations.carriers.base import CarrierAuthError, CarrierError, NotSupported, Unavailable
from pulse.storage import carriers as store
from pulse.storage import tenants
from pulse.storage.db import Database, utcnow
from pulse.storage.tables import carrier_integrations, carrier_requests, devices
from tests.broker.fixtures import free_port


@pytest.fixture
async def env(db_url: str, tmp_path) -> AsyncIterator[tuple[CarrierSync, Database]]:
    settings = Settings(data_dir=tmp_path / "pulse", database_url=db_url, carrier_retry_attempts=2,
                        carrier_retry_base_s=0.01, carrier_http_timeout_s=2.0)
    db = Database(db_url)
    await db.migrate()
    for t in ("acme", "globex"):
        await tenants.ensure_tenant(db, t)
    now = utcnow()
    async with db.begin() as conn:
        await conn.execute(devices.insert(), [{"tenant_id": t, "device_id": d, "metadata": {}, "created_at": now,
                                               "updated_at": now} for t in ("acme", "globex") for d in ("d1", "d2")])
    sync = CarrierSync(settings, db=db)
    await sync.start()
    try:
        yield sync, db
    finally:
        await sync.stop()
        await db.dispose()


DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused at once


async def integration(sync: CarrierSync, tenant: str = "acme", carrier: str = "1nce", **fields) -> int:
    body = {"carrier_name": carrier, "api_base_url": DEAD, "api_key": "client-id", "api_secret": "client-secret",
            "account_id": "0000123456-00001", **fields}
    return (await store.create_integration(sync.db, sync.box, tenant, body))["id"]


async def set_values(db: Database, integration_id: int, **values) -> None:
    async with db.begin() as conn:
        await conn.execute(carrier_integrations.update()
                           .where(carrier_integrations.c.integration_id == integration_id).values(**values))


async def test_due_means_enabled_sync_enabled_and_interval_passed(env):
    sync, db = env
    never = await integration(sync)
    recent = await integration(sync, carrier="thingspace")
    overdue = await integration(sync, tenant="globex", sync_interval_minutes=5)
    off = await integration(sync, tenant="globex", carrier="thingspace", sync_enabled=False)
    now = utcnow()
    await set_values(db, recent, last_sync_at=now - timedelta(minutes=59))  # default interval: 60
    await set_values(db, overdue, last_sync_at=now - timedelta(minutes=6))
    assert await store.due_integrations(db, now) == [never, overdue]
    await set_values(db, never, enabled=False)
    assert await store.due_integrations(db, now) == [overdue]
    assert await store.due_integrations(db, now + timedelta(minutes=2)) == [recent, overdue]
    assert off not in await store.due_integrations(db, now + timedelta(days=2))


async def test_a_line_linked_after_the_last_sync_makes_its_integration_due_again(env):
    sync, db = env
    synced = await integration(sync)
    now = utcnow()
    await set_values(db, synced, last_sync_at=now - timedelta(minutes=1))
    assert await store.due_integrations(db, now) == []
    await store.link_device(db, "acme", "d1", synced, "8988280666000000001", {"sim_status": "active"})
    assert await store.due_integrations(db, utcnow()) == [synced]
    await set_values(db, synced, last_sync_at=utcnow() + timedelta(seconds=1))  # synced since: not due
    assert await store.due_integrations(db, utcnow()) == []


async def test_each_due_integration_is_synced_and_its_outcome_recorded(env):
    sync, db = env
    unreachable = await integration(sync)
    await store.link_device(db, "acme", "d1", unreachable, "8988280666000000001", {})
    empty = await integration(sync, tenant="globex")
    unreadable = await integration(sync, carrier="thingspace")
    await set_values(db, unreadable, secrets="not-a-fernet-token")
    assert await sync.sync_due() == 3
    by_id = {i["id"]: i for i in (await store.list_integrations(db, sync.box, tenant_id=None, limit=10, offset=0))[0]}
    assert by_id[unreachable]["last_sync_status"] == "error"
    assert "carrier unavailable" in by_id[unreachable]["last_sync_error"]
    assert by_id[empty]["last_sync_status"] == "success"  # nothing linked: nothing failed
    assert by_id[unreadable]["last_sync_status"] == "error" and "secrets_key" in by_id[unreadable]["last_sync_error"]
    assert await sync.sync_due() == 0  # each waits for its interval again, failed or not
    assert (await sync.stats())["sync_errors"] == 2


async def pending(db: Database, integration_id: int, request_id: str, action: str = "suspend",
                  device_id: str = "d1") -> dict:
    return await store.add_request(db, tenant_id="acme", integration_id=integration_id, device_id=device_id,
                                   carrier_device_id="8988280666000000001", action=action, request_id=request_id,
                                   state="pending", detail=None, requested_by="admin@acme")


async def test_a_request_settles_once_and_moves_its_line(env):
    sync, db = env
    iid = await integration(sync)
    await store.link_device(db, "acme", "d1", iid, "8988280666000000001", {"sim_status": "active"})
    await pending(db, iid, "req-1")
    row = await store.settle_request(db, iid, "req-1", "succeeded", "Success")
    assert row is not None and row["state"] == "succeeded" and row["completed_at"] is not None
    await apply_settled(db, row)
    assert (await store.get_link(db, "acme", "d1"))["sim_status"] == "suspended"
    assert await store.settle_request(db, iid, "req-1", "failed", "late duplicate") is None
    assert (await store.find_request(db, iid, "req-1"))["state"] == "succeeded"
    assert await store.settle_request(db, iid, "nobody-asked", "succeeded", None) is None


async def test_requests_without_an_answer_fail_after_the_give_up_time(env):
    sync, db = env
    iid = await integration(sync)
    await store.link_device(db, "acme", "d1", iid, "8988280666000000001", {"sim_status": "active"})
    await pending(db, iid, "old")
    await pending(db, iid, "fresh", device_id="d2")
    async with db.begin() as conn:
        await conn.execute(carrier_requests.update().where(carrier_requests.c.request_id == "old")
                           .values(created_at=utcnow() - REQUEST_GIVE_UP - timedelta(minutes=1)))
    assert await sync.poll_requests() == 1  # the fresh one waits: the carrier is unreachable
    old, fresh = await store.find_request(db, iid, "old"), await store.find_request(db, iid, "fresh")
    assert old["state"] == "failed" and "no result from the carrier within 72 h" in old["detail"]
    assert fresh["state"] == "pending"
    assert (await store.get_link(db, "acme", "d1"))["sim_status"] == "active"  # a failure changes nothing


async def test_deleting_an_integration_removes_its_links_requests_and_history(env):
    sync, db = env
    iid = await integration(sync)
    await store.link_device(db, "acme", "d1", iid, "8988280666000000001", {})
    await store.record_usage(db, "acme", "d1", {"data_used_bytes": 5, "data_limit_bytes": 10}, None, utcnow())
    await pending(db, iid, "req-1")
    gone = await store.delete_integration(db, iid, "acme")
    assert gone["unlinked_devices"] == ["d1"]
    assert await store.usage_history(db, "acme", "d1", 10) == []
    async with db.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(carrier_requests))).scalar_one() == 0


def test_usage_alert_fires_on_crossings_only():
    at = utcnow()
    assert usage_alert("acme", "d1", False, None, 80.0, at, {}) == (None, None)  # no plan limit: unknown
    assert usage_alert("acme", "d1", False, 79.99, 80.0, at, {}) == (False, None)
    active, event = usage_alert("acme", "d1", False, 80.0, 80.0, at, {"data_limit_bytes": 10})
    assert active is True and event.kind == "open" and event.alert_type == "CARRIER_DATA_USAGE"
    assert event.value == 80.0 and event.details["threshold_pct"] == 80.0 and event.fingerprint == "CARRIER_DATA_USAGE:d1"
    assert usage_alert("acme", "d1", True, 95.0, 80.0, at, {}) == (True, None)
    active, event = usage_alert("acme", "d1", True, 3.0, 80.0, at, {})  # a new billing cycle
    assert active is False and event.kind == "clear"


@pytest.mark.parametrize("error, status", [
    (NotSupported("1nce does not support diagnostics", 501), 501),
    (CarrierAuthError("bad login", 400), 502),
    (Unavailable("GET /x failed after 2 attempts"), 503),
    (CarrierError("no such device", 404), 404),
    (CarrierError("state invalid", 409), 409),
    (CarrierError("bad input", 400), 422),
    (CarrierError("weird answer", 502), 502),
])
def test_provider_errors_map_to_http_answers(error, status):
    mapped = failure(error, "thingspace")
    assert mapped.status_code == status and str(error) in mapped.detail
