"""The Telemetron client against the real simulator on 127.0.0.1: every route, the error mapping
(401 never retried, 4xx final, 5xx/timeouts retried then Unavailable), and the pure mappings."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pulse.integrations.http import RetryPolicy, Unavailable
from pulse.integrations.telemetron import (CustomerUpsert, DeviceAssignment, DevicesAssignment, DevicesUnassignment,
                                           DeviceUnassignment, DeviceUpsert, TelemetronAuthError, TelemetronClient,
                                           TelemetronError, TicketCreate, _fields, device_record)
from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import API_PREFIX, DEMO_API_KEY, TelemetronSim

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
async def client(telemetron_server: SimServer) -> AsyncIterator[TelemetronClient]:
    async with TelemetronClient(telemetron_server.base_url + API_PREFIX, DEMO_API_KEY, timeout_s=2.0,
                                policy=FAST) as c:
        yield c


async def test_customer_routes_round_trip(telemetron_server, client):
    cid = await client.create_or_update_customer(CustomerUpsert(email="jane@example.com", name="Jane"))
    assert await client.create_or_update_customer(
        CustomerUpsert(email="jane@example.com", name="Jane D", phone="+15551234", telemetronCustomerId=cid)) == cid
    record = await client.query_customer("jane@example.com")
    assert record["id"] == cid and record["name"] == "Jane D" and record["phone"] == "+15551234"
    assert (await client.get_customer(cid))["email"] == "jane@example.com"
    assert await client.query_customer("nobody@example.com") is None
    assert await client.get_customer("cus_missing") is None
    with pytest.raises(TelemetronError) as dup:
        await client.create_or_update_customer(CustomerUpsert(email="jane@example.com"))
    assert dup.value.status == 409 and "exists" in dup.value.message


async def test_device_assignment_and_ticket_routes(telemetron_server, client):
    sim: TelemetronSim = telemetron_server.sim
    await client.upsert_device(DeviceUpsert(identifier="d1", type="meter", properties={"siteId": "s1"}))
    assigned = await client.assign_device_to_owners(DeviceAssignment(deviceIdentifier="d1",
                                                                     customerEmails=["a@example.com"]))
    assert assigned["assignedCustomers"][0]["email"] == "a@example.com"
    many = await client.assign_devices_to_owner(DevicesAssignment(
        customerEmail="a@example.com", deviceIdentifiers=["d2"], autoCreateDevices=True, deviceType="meter"))
    assert many["assignedDevices"][0]["identifier"] == "d2"
    assert sim.owners_of("d1") == sim.owners_of("d2") == {"a@example.com"}
    await client.unassign_device_from_owner(DeviceUnassignment(deviceIdentifier="d1", customerEmail="a@example.com"))
    gone = await client.unassign_devices_from_owner(DevicesUnassignment(customerEmail="a@example.com",
                                                                        deviceIdentifiers=["d2"]))
    assert gone["unassignedDevices"] == ["d2"] and sim.assignments == set()
    ticket_id = await client.create_ticket(TicketCreate(title="Hot", priority="high", customerEmail="a@example.com"))
    assert sim.tickets[0]["id"] == ticket_id and sim.tickets[0]["priority"] == "high"
    assert sim.devices["d1"]["properties"] == {"siteId": "s1"}


async def test_a_refused_key_raises_auth_error_and_is_not_retried(telemetron_server):
    async with TelemetronClient(telemetron_server.base_url + API_PREFIX, "wrong-key-123", policy=FAST) as c:
        with pytest.raises(TelemetronAuthError) as e:
            await c.upsert_device(DeviceUpsert(identifier="d1", type="meter"))
    assert e.value.status == 401 and telemetron_server.sim.hits("/device") == 1


async def test_bad_requests_are_final_and_not_retried(telemetron_server, client):
    with pytest.raises(TelemetronError) as e:
        await client.upsert_device(DeviceUpsert(identifier="d1"))  # no type on create
    assert e.value.status == 400 and "type" in e.value.message and telemetron_server.sim.hits("/device") == 1


async def test_server_errors_are_retried_until_they_pass(telemetron_server, client):
    telemetron_server.sim.faults.add(status=503, times=2, path=f"{API_PREFIX}/device")
    await client.upsert_device(DeviceUpsert(identifier="d1", type="meter"))
    assert telemetron_server.sim.hits("/device") == 3 and "d1" in telemetron_server.sim.devices


async def test_persistent_server_errors_end_as_unavailable(telemetron_server, client):
    telemetron_server.sim.faults.add(status=500, times=10, path=f"{API_PREFIX}/device")
    with pytest.raises(Unavailable) as e:
        await client.upsert_device(DeviceUpsert(identifier="d1", type="meter"))
    assert e.value.status == 500 and telemetron_server.sim.hits("/device") == FAST.attempts


async def test_timeouts_are_retried(telemetron_server):
    telemetron_server.sim.faults.add(status=503, times=1, path=f"{API_PREFIX}/device", delay_s=1.0)
    async with TelemetronClient(telemetron_server.base_url + API_PREFIX, DEMO_API_KEY, timeout_s=0.2,
                                policy=FAST) as c:
        await c.upsert_device(DeviceUpsert(identifier="d1", type="meter"))
    assert "d1" in telemetron_server.sim.devices and telemetron_server.sim.hits("/device") == 2


async def test_a_stopped_server_is_unavailable():
    server = SimServer(TelemetronSim()).start()
    url = server.base_url + API_PREFIX
    server.stop()
    async with TelemetronClient(url, DEMO_API_KEY, timeout_s=1.0, policy=FAST) as c:
        with pytest.raises(Unavailable):
            await c.query_customer("a@example.com")


def test_answers_are_read_at_the_top_level_or_inside_data():
    assert _fields({"success": True, "telemetronCustomerId": "c1"})["telemetronCustomerId"] == "c1"
    assert _fields({"success": True, "data": {"telemetronCustomerId": "c2"}})["telemetronCustomerId"] == "c2"
    assert _fields(["not", "an", "object"]) == {}


def test_device_record_sends_the_pulse_id_and_every_property():
    record = device_record({"device_id": "boiler-7", "name": "Boiler", "model": "BX-2", "site_id": "s1",
                            "fw_version": "1.2", "serial_number": None, "status": "ACTIVE", "metadata": {"floor": 2}})
    assert record.identifier == "boiler-7" and record.type == "BX-2"
    assert record.properties == {"platformDeviceId": "boiler-7", "name": "Boiler", "model": "BX-2", "siteId": "s1",
                                 "firmwareVersion": "1.2", "status": "ACTIVE", "metadata": {"floor": 2}}
    assert device_record({"device_id": "x"}).type == "device"


async def test_a_ticket_needs_a_customer(client):
    with pytest.raises(ValueError):
        await client.create_ticket(TicketCreate(title="no customer"))
