"""Carrier sync and carrier requests end to end: the Pulse API and the CarrierSync actor against the
ThingSpace and 1NCE simulators over HTTP on 127.0.0.1 (session expiry mid-sync, asynchronous suspend
settled by polling and by callback, the 1NCE rate limit, one carrier down while another is up,
data-usage alerts)."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime
from collections.abc import AsyncIterator, Iterator

import pytest
import sqlalchemy as sa
import uvicorn

from pulse.services.carrier_sync import CarrierSync
from pulse.serve.app import create_app
from pulse.simulators import onence as onence_sim
from pulse.simulators import thingspace as ts_sim
from pulse.simulators.onence import OneNceSim, SimCard
from pulse.simulators.server import SimServer
from pulse.simulators.thingspace import ThingSpaceSim
from pulse.storage import carriers as store
from pulse.storage.tables import carrier_callbacks
from tests.broker.fixtures import free_port
from tests.integrations.carriers.helpers import INTEGRATIONS, fast_carrier_retries, line

TS_LINES = ["89148000000000000001", "89148000000000000002", "89148000000000000003"]


@pytest.fixture
async def capi(api):
    return fast_carrier_retries(api)


@pytest.fixture
def thingspace() -> Iterator[SimServer]:
    with SimServer(ThingSpaceSim(change_delay_s=0.1, callback_retry_s=0.1)) as server:
        yield server


@pytest.fixture
def onence() -> Iterator[SimServer]:
    with SimServer(OneNceSim()) as server:  # the documented 10 req/s limit
        yield server


@pytest.fixture
async def sync(capi) -> AsyncIterator[CarrierSync]:
    actor = CarrierSync(capi.services.settings, db=capi.services.db, runtime=capi.services.runtime)
    await actor.start()
    yield actor
    await actor.stop()


async def ts_integration(api, server: SimServer, tenant: str = "acme") -> int:
    body = {"carrier_name": "thingspace", "api_base_url": server.base_url, "account_id": ts_sim.DEMO_ACCOUNT,
            "api_key": ts_sim.DEMO_CLIENT_ID, "api_secret": ts_sim.DEMO_CLIENT_SECRET,
            "username": ts_sim.DEMO_USERNAME, "password": ts_sim.DEMO_PASSWORD}
    r = await api.post(INTEGRATIONS, tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def onence_integration(api, server: SimServer, tenant: str = "acme") -> int:
    body = {"carrier_name": "1nce", "api_base_url": f"{server.base_url}/management-api",
            "api_key": onence_sim.DEMO_CLIENT_ID, "api_secret": onence_sim.DEMO_CLIENT_SECRET}
    r = await api.post(INTEGRATIONS, tenant=tenant, json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def link(api, device: str, integration_id: int, carrier_device_id: str, tenant: str = "acme") -> dict:
    assert (await api.post("/api/v1/customer/devices", tenant=tenant, json={"device_id": device})).status_code == 201
    r = await api.post(line(device, "link"), tenant=tenant,
                       json={"carrier_integration_id": integration_id, "carrier_device_id": carrier_device_id})
    assert r.status_code == 200, r.text
    return r.json()


async def eventually(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# ---- ThingSpace ----------------------------------------------------------------------------------
@pytest.fixture
def expiring_thingspace() -> Iterator[SimServer]:
    """ThingSpace whose sessions all expire once `expire_at_list` device reads have been answered."""
    sim = ThingSpaceSim()
    sim.expire_at_list, lists = 0, 0

    @sim.app.middleware("http")
    async def expire_mid_sync(request, call_next):
        nonlocal lists
        response = await call_next(request)
        if request.url.path.endswith("/devices/actions/list"):
            lists += 1
            if lists == sim.expire_at_list:
                sim.expire_sessions()
        return response

    with SimServer(sim) as server:
        yield server


async def test_thingspace_session_expiring_mid_sync_logs_in_once_more(capi, expiring_thingspace, sync):
    server = expiring_thingspace
    sim: ThingSpaceSim = server.sim
    iid = await ts_integration(capi, server)
    for n, iccid in enumerate(TS_LINES):
        await link(capi, f"d{n}", iid, iccid)
    logins = sim.login_attempts
    sim.expire_at_list = sim.count("POST", "/api/m2m/v1/devices/actions/list") + 2  # after the 2nd read of the sync
    result = await sync.sync_integration(iid)
    assert result["status"] == "success" and result["synced"] == 3, result
    assert sim.login_attempts - logins == 2  # the sync's login, and one re-login after the expiry
    integration = (await capi.get(f"{INTEGRATIONS}/{iid}")).json()
    assert integration["last_sync_status"] == "success" and integration["last_sync_error"] is None
    usage = (await capi.get(line("d1", "usage"))).json()
    start, end = (datetime.fromisoformat(usage[k]).date() for k in ("billing_cycle_start", "billing_cycle_end"))
    expected = sum(b for day, (b, _) in sim.device(TS_LINES[1]).usage.items() if start <= day < end)
    assert usage["data_used_bytes"] == expected and usage["data_limit_bytes"] == 1024 ** 3  # M2M1GB
    assert len(usage["history"]) == 1 and usage["data_used_pct"] is not None
    assert (await capi.get(line("d0", "status"))).json()["sim_status"] == "active"


async def test_a_line_the_carrier_does_not_know_makes_the_sync_partial(capi, thingspace, sync):
    iid = await ts_integration(capi, thingspace)
    await link(capi, "known", iid, TS_LINES[0])
    assert (await capi.post("/api/v1/customer/devices", json={"device_id": "gone"})).status_code == 201
    await store.link_device(capi.services.db, "acme", "gone", iid, "89148000000000009999", {})  # since removed
    result = await sync.sync_integration(iid)
    assert result["status"] == "partial" and (result["synced"], result["failed"]) == (1, 1), result
    assert result["error"].startswith("gone: ") and "not found" in result["error"]
    assert (await capi.get(line("gone", "status"))).json()["last_sync_error"]
    known = (await capi.get(line("known", "usage"))).json()
    assert known["data_used_bytes"] > 0 and len(known["history"]) == 1


async def test_thingspace_suspend_is_pending_until_polled(capi, thingspace, sync):
    thingspace.sim.change_delay_s = 0.4  # long enough to see the suspension pending
    iid = await ts_integration(capi, thingspace)
    await link(capi, "pump", iid, TS_LINES[0])
    r = await capi.post(line("pump", "actions/reboot"))  # no callback URL, and SMS status cannot be polled
    assert r.status_code == 200 and thingspace.sim.sms_sent[-1]["message"] == "REBOOT"
    assert r.json()["state"] == "sent" and "outcome unknown" in r.json()["detail"]
    await eventually(lambda: thingspace.sim.requests_by_id[r.json()["request_id"]].status == "Success")
    r = await capi.post(line("pump", "actions/suspend"))
    assert r.status_code == 202, r.text
    request_id = r.json()["request_id"]
    assert r.json()["state"] == "pending" and request_id
    status = (await capi.get(line("pump", "status"))).json()
    assert [q["action"] for q in status["pending_requests"]] == ["suspend"]

    assert await sync.poll_requests() == 0  # the suspension still pending at the carrier
    await eventually(lambda: thingspace.sim.requests_by_id[request_id].status == "Success")
    assert await sync.poll_requests() == 1
    assert await sync.poll_requests() == 0  # settled once
    status = (await capi.get(line("pump", "status"))).json()
    assert status["sim_status"] == "suspended" and status["pending_requests"] == []
    assert status["recent_requests"][0]["state"] == "succeeded"

    r = await capi.post(line("pump", "actions/reboot"))  # an SMS "REBOOT" cannot reach a suspended line
    assert r.status_code == 409 and "SMS not possible" in r.json()["detail"]
    thingspace.sim.change_delay_s = 30.0  # the restore stays pending however slow this machine is
    assert (await capi.post(line("pump", "actions/restore"))).status_code == 202
    r = await capi.post(line("pump", "actions/deactivate"))  # ThingSpace refuses changes while one is pending
    assert r.status_code == 409 and "thingspace refused the request" in r.json()["detail"]


@pytest.fixture
async def pulse_url(capi) -> AsyncIterator[str]:
    """The Pulse API served on 127.0.0.1 (in this event loop), so the simulator can call back."""
    app = create_app()
    app.state.services = capi.services
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off",
                                           log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    url = f"http://127.0.0.1:{server.config.port}"
    capi.services.settings.public_base_url = url
    yield url
    server.should_exit = True
    await task


async def test_thingspace_callback_settles_the_request(capi, thingspace, pulse_url):
    sim: ThingSpaceSim = thingspace.sim
    iid = await ts_integration(capi, thingspace)
    registered = (await capi.get(f"{INTEGRATIONS}/{iid}")).json()
    assert registered["callback_url"] == f"{pulse_url}/api/v1/carrier/callbacks/{iid}"
    assert registered["callback_error"] is None
    assert {sim.callbacks[s].url for s in ("CarrierService", "EnhancedConnectivityService")} == {registered["callback_url"]}
    await link(capi, "pump", iid, TS_LINES[0])

    def delivered(request_id: str) -> bool:
        return any(d["body"].get("requestId") == request_id and d["status"] == 200 for d in sim.deliveries)

    r = await capi.post(line("pump", "actions/reboot"))  # the SMS result comes on EnhancedConnectivityService
    await eventually(lambda: delivered(r.json()["request_id"]))
    assert (await capi.get(line("pump", "status"))).json()["recent_requests"][0]["state"] == "succeeded"

    r = await capi.post(line("pump", "actions/suspend"))
    assert r.status_code == 202
    request_id = r.json()["request_id"]
    await eventually(lambda: delivered(request_id))
    status = (await capi.get(line("pump", "status"))).json()
    assert status["sim_status"] == "suspended" and status["recent_requests"][0]["state"] == "succeeded"

    sent = next(d for d in sim.deliveries if d["body"].get("requestId") == request_id)
    replay = await capi.client.post(f"/api/v1/carrier/callbacks/{iid}", json=sent["body"])
    assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"  # ThingSpace retries: idempotent
    forged = await capi.client.post(f"/api/v1/carrier/callbacks/{iid}", json=sent["body"] | {"password": "guess"})
    assert forged.status_code == 401
    unknown = await capi.client.post(f"/api/v1/carrier/callbacks/{iid}",
                                     json={k: sent["body"][k] for k in ("username", "password")} | {"hello": 1})
    assert unknown.status_code == 200 and unknown.json()["outcome"] == "recorded"
    async with capi.services.db.connect() as conn:
        rows = (await conn.execute(sa.select(carrier_callbacks).order_by(carrier_callbacks.c.id))).all()
    assert [r.outcome for r in rows] == ["settled", "settled", "duplicate", "rejected", "recorded"]
    assert all(r.body["password"] == "***" for r in rows)  # echoed credentials are never stored


# ---- 1NCE ----------------------------------------------------------------------------------------
async def test_1nce_sync_of_many_sims_stays_under_the_rate_limit(capi, sync):
    sims = [SimCard(f"89882806660000{n:05d}") for n in range(1, 7)]
    with SimServer(OneNceSim(sims=sims, rate_limit_per_s=10.0)) as server:
        iid = await onence_integration(capi, server)
        for n, sim in enumerate(sims):
            assert (await capi.post("/api/v1/customer/devices", json={"device_id": f"m{n}"})).status_code == 201
            await store.link_device(capi.services.db, "acme", f"m{n}", iid, sim.iccid, {})
        result = await sync.sync_integration(iid)
        assert result["status"] == "success" and result["synced"] == 6, result
        assert server.sim.throttled == []  # paced below 10 req/s: never answered 429
        assert server.sim.count("GET", "/management-api/v1/sims") == 6 * 4
    links = await store.links_of(capi.services.db, iid)
    assert {lk["sim_status"] for lk in links} == {"active"} and all(lk["data_limit_bytes"] for lk in links)


async def test_one_carrier_down_fails_only_its_integration(capi, thingspace, onence, sync):
    ts_id = await ts_integration(capi, thingspace)
    await link(capi, "t1", ts_id, TS_LINES[0])
    one_id = await onence_integration(capi, onence, tenant="globex")
    await link(capi, "o1", one_id, "8988280666000000001", tenant="globex")
    thingspace.stop()
    assert await sync.sync_due() == 2
    ts = (await capi.get(f"{INTEGRATIONS}/{ts_id}")).json()
    one = (await capi.get(f"{INTEGRATIONS}/{one_id}", tenant="globex")).json()
    assert ts["last_sync_status"] == "error" and "unavailable" in ts["last_sync_error"]
    assert one["last_sync_status"] == "success" and one["last_sync_error"] is None
    assert await sync.sync_due() == 0  # neither is due again before its interval
    thingspace.start()
    assert (await sync.sync_integration(ts_id))["status"] == "success"


async def test_a_line_crossing_the_data_threshold_opens_an_alert(capi, onence, sync):
    iid = await onence_integration(capi, onence)
    await link(capi, "pump", iid, "8988280666000000001")
    capi.services.settings.carrier_data_usage_alert_pct = 0.001  # the demo SIM has used a few MB of 500
    await sync.sync_integration(iid)
    usage = (await capi.get(line("pump", "usage"))).json()
    assert usage["over_usage_threshold"] and usage["usage_alert_active"]
    alerts = (await capi.get("/api/v1/customer/alerts")).json()["alerts"]
    assert [(a["alert_type"], a["device_id"]) for a in alerts] == [("CARRIER_DATA_USAGE", "pump")]
    await sync.sync_integration(iid)  # still over: no second alert
    assert len((await capi.get("/api/v1/customer/alerts")).json()["alerts"]) == 1


async def test_a_usage_alert_lost_on_its_way_to_the_tenant_actor_opens_on_the_next_sync(capi, onence, sync,
                                                                                        monkeypatch):
    """The line remembers an open usage alert only once the tenant actor has it."""
    iid = await onence_integration(capi, onence)
    await link(capi, "pump", iid, "8988280666000000001")
    capi.services.settings.carrier_data_usage_alert_pct = 0.001
    runtime = capi.services.runtime
    deliver = runtime.tenant_events

    async def tenant_shard_down(events):
        raise ConnectionError("tenant shard restarting")

    monkeypatch.setattr(runtime, "tenant_events", tenant_shard_down)
    await sync.sync_integration(iid)
    assert not (await capi.get(line("pump", "usage"))).json()["usage_alert_active"]
    monkeypatch.setattr(runtime, "tenant_events", deliver)
    await sync.sync_integration(iid)
    alerts = (await capi.get("/api/v1/customer/alerts")).json()["alerts"]
    assert [(a["alert_type"], a["device_id"]) for a in alerts] == [("CARRIER_DATA_USAGE", "pump")]
    assert (await capi.get(line("pump", "usage"))).json()["usage_alert_active"]


async def test_api_calls_reuse_one_thingspace_session_until_the_integration_changes(capi, thingspace):
    iid = await ts_integration(capi, thingspace)
    await link(capi, "pump", iid, TS_LINES[0])
    for _ in range(3):
        assert (await capi.get(line("pump", "status"), params={"refresh": "true"})).status_code == 200
        assert (await capi.get(line("pump", "diagnostics"))).status_code == 200
    assert thingspace.sim.login_attempts == 1  # link + 6 reads: one session login
    r = await capi.request("PUT", f"{INTEGRATIONS}/{iid}", json={"display_name": "renamed"})  # a new version
    assert r.status_code == 200, r.text
    assert (await capi.get(line("pump", "diagnostics"))).status_code == 200
    assert thingspace.sim.login_attempts == 2
