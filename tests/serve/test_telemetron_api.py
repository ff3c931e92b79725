"""The Telemetron integration over HTTP (masked key, validation, permissions, tenancy, resync and
status through the telemetron-sync service) and the `telemetron` notification channel opening
tickets in the real simulator."""
from __future__ import annotations

import pytest

from pulse.integrations.channels import Message
from pulse.integrations.channels.telemetron import TelemetronChannel, TelemetronConfig, priority
from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import API_PREFIX, DEMO_API_KEY, TelemetronSim
from pulse.storage import notifications

INTEGRATION = "/api/v1/customer/integrations/telemetron"
DEVICES = "/api/v1/customer/devices"
CHANNELS = "/api/v1/customer/notification-channels"


@pytest.fixture
def sim(telemetron_server: SimServer) -> TelemetronSim:
    return telemetron_server.sim


@pytest.fixture
def base_url(telemetron_server: SimServer) -> str:
    return telemetron_server.base_url + API_PREFIX


async def configure(api, base_url: str, tenant: str = "acme", **fields):
    return await api.request("PUT", INTEGRATION, tenant=tenant,
                             json={"base_url": base_url, "api_key": DEMO_API_KEY, **fields})


async def owned_device(api, device_id: str, *emails: str) -> None:
    assert (await api.post(DEVICES, json={"device_id": device_id, "model": "BX-2"})).status_code == 201
    r = await api.request("PUT", f"{DEVICES}/{device_id}/owners",
                          json={"owners": [{"email": e, "name": e.split("@")[0]} for e in emails]})
    assert r.status_code == 200, r.text


# ---- the integration -----------------------------------------------------------------------------
async def test_configure_read_masked_update_and_delete(api, base_url):
    assert (await api.get(INTEGRATION)).status_code == 404
    created = await configure(api, base_url)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["api_key"] == "***" + DEMO_API_KEY[-4:] and DEMO_API_KEY not in created.text
    assert body["base_url"] == base_url and body["enabled"] is True and "secrets" not in body
    read = await api.get(INTEGRATION)
    assert read.json()["api_key"] == body["api_key"] and DEMO_API_KEY not in read.text

    kept = await api.request("PUT", INTEGRATION, json={"api_key": body["api_key"], "enabled": False})
    assert kept.status_code == 200 and kept.json()["enabled"] is False and kept.json()["base_url"] == base_url
    assert kept.json()["api_key"] == body["api_key"]  # the mask sent back kept the stored key
    assert (await api.request("PUT", INTEGRATION, json={"api_key": "another-key-9876"})).json()["api_key"] == "***9876"

    assert (await api.delete(INTEGRATION)).status_code == 204
    assert (await api.get(INTEGRATION)).status_code == 404
    assert (await api.delete(INTEGRATION)).status_code == 404


INVALID = [
    {"base_url": "http://127.0.0.1:1/api/ext-v1"},  # no api_key when creating
    {"api_key": "***abcd"},  # a mask with nothing stored
    {"base_url": "ftp://telemetron.example/api", "api_key": DEMO_API_KEY},
    {"base_url": "not a url", "api_key": DEMO_API_KEY},
    {"api_key": "short"},
    {"api_key": "has space in it"},
    {"api_key": DEMO_API_KEY, "enabled": "maybe"},
    {"api_key": DEMO_API_KEY, "extra": 1},
]


async def test_invalid_integration_bodies_are_422(api):
    for body in INVALID:  # one app for all cases: the fixture is the slow part
        r = await api.request("PUT", INTEGRATION, json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    assert (await api.get(INTEGRATION)).status_code == 404


async def test_default_base_url_and_permissions_and_tenancy(api):
    r = await api.request("PUT", INTEGRATION, json={"api_key": DEMO_API_KEY})
    assert r.json()["base_url"] == "https://admin.telemetron.ai/api/ext-v1"
    assert (await api.get(INTEGRATION, role="customer_viewer")).status_code == 200
    assert (await api.get(INTEGRATION + "/status", role="customer_viewer")).status_code == 200
    for method, url in (("PUT", INTEGRATION), ("DELETE", INTEGRATION), ("POST", INTEGRATION + "/sync")):
        forbidden = await api.request(method, url, role="customer_viewer", json={"api_key": DEMO_API_KEY})
        assert forbidden.status_code == 403, (method, url)
    assert (await api.get(INTEGRATION, tenant="globex")).status_code == 404
    assert (await api.get(INTEGRATION + "/status", tenant="globex")).status_code == 404
    assert (await api.post(INTEGRATION + "/sync", tenant="globex")).status_code == 404


async def test_sync_resends_every_owned_device_and_status_follows(api, sim, base_url):
    await owned_device(api, "d1", "jane@example.com")
    await owned_device(api, "d2", "jane@example.com", "joe@example.com")
    assert (await configure(api, base_url)).status_code == 201
    status = (await api.get(INTEGRATION + "/status")).json()
    assert status["pending"] == 7 and status["last_sync_at"] is None

    assert await api.services.runtime.service_call("telemetron-sync", "drain") == 7
    assert sim.owners_of("d2") == {"jane@example.com", "joe@example.com"}
    sim.assignments.clear()
    r = await api.post(INTEGRATION + "/sync")
    assert r.status_code == 202 and r.json() == {"enqueued": 7}
    await api.services.runtime.service_call("telemetron-sync", "drain")  # after the drain the sync started
    assert sim.owners_of("d1") == {"jane@example.com"} and len(sim.customers) == 2
    status = (await api.get(INTEGRATION + "/status")).json()
    assert (status["pending"], status["delivered"], status["failed"]) == (0, 14, 0)
    assert status["last_sync_at"] and status["last_error"] is None and status["recent_failures"] == []


async def test_sync_of_a_disabled_integration_is_409(api, base_url):
    await configure(api, base_url, enabled=False)
    r = await api.post(INTEGRATION + "/sync")
    assert r.status_code == 409 and "disabled" in r.json()["detail"]


# ---- the ticket channel --------------------------------------------------------------------------
@pytest.mark.parametrize("severity,expected", [(5, "urgent"), (4, "high"), (3, "medium"), (2, "low"), (1, "low")])
def test_priority_follows_severity(severity, expected):
    assert priority(severity) == expected


def test_a_ticket_carries_the_alert_facts():
    alert = {"alert_id": 7, "device_id": "d1", "severity": 5, "summary": "temp=99 GT 80", "alert_type": "THRESHOLD"}
    body = TelemetronChannel().build(Message("acme", "OPEN", alert, "job-1"), TelemetronConfig(category="Hardware"))
    assert body["title"] == "[CRITICAL] Alert opened: temp=99 GT 80" and body["priority"] == "urgent"
    assert body["category"] == "Hardware" and "Device: d1" in body["description"]


async def deliver(api, channel_id: str, alert: dict, event: str = "OPEN") -> dict:
    notifier = api.services.runtime.service_refs["notifier"]
    [job_id] = await notifier.enqueue("acme", alert, event, [channel_id])
    for _ in range(50):
        await notifier.run_due()
        jobs, _ = await notifications.list_jobs(api.services.db, "acme", limit=100)
        job = next(j for j in jobs if j["job_id"] == job_id)
        if job["status"] in ("COMPLETED", "FAILED"):
            return job
    raise AssertionError(f"job {job_id} not finished: {job}")


async def test_the_channel_opens_a_ticket_for_the_owner_with_the_mapped_priority(api, sim, base_url):
    await owned_device(api, "d1", "jane@example.com")
    await configure(api, base_url)
    await api.services.runtime.service_call("telemetron-sync", "drain")  # maps jane to her Telemetron id
    r = await api.post(CHANNELS, json={"name": "support", "channel_type": "telemetron",
                                       "config": {"category": "Hardware"}})
    assert r.status_code == 201, r.text
    channel_id = r.json()["channel_id"]

    alert = {"alert_id": 41, "device_id": "d1", "severity": 4, "summary": "temp=91 GT 80", "status": "OPEN"}
    job = await deliver(api, channel_id, alert)
    assert job["status"] == "COMPLETED", job
    [ticket] = sim.tickets
    assert ticket["priority"] == "high" and ticket["category"] == "Hardware" and "temp=91" in ticket["title"]
    assert ticket["customerId"] == sim.customer_by_email("jane@example.com")["id"]

    closed = await deliver(api, channel_id, {**alert, "status": "CLOSED"}, "CLOSED")
    assert closed["status"] == "COMPLETED" and len(sim.tickets) == 1  # nothing to open on a close

    test = await api.post(f"{CHANNELS}/{channel_id}/test")
    assert test.status_code == 200 and test.json()["ok"] is True and len(sim.tickets) == 1


async def test_the_channel_fails_clearly_without_an_owner_or_an_integration(api, sim, base_url):
    r = await api.post(CHANNELS, json={"name": "support", "channel_type": "telemetron", "config": {}})
    channel_id = r.json()["channel_id"]
    assert (await api.post(DEVICES, json={"device_id": "lonely"})).status_code == 201
    no_integration = await deliver(api, channel_id, {"alert_id": 1, "device_id": "lonely", "severity": 5})
    assert no_integration["status"] == "FAILED" and "integration" in no_integration["last_error"]
    await configure(api, base_url)
    no_owner = await deliver(api, channel_id, {"alert_id": 2, "device_id": "lonely", "severity": 5})
    assert no_owner["status"] == "FAILED" and "has no owner" in no_owner["last_error"]
    assert no_owner["attempts"] == 1 and sim.tickets == []
    bad = await api.post(CHANNELS, json={"name": "x", "channel_type": "telemetron", "config": {"api_key": "k"}})
    assert bad.status_code == 422
