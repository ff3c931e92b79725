"""ThingSpaceProvider against the running ThingSpace simulator: token and session handling (never a login
retry that could lock the account), retries, paging, usage in bytes, line changes, SMS, groups and
callbacks delivered to a real listener."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from pulse.integrations.carriers import provider_for
from pulse.integrations.carriers.base import CarrierAuthError, CarrierError, Credentials
from pulse.integrations.carriers.thingspace import ThingSpaceProvider, request_state, sim_status
from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.simulators.server import SimServer
from pulse.simulators.thingspace import ThingSpaceSim
from tests.integrations.helpers import http_targets  # noqa: F401

M2M = "/api/m2m/v1"
LOGIN = f"{M2M}/session/login"
LIST = f"{M2M}/devices/actions/list"
ICCIDS = [f"8914800000000002{n:04d}" for n in range(1, 6)]
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=3.0, jitter=0.0)
MiB = 1024 * 1024


@pytest.fixture
def start_sim():
    """`start_sim(**ThingSpaceSim kwargs)` -> (sim, server) with no demo lines and 0.2 s changes."""
    servers: list[SimServer] = []

    def start(lines: int = 0, **kwargs) -> tuple[ThingSpaceSim, SimServer]:
        kwargs = {"demo_devices": False, "change_delay_s": 0.2, "callback_retry_s": 0.05, **kwargs}
        sim = ThingSpaceSim(**kwargs)
        for iccid in ICCIDS[:lines]:
            sim.add_device(iccid, "35" + iccid[-13:], "active", "M2M1GB")
        server = SimServer(sim).start()
        servers.append(server)
        return sim, server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
async def providers():
    """`providers(server, password=..., **config)` -> a ThingSpaceProvider with fast retries, closed afterwards."""
    made: list[ThingSpaceProvider] = []

    def make(server: SimServer, password: str | None = None, secret: str | None = None, timeout_s: float = 5.0,
             **config) -> ThingSpaceProvider:
        sim = server.sim
        credentials = Credentials(api_base_url=server.base_url, api_key=sim.client_id,
                                  api_secret=secret or sim.client_secret, account_id=sim.account_name,
                                  config={"username": sim.username, "password": password or sim.password,
                                          "mdn_zip_code": "98101", **config})
        provider = ThingSpaceProvider(credentials, retry=FAST, timeout_s=timeout_s)
        made.append(provider)
        return provider

    yield make
    for p in made:
        await p.aclose()


async def settled_by_callback(sim: ThingSpaceSim, provider: ThingSpaceProvider, request_id: str) -> None:
    """A request whose status Verizon does not answer (SMS, plan change): it settles, polling is refused."""
    deadline = time.monotonic() + 5.0
    while sim.requests_by_id[request_id].status == "Pending" and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert sim.requests_by_id[request_id].status == "Success"
    assert not provider.polls("reboot")
    with pytest.raises(CarrierError) as refused:
        await provider.request_status(request_id)
    assert refused.value.status == 400 and "callback only" in str(refused.value)


async def settled(provider: ThingSpaceProvider, request_id: str, timeout: float = 5.0):
    """Poll the request's status, as Pulse does when no callback arrives, until it is no longer pending."""
    deadline = time.monotonic() + timeout
    while (result := await provider.request_status(request_id)).state == "pending":
        assert time.monotonic() < deadline, "request still pending"
        await asyncio.sleep(0.05)
    return result


# ---- tokens and sessions -------------------------------------------------------------------------
async def test_session_expiring_mid_listing_costs_exactly_one_new_login(start_sim, providers) -> None:
    sim, server = start_sim(lines=5, page_size=2)
    provider = providers(server)
    seen = []
    async for device in provider.list_devices():
        seen.append(device.carrier_device_id)
        if len(seen) == 1:
            sim.expire_sessions()  # before the second page is asked for
    assert seen == ICCIDS
    assert sim.count("POST", LOGIN) == 2 and sim.login_attempts == 2
    assert sim.count("POST", LIST) == 4  # three pages, the second one asked twice


async def test_an_idle_session_is_renewed_once_but_a_second_expiry_is_an_error_not_a_loop(start_sim, providers) -> None:
    sim, server = start_sim(lines=1, session_ttl_s=0.0)  # every session is stale by its first use
    provider = providers(server)
    with pytest.raises(CarrierError) as e:
        await asyncio.wait_for(provider.get_device_info(ICCIDS[0]), 10)  # a login loop would time out here
    assert e.value.code.endswith("SessionToken.Expired")
    assert sim.login_attempts == 2 and sim.count("POST", LIST) == 2


async def test_wrong_password_fails_after_one_login_and_is_never_tried_again(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server, password="wrong")
    for _ in range(3):
        with pytest.raises(CarrierAuthError) as e:
            await provider.get_device_info(ICCIDS[0])
        assert e.value.code.endswith("Login.Failed")
    assert sim.login_attempts == 1 and sim.failed_logins == 1 and not sim.locked
    # a new provider per sync run adds one attempt per run, never more
    for _ in range(3):
        with pytest.raises(CarrierAuthError):
            await providers(server, password="wrong").get_device_info(ICCIDS[0])
    assert sim.login_attempts == 4 and not sim.locked


async def test_a_failing_login_endpoint_is_not_retried(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    sim.faults.add(503, times=10, path=LOGIN)
    provider = providers(server)
    with pytest.raises(Unavailable):
        await provider.get_device_info(ICCIDS[0])
    assert sim.count("POST", LOGIN) == 1
    sim.faults.clear()
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "active"  # not latched: it was not a refusal
    assert sim.count("POST", LOGIN) == 2


async def test_the_simulator_locks_the_account_after_five_bad_logins(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    for _ in range(5):
        with pytest.raises(CarrierAuthError):
            await providers(server, password="wrong").get_device_info(ICCIDS[0])
    assert sim.locked
    with pytest.raises(CarrierAuthError) as e:
        await providers(server).get_device_info(ICCIDS[0])
    assert e.value.code.endswith("Account.Locked") and sim.login_attempts == 6


async def test_refused_client_credentials_raise_at_once(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    with pytest.raises(CarrierAuthError) as e:
        await providers(server, secret="wrong").get_device_info(ICCIDS[0])
    assert e.value.status == 401 and e.value.code == "invalid_client"
    assert sim.token_requests == 1 and sim.login_attempts == 0


async def test_oauth_token_refused_by_the_gateway_is_fetched_again_once(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server)
    await provider.get_device_info(ICCIDS[0])
    sim.expire_tokens()
    assert (await provider.get_device_info(ICCIDS[0])).iccid == ICCIDS[0]
    assert sim.token_requests == 2 and sim.gateway_rejections == 1 and sim.login_attempts == 1


async def test_oauth_token_is_refreshed_before_it_expires(start_sim, providers) -> None:
    sim, server = start_sim(lines=1, token_ttl_s=1.0)
    provider = providers(server)
    await provider.get_device_info(ICCIDS[0])
    await asyncio.sleep(1.1)
    await provider.get_device_info(ICCIDS[0])
    assert sim.token_requests == 2 and sim.gateway_rejections == 0 and sim.login_attempts == 1


# ---- retries and paging ------------------------------------------------------------------------------
async def test_429_with_retry_after_and_503_are_retried(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server)
    await provider.get_device_info(ICCIDS[0])
    sim.faults.add(429, path=LIST, retry_after_s=1)
    started = time.monotonic()
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "active"
    assert time.monotonic() - started >= 0.9  # waited as Retry-After said, not the 10 ms backoff
    sim.faults.add(503, times=2, path=LIST)
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "active"
    assert sim.count("POST", LIST) == 1 + 2 + 3 and sim.login_attempts == 1
    sim.faults.add(503, times=10, path=LIST)
    with pytest.raises(Unavailable):
        await provider.get_device_info(ICCIDS[0])
    assert sim.count("POST", LIST) == 6 + FAST.attempts


async def test_a_request_that_times_out_is_retried(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server, timeout_s=0.3)
    await provider.get_device_info(ICCIDS[0])
    sim.faults.add(503, path=LIST, delay_s=1.0)
    assert (await provider.get_device_info(ICCIDS[0])).iccid == ICCIDS[0]
    assert sim.count("POST", LIST) == 3


async def test_listing_follows_pages_and_normalizes_lines(start_sim, providers) -> None:
    sim, server = start_sim(lines=3, page_size=2)
    sim.add_device(ICCIDS[3], state="suspend", plan="M2M5GB")
    sim.add_device(ICCIDS[4], state="pre-active")
    sim.device(ICCIDS[0]).connected = True
    devices = [d async for d in providers(server).list_devices()]
    assert [(d.carrier_device_id, d.sim_status, d.plan) for d in devices] == [
        (ICCIDS[0], "active", "M2M1GB"), (ICCIDS[1], "active", "M2M1GB"), (ICCIDS[2], "active", "M2M1GB"),
        (ICCIDS[3], "suspended", "M2M5GB"), (ICCIDS[4], "preactive", None)]
    first = devices[0]
    assert first.network_status == "ONLINE" and first.ip_address and first.imei == "35" + ICCIDS[0][-13:]
    assert first.msisdn and devices[4].ip_address is None and devices[4].msisdn is None
    assert sim.count("POST", LIST) == 3


def test_thingspace_states_map_case_insensitively() -> None:
    assert [sim_status(s) for s in ("ACTIVE", "Suspend", "deactive", "Pre-Active", "pending activation",
                                    "PENDING RESTORE", "something new", None)] == [
        "active", "suspended", "deactivated", "preactive", "pending", "pending", "unknown", "unknown"]


# ---- usage, diagnostics, plans ----------------------------------------------------------------------
async def test_usage_sums_the_current_billing_cycle_in_bytes_against_the_plan_size(start_sim, providers) -> None:
    today = datetime.now(timezone.utc).date()
    # a cycle that began at least a week ago whatever today is, so 7 days of usage fall inside it
    sim, server = start_sim(lines=1, billing_day=1 if today.day >= 8 else 20, history_page_size=3)
    end = sim.billing_cycle_end()
    start = end.replace(month=end.month - 1) if end.month > 1 else end.replace(year=end.year - 1, month=12)
    for k in range(7):
        sim.add_usage(ICCIDS[0], today - timedelta(days=k), 64 * MiB, sms=1)
    sim.add_usage(ICCIDS[0], start.date() - timedelta(days=1), 999 * MiB, sms=50)  # the previous cycle
    usage = await providers(server).get_usage(ICCIDS[0])
    assert usage.data_used_bytes == 7 * 64 * MiB and usage.sms_count == 7
    assert usage.data_limit_bytes == 1024 * MiB and usage.data_used_pct == 43.75  # M2M1GB: sizeKb 1048576
    assert (usage.billing_cycle_start, usage.billing_cycle_end) == (start, end)
    assert sim.count("POST", f"{M2M}/devices/usage/actions/list") == 3  # 7 records, 3 per page


async def test_pooled_plans_have_no_per_line_limit_and_bulk_usage_reads_each_line(start_sim, providers) -> None:
    sim, server = start_sim(lines=2)
    sim.device(ICCIDS[1]).plan = "M2MSHARED"
    sim.add_usage(ICCIDS[1], datetime.now(timezone.utc).date(), 5 * MiB)
    usage = await providers(server).get_bulk_usage(ICCIDS[:2])
    assert {k: (u.data_used_bytes, u.data_limit_bytes) for k, u in usage.items()} == {
        ICCIDS[0]: (0, 1024 * MiB), ICCIDS[1]: (5 * MiB, None)}
    assert sim.count("GET", f"{M2M}/plans/") == 1  # plans are cached


async def test_diagnostics_combine_extended_diagnostics_and_recent_connections(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    sim.device(ICCIDS[0]).connected = True
    began = datetime.now(timezone.utc) - timedelta(hours=2)
    sim.add_connection_event(ICCIDS[0], began, "Start")
    sim.add_connection_event(ICCIDS[0], began + timedelta(hours=1), "Stop", 4096)
    sim.add_connection_event(ICCIDS[0], began - timedelta(days=3), "Start")  # older than a day
    diagnostics = await providers(server).get_diagnostics(ICCIDS[0])
    assert diagnostics.data["Connectivity"]["Connected"] == "true"
    assert diagnostics.data["Provisioning"]["State"] == "active"
    events = diagnostics.data["connection_events"]
    assert [(e["Event"], e["BytesUsed"]) for e in events] == [("Start", "0"), ("Stop", "4096")]
    with pytest.raises(CarrierError) as e:
        await providers(server).get_diagnostics(ICCIDS[4])
    assert e.value.status == 404


async def test_plans_are_listed_and_a_plan_change_settles(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server)
    plans = await provider.list_plans()
    assert [(p.plan_id, p.data_limit_bytes) for p in plans] == [
        ("M2M1GB", 1024 * MiB), ("M2M5GB", 5 * 1024 * MiB), ("M2MSHARED", None)]
    change = await provider.change_plan(ICCIDS[0], "M2M5GB")
    assert change.state == "pending" and change.request_id
    await settled_by_callback(sim, provider, change.request_id)
    assert (await provider.get_device_info(ICCIDS[0])).plan == "M2M5GB"
    with pytest.raises(CarrierError) as e:
        await provider.change_plan(ICCIDS[0], "NO-SUCH-PLAN")
    assert e.value.code.endswith("NotFound") and e.value.status == 400


# ---- changes --------------------------------------------------------------------------------------
async def test_suspend_is_pending_then_settles_and_wrong_transitions_are_refused(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    provider = providers(server)
    result = await provider.action(ICCIDS[0], "suspend")
    assert result.state == "pending" and result.request_id
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "pending"
    with pytest.raises(CarrierError) as busy:
        await provider.action(ICCIDS[0], "deactivate")
    assert busy.value.status == 409 and busy.value.code.endswith("DeviceState.Invalid")
    assert (await settled(provider, result.request_id)).state == "succeeded"
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "suspended"
    with pytest.raises(CarrierError) as wrong:
        await provider.action(ICCIDS[0], "suspend")
    assert wrong.value.code.endswith("DeviceState.Invalid")
    with pytest.raises(CarrierError) as missing:
        await provider.action(ICCIDS[4], "suspend")
    assert missing.value.status == 404 and missing.value.code == "UnifiedWebService.REQUEST_FAILED.DeviceNotFound"
    restore = await provider.action(ICCIDS[0], "restore")
    assert (await settled(provider, restore.request_id)).state == "succeeded"
    deactivate = await provider.action(ICCIDS[0], "deactivate")
    await settled(provider, deactivate.request_id)
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "deactivated"


async def test_a_change_the_network_refuses_reports_failed(start_sim, providers) -> None:
    sim, server = start_sim(lines=1)
    sim.fail_next_changes(1)
    provider = providers(server)
    result = await provider.action(ICCIDS[0], "suspend")
    assert (await settled(provider, result.request_id)).state == "failed"
    assert (await provider.get_device_info(ICCIDS[0])).sim_status == "active"


def test_any_status_starting_with_fail_is_a_failure() -> None:
    assert [request_state(s) for s in ("Failure", "FAILED", "failed", "Success", "Pending", "", None)] == [
        "failed", "failed", "failed", "succeeded", None, None, None]


async def test_listing_pages_by_created_at_without_internal_ids(start_sim, providers) -> None:
    sim, server = start_sim(lines=5, page_size=2)  # listed lines carry no DeviceId, as Verizon documents
    assert [d.carrier_device_id async for d in providers(server).list_devices()] == ICCIDS
    bodies = sim.list_queries
    assert "largestDeviceIdSeen" not in bodies[0] and "earliest" not in bodies[0]
    assert all("largestDeviceIdSeen" not in b and b["earliest"] for b in bodies[1:]) and len(bodies) == 3


async def test_activation_sends_the_mdn_zip_code_and_needs_one(start_sim, providers) -> None:
    sim, server = start_sim()
    sim.add_device(ICCIDS[0], state="pre-active")
    for zip_code in ("", "9810", "98 10"):
        with pytest.raises(CarrierError) as missing:
            await providers(server, mdn_zip_code=zip_code).action(ICCIDS[0], "activate")
        assert missing.value.status == 422 and "mdn_zip_code" in str(missing.value)
    assert sim.count("POST", "/api/m2m/v1/devices/actions/activate") == 0  # refused before asking Verizon
    ThingSpaceProvider.check_config({"mdn_zip_code": "98101"})
    with pytest.raises(CarrierError) as bad:
        ThingSpaceProvider.check_config({"mdn_zip_code": "981"})  # refused when the integration is created
    assert bad.value.status == 422
    ready = providers(server, mdn_zip_code="98101", service_plan="M2M1GB")
    assert (await ready.action(ICCIDS[0], "activate")).state == "pending"


async def test_claim_activates_by_iccid(start_sim, providers) -> None:
    sim, server = start_sim()
    sim.add_device(ICCIDS[0], state="pre-active")
    provider = providers(server, service_plan="M2M1GB")
    claimed = await provider.claim_sim(ICCIDS[0], "M2M5GB")
    assert (claimed.carrier_device_id, claimed.sim_status) == (ICCIDS[0], "pending")
    [request_id] = list(sim.requests_by_id)
    await settled(provider, request_id)
    info = await provider.claim_sim(ICCIDS[0])  # already active: no error, just the line
    assert (info.sim_status, info.plan) == ("active", "M2M5GB") and info.msisdn
    with pytest.raises(CarrierError) as unknown:
        await provider.claim_sim(ICCIDS[1])  # not on the account, and neither IMEI nor SKU to add it by
    assert unknown.value.status == 404
    added = await providers(server, sku_number="VZW-SKU-1", service_plan="M2M1GB").claim_sim(ICCIDS[1])
    assert added.sim_status == "pending" and sim.device(ICCIDS[1]).plan is None
    assert (await provider.action(ICCIDS[0], "activate")).state == "succeeded"  # DeviceAlreadyActive: a no-op


async def test_sms_is_sent_to_the_line(start_sim, providers) -> None:
    sim, server = start_sim(lines=2)
    sim.device(ICCIDS[1]).state = "suspend"
    provider = providers(server)
    result = await provider.send_sms(ICCIDS[0], "REBOOT")
    assert result.state == "pending"
    assert [(s["iccid"], s["message"]) for s in sim.sms_sent] == [(ICCIDS[0], "REBOOT")]
    await settled_by_callback(sim, provider, result.request_id)
    with pytest.raises(CarrierError):
        await provider.send_sms(ICCIDS[1], "REBOOT")
    with pytest.raises(CarrierError) as too_long:
        await provider.send_sms(ICCIDS[0], "x" * 200)
    assert too_long.value.code.endswith("SmsMessage.TooLong")


async def test_device_groups(start_sim, providers) -> None:
    sim, server = start_sim(lines=2)
    provider = providers(server)
    assert [g["name"] for g in await provider.list_groups()] == [sim.default_group]
    made = await provider.create_group("West", "west coast", [ICCIDS[1]])
    assert made == {"name": "West", "description": "west coast"}
    assert [(g["name"], g["description"]) for g in await provider.list_groups()][1] == ("West", "west coast")
    assert sim.device(ICCIDS[1]).group == "West" and sim.device(ICCIDS[0]).group == sim.default_group
    with pytest.raises(CarrierError) as e:
        await provider.create_group("West")
    assert e.value.status == 409


def test_provider_is_found_by_name() -> None:
    provider = provider_for("thingspace", Credentials(api_base_url="http://127.0.0.1:9"))
    assert isinstance(provider, ThingSpaceProvider)


# ---- callbacks ----------------------------------------------------------------------------------------
async def test_callbacks_are_registered_delivered_and_verified(start_sim, providers, http_targets) -> None:
    sim, server = start_sim(lines=2)
    target = await http_targets()
    provider = providers(server)
    await provider.register_callback("CarrierService", target.url, "pulse-cb", "s3cret")
    assert [(c["serviceName"], c["url"]) for c in await provider.list_callbacks()] == [("CarrierService", target.url)]
    suspend = await provider.action(ICCIDS[0], "suspend")
    sim.fail_next_changes(1, faultstring="line barred")
    failing = await provider.action(ICCIDS[1], "suspend")
    received = await target.wait_for(2)
    events = {e.request_id: e for e in (provider.parse_callback(r.json(), "pulse-cb", "s3cret") for r in received)}
    ok, failed = events[suspend.request_id], events[failing.request_id]
    assert (ok.kind, ok.state, ok.carrier_device_ids, ok.detail) == ("request_result", "succeeded", [ICCIDS[0]],
                                                                     "suspendResponse")
    assert (failed.kind, failed.state, failed.carrier_device_ids, failed.detail) == (
        "request_result", "failed", [ICCIDS[1]], "line barred")
    assert "password" not in ok.raw

    body = received[0].json()
    for user, password in (("pulse-cb", "wrong"), ("other", "s3cret"), ("", "")):
        with pytest.raises(CarrierAuthError):
            provider.parse_callback(body, user, password)
    with pytest.raises(CarrierAuthError):
        provider.parse_callback({k: v for k, v in body.items() if k != "password"}, "pulse-cb", "s3cret")
    await provider.delete_callback("CarrierService")
    assert await provider.list_callbacks() == []


async def test_usage_callbacks_and_unknown_shapes(start_sim, providers, http_targets) -> None:
    sim, server = start_sim(lines=2)
    today = datetime.now(timezone.utc).date()
    sim.add_usage(ICCIDS[0], today, 3 * MiB)
    target = await http_targets()
    provider = providers(server)
    await provider.register_callback("DeviceUsage", target.url, "pulse-cb", "s3cret")
    now = datetime.now(timezone.utc)
    request = await provider.request_bulk_usage(ICCIDS[:2], now - timedelta(days=3), now)
    [received] = await target.wait_for(1)
    event = provider.parse_callback(received.json(), "pulse-cb", "s3cret")
    assert (event.kind, event.request_id, event.carrier_device_ids, event.state) == (
        "usage", request.request_id, ICCIDS[:2], "succeeded")
    assert event.raw["deviceResponse"]["usageResponse"][0]["dataUsage"] == 3 * MiB

    creds = {"username": "pulse-cb", "password": "s3cret"}
    for body in ({}, {"requestId": "r1", "status": "Pending", "deviceResponse": {"x": {}}},
                 {"deviceResponse": "not-a-dict", "deviceIds": 7}, {"requestId": 5, "faultResponse": None},
                 {"niddResponse": {"niddMONotificationResponse": {"message": "aGk="}}}):
        assert provider.parse_callback({**creds, **body}, "pulse-cb", "s3cret").kind == "unknown"
