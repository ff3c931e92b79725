"""The ThingSpace simulator on its own, over raw HTTP: the two tokens, session expiry, the login lockout,
paging, line states, callbacks and errors in ThingSpace's shape (reference external-apis.md §A)."""
from __future__ import annotations

import asyncio
import base64
from datetime import date, timedelta
from importlib import import_module

import httpx
import pytest

from pulse.simulators import API_SIMULATORS
from pulse.simulators.server import SimServer
from pulse.simulators.thingspace import DEMO_ACCOUNT, ThingSpaceSim
from tests.integrations.helpers import http_targets  # noqa: F401

M2M = "/api/m2m/v1"
ICCIDS = [f"8914800000000001{n:04d}" for n in range(1, 6)]


@pytest.fixture
def start_sim():
    servers: list[SimServer] = []

    def start(**kwargs) -> tuple[ThingSpaceSim, SimServer]:
        kwargs = {"demo_devices": False, "change_delay_s": 0.2, "callback_retry_s": 0.05, **kwargs}
        server = SimServer(ThingSpaceSim(**kwargs)).start()
        servers.append(server)
        return server.sim, server

    yield start
    for s in servers:
        s.stop()


async def until(condition, timeout: float = 5.0) -> None:
    """Wait for the simulator's background work (a change settling, a callback attempt being recorded)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


async def bearer(client: httpx.AsyncClient, sim: ThingSpaceSim) -> str:
    r = await client.post("/api/ts/v1/oauth2/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": basic(sim.client_id, sim.client_secret)})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


async def login(client: httpx.AsyncClient, sim: ThingSpaceSim, password: str | None = None) -> httpx.Response:
    token = await bearer(client, sim)
    return await client.post(f"{M2M}/session/login", headers={"Authorization": f"Bearer {token}"},
                             json={"username": sim.username, "password": password or sim.password})


async def headers(client: httpx.AsyncClient, sim: ThingSpaceSim) -> dict[str, str]:
    r = await login(client, sim)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {await bearer(client, sim)}", "VZ-M2M-Token": r.json()["sessionToken"]}


def lines(sim: ThingSpaceSim, n: int = 5, **kw) -> list[str]:
    for iccid in ICCIDS[:n]:
        sim.add_device(iccid, "35" + iccid[-13:], plan="M2M1GB", **kw)
    return ICCIDS[:n]


def one(iccid: str) -> list[dict]:
    return [{"deviceIds": [{"id": iccid, "kind": "ICCID"}]}]


def test_the_default_simulator_is_registered_quiet_and_has_a_demo_account(capsys) -> None:
    module, cls = API_SIMULATORS["thingspace"].split(":")
    sim = getattr(import_module(module), cls)()
    assert type(sim) is ThingSpaceSim and sim.account_name == DEMO_ACCOUNT
    states = sorted(d.state for d in sim.devices.values())
    assert states == ["active", "active", "active", "pre-active", "suspend"]
    assert capsys.readouterr() == ("", "")


class Clock:
    """The simulator's clock, moved by hand: lifetimes without sleeping (sleeps a few tenths of a
    second apart overran a 0.6 s lifetime on a loaded CI host)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_oauth_token_needs_the_client_credentials_and_is_reused_while_it_lives(start_sim) -> None:
    clock = Clock()
    sim, server = start_sim(token_ttl_s=600, clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        bad = await client.post("/api/ts/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": basic(sim.client_id, "wrong")})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        grant = await client.post("/api/ts/v1/oauth2/token", data={"grant_type": "password"},
                                  headers={"Authorization": basic(sim.client_id, sim.client_secret)})
        assert grant.status_code == 400
        first, again = await bearer(client, sim), await bearer(client, sim)
        clock.now += 599
        assert first == again == await bearer(client, sim)
        clock.now += 2
        assert await bearer(client, sim) != first


async def test_every_m2m_call_needs_a_live_bearer_in_the_gateway_fault_shape(start_sim) -> None:
    sim, server = start_sim()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        r = await client.post(f"{M2M}/session/login", json={"username": sim.username, "password": sim.password})
        assert r.status_code == 401 and r.json()["fault"]["code"] == "900901"
        assert sim.login_attempts == 0  # refused at the gateway, the password was never tried
        h = await headers(client, sim)
        sim.expire_tokens()
        r = await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)
        assert r.status_code == 401 and sim.gateway_rejections == 2


async def test_session_token_missing_expired_on_demand_or_after_idle_time(start_sim) -> None:
    clock = Clock()
    sim, server = start_sim(session_ttl_s=600, clock=clock)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        missing = await client.post(f"{M2M}/devices/actions/list", json={},
                                    headers={"Authorization": h["Authorization"]})
        assert missing.status_code == 400 and missing.json()["errorCode"].endswith("SessionToken.Invalid")
        for _ in range(3):  # each use keeps it alive: 900 s in all, but never 600 without a use
            clock.now += 300
            assert (await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)).status_code == 200
        clock.now += 601
        idle = await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)
        assert idle.status_code == 400
        assert idle.json() == {"errorCode": "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired",
                               "errorMessage": idle.json()["errorMessage"]}
        h = await headers(client, sim)
        sim.expire_sessions()
        r = await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)
        assert r.json()["errorCode"].endswith("SessionToken.Expired")


async def test_five_failed_logins_in_a_row_lock_the_account(start_sim) -> None:
    sim, server = start_sim()
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        for _ in range(4):
            assert (await login(client, sim, "wrong")).json()["errorCode"].endswith("Login.Failed")
        assert (await login(client, sim)).status_code == 200  # a success resets the count
        for _ in range(5):
            assert (await login(client, sim, "wrong")).status_code == 400
        locked = await login(client, sim)
        assert locked.status_code == 400 and locked.json()["errorCode"].endswith("Account.Locked")
        assert sim.locked and sim.login_attempts == 11
        sim.unlock()
        assert (await login(client, sim)).status_code == 200


async def test_device_list_pages_by_earliest_and_lists_no_internal_ids(start_sim) -> None:
    sim, server = start_sim(page_size=2)
    expected = lines(sim, 5)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        seen, statuses, body = [], [], {"accountName": sim.account_name}
        while True:
            r = await client.post(f"{M2M}/devices/actions/list", json=body, headers=h)
            statuses.append(r.status_code)
            page = r.json()
            assert all(d["extendedAttributes"] == [] for d in page["devices"])  # single-device requests only
            seen += [next(i["id"] for i in d["deviceIds"] if i["kind"] == "iccid") for d in page["devices"]]
            if not page["hasMoreData"]:
                break
            body = {"accountName": sim.account_name, "earliest": page["devices"][-1]["createdAt"]}
        assert seen == expected and statuses == [202, 202, 200]
        for cursor in (0, 999):  # no device of the account has that internal id
            refused = await client.post(f"{M2M}/devices/actions/list", headers=h,
                                        json={"accountName": sim.account_name, "largestDeviceIdSeen": cursor})
            assert refused.status_code == 400 and "largestDeviceIdSeen" in refused.json()["errorCode"]
        single = await client.post(f"{M2M}/devices/actions/list",
                                   json={"deviceId": {"id": expected[2], "kind": "Iccid"}}, headers=h)
        assert [d["carrierInformations"][0]["state"] for d in single.json()["devices"]] == ["active"]
        assert single.json()["devices"][0]["extendedAttributes"][0]["key"] == "DeviceId"
        unknown = await client.post(f"{M2M}/devices/actions/list", headers=h,
                                    json={"deviceId": {"id": "1", "kind": "iccid"}})
        assert unknown.status_code == 400
        assert unknown.json()["errorCode"] == "UnifiedWebService.REQUEST_FAILED.DeviceNotFound"


async def test_state_changes_run_pending_refuse_other_changes_and_settle(start_sim) -> None:
    sim, server = start_sim()
    iccid = lines(sim, 1)[0]
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        body = {"accountName": sim.account_name, "devices": one(iccid)}
        r = await client.post(f"{M2M}/devices/actions/suspend", json=body, headers=h)
        request_id = r.json()["requestId"]
        assert sim.device(iccid).shown_state == "pending suspend"
        busy = await client.post(f"{M2M}/devices/actions/deactivate", json={**body, "reasonCode": "FF"}, headers=h)
        assert busy.status_code == 400 and busy.json()["errorCode"].endswith("DeviceState.Invalid")
        status = f"{M2M}/accounts/{sim.account_name}/requests/{request_id}/status"
        assert (await client.get(status, headers=h)).json() == {"requestId": request_id, "status": "Pending"}
        await until(lambda: sim.device(iccid).busy is None)
        assert (await client.get(status, headers=h)).json()["status"] == "Success"
        assert sim.device(iccid).state == "suspend"
        again = await client.post(f"{M2M}/devices/actions/suspend", json=body, headers=h)
        assert again.json()["errorCode"].endswith("DeviceState.Invalid")
        no_reason = await client.post(f"{M2M}/devices/actions/deactivate", json=body, headers=h)
        assert no_reason.json()["errorCode"].endswith("ReasonCode.Invalid")
        await client.post(f"{M2M}/devices/actions/deactivate", json={**body, "reasonCode": "FF"}, headers=h)
        await until(lambda: sim.device(iccid).busy is None)
        d = sim.device(iccid)
        assert (d.state, d.plan, d.mdn, d.ip) == ("deactive", None, None, None)


async def test_failed_change_leaves_the_line_as_it_was(start_sim) -> None:
    sim, server = start_sim()
    iccid = lines(sim, 1)[0]
    sim.fail_next_changes(1, faultstring="network said no")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        r = await client.post(f"{M2M}/devices/actions/suspend", json={"devices": one(iccid)}, headers=h)
        await until(lambda: sim.requests_by_id[r.json()["requestId"]].status != "Pending")
        status = await client.get(f"{M2M}/accounts/{sim.account_name}/requests/{r.json()['requestId']}/status",
                                  headers=h)
        assert status.json()["status"] == "Failure" and sim.device(iccid).state == "active"


async def test_usage_history_pages_by_moving_earliest(start_sim) -> None:
    sim, server = start_sim(history_page_size=2)
    iccid = lines(sim, 1)[0]
    start = date(2026, 3, 1)
    for k in range(5):
        sim.add_usage(iccid, start + timedelta(days=k), 1000 * (k + 1), sms=1)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        earliest, got, statuses = "2026-03-01T00:00:00Z", [], []
        while True:
            r = await client.post(f"{M2M}/devices/usage/actions/list", headers=h, json={
                "deviceId": {"id": iccid, "kind": "iccid"}, "earliest": earliest, "latest": "2026-03-31T00:00:00Z"})
            statuses.append(r.status_code)
            page = r.json()
            got += [u["bytesUsed"] for u in page["usageHistory"]]
            if not page["hasMoreData"]:
                break
            earliest = page["usageHistory"][-1]["timestamp"].replace("T00:00:00Z", "T00:00:01Z")
        assert got == [1000, 2000, 3000, 4000, 5000] and statuses == [202, 202, 200]


async def test_callbacks_echo_the_registered_credentials_and_are_retried_until_2xx(start_sim, http_targets) -> None:
    sim, server = start_sim()
    iccid = lines(sim, 1)[0]
    target = await http_targets(500, default=200)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        reg = await client.post(f"{M2M}/callbacks/{sim.account_name}", headers=h,
                                json={"name": "CarrierService", "url": target.url, "username": "u", "password": "p"})
        assert reg.json() == {"accountName": sim.account_name, "serviceName": "CarrierService"}
        bad = await client.post(f"{M2M}/callbacks/{sim.account_name}", headers=h,
                                json={"name": "SMSDelivery", "url": "x"})
        assert bad.json()["errorCode"].endswith("ServiceName.Invalid")
        r = await client.post(f"{M2M}/devices/actions/suspend", json={"devices": one(iccid)}, headers=h)
        bodies = [x.json() for x in await target.wait_for(2)]
        await until(lambda: len(sim.deliveries) == 2)
        assert [b["callbackCount"] for b in bodies] == [1, 2] and [d["status"] for d in sim.deliveries] == [500, 200]
        assert bodies[1]["username"] == "u" and bodies[1]["password"] == "p"
        assert bodies[1]["requestId"] == r.json()["requestId"] and bodies[1]["status"] == "Success"
        assert bodies[1]["deviceResponse"]["suspendResponse"]["state"] == "suspend"
        listed = await client.get(f"{M2M}/callbacks/{sim.account_name}", headers=h)
        assert [(c["serviceName"], c["url"]) for c in listed.json()] == [("CarrierService", target.url)]
        gone = await client.delete(f"{M2M}/callbacks/{sim.account_name}/name/CarrierService", headers=h)
        assert gone.status_code == 200 and sim.callbacks == {}


async def test_injected_faults_answer_in_thingspace_shape(start_sim) -> None:
    sim, server = start_sim()
    sim.faults.add(429, retry_after_s=2, path=f"{M2M}/devices")
    sim.faults.add(503, path=f"{M2M}/devices")
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        throttled = await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "2"
        assert throttled.json()["errorCode"].startswith("UnifiedWebService.REQUEST_FAILED.")
        down = await client.post(f"{M2M}/devices/actions/list", json={}, headers=h)
        assert down.status_code == 503 and set(down.json()) == {"errorCode", "errorMessage"}
        invalid = await client.post(f"{M2M}/devices/actions/list", json={"maxNumberOfDevices": "many"}, headers=h)
        assert invalid.status_code == 400 and invalid.json()["errorCode"].endswith("INPUT_INVALID.Request.Invalid")


async def test_groups_sms_plans_and_diagnostics(start_sim) -> None:
    sim, server = start_sim()
    a, b = lines(sim, 2)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        h = await headers(client, sim)
        made = await client.post(f"{M2M}/groups", headers=h, json={
            "accountName": sim.account_name, "groupName": "West", "devicesToAdd": [{"id": a, "kind": "iccid"}]})
        assert made.json() == {"success": True}
        dup = await client.post(f"{M2M}/groups", headers=h, json={"accountName": sim.account_name, "groupName": "West"})
        assert dup.json()["errorCode"].endswith("DeviceGroup.Exists")
        west = (await client.get(f"{M2M}/groups/{sim.account_name}/name/West", headers=h)).json()
        assert [d["deviceIds"][0]["id"] for d in west["devices"]] == [a]
        default = await client.delete(f"{M2M}/groups/{sim.account_name}/name/{sim.default_group}", headers=h)
        assert default.json()["errorCode"].endswith("DeviceGroup.DeleteDefault")
        too_long = await client.post(f"{M2M}/sms", headers=h, json={
            "accountName": sim.account_name, "smsMessage": "x" * 161, "deviceIds": [{"id": b, "kind": "iccid"}]})
        assert too_long.json()["errorCode"].endswith("SmsMessage.TooLong")
        sent = await client.post(f"{M2M}/sms", headers=h, json={
            "accountName": sim.account_name, "smsMessage": "REBOOT", "groupName": "West"})
        assert sim.sms_sent == [{"requestId": sent.json()["requestId"], "iccid": a, "message": "REBOOT",
                                 "dataEncoding": "7-bit"}]
        plans = (await client.get(f"{M2M}/plans/{sim.account_name}", headers=h)).json()
        assert {p["code"]: p["sizeKb"] for p in plans}["M2M1GB"] == 1024 * 1024
        wrong_plan = await client.put(f"{M2M}/devices/actions/plan", headers=h,
                                      json={"devices": one(a), "servicePlan": "NOPE"})
        assert wrong_plan.json()["errorCode"].endswith("NotFound")
        diag = await client.post(f"{M2M}/devices/extendeddiagnostics/actions/list", headers=h,
                                 json={"accountName": sim.account_name, "deviceList": [{"id": a, "kind": "iccid"}]})
        assert [c["categoryName"] for c in diag.json()["categories"]] == ["Connectivity", "Provisioning", "Billing"]
