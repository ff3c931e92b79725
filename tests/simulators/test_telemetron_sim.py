"""The Telemetron simulator over real HTTP: auth, envelopes, 400/404/409 as reference §C says, the
idempotent assignment calls, tickets, and the state and request counts tests read."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pulse.simulators.server import SimServer
from pulse.simulators.telemetron import API_PREFIX, DEMO_API_KEY, TelemetronSim


@pytest.fixture
def sim(telemetron_server: SimServer) -> TelemetronSim:
    return telemetron_server.sim


@pytest.fixture
def http(telemetron_server: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=telemetron_server.base_url + API_PREFIX, headers={"x-api-key": DEMO_API_KEY},
                      timeout=5) as c:
        yield c


def test_requests_need_the_api_key(sim, http):
    missing = http.post("/device", json={"identifier": "d1", "type": "meter"}, headers={"x-api-key": ""})
    wrong = http.post("/device", json={"identifier": "d1", "type": "meter"}, headers={"x-api-key": "nope-nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "error" in missing.json() and "error" in wrong.json()
    assert sim.devices == {}


def test_customer_create_update_query_and_get(sim, http):
    created = http.post("/customer/createOrUpdateCustomer", json={"email": " Jane@Example.COM ", "phone": "+1 555"})
    assert created.status_code == 200
    body = created.json()
    assert body["success"] is True and body["message"]
    cid = body["data"]["telemetronCustomerId"]
    assert sim.customers[cid]["email"] == "jane@example.com" and sim.customers[cid]["name"] == "jane"

    dup = http.post("/customer/createOrUpdateCustomer", json={"email": "jane@example.com"})
    assert dup.status_code == 409 and "error" in dup.json()

    updated = http.post("/customer/createOrUpdateCustomer",
                        json={"email": "jane@example.com", "name": "Jane Doe", "telemetronCustomerId": cid})
    assert updated.status_code == 200 and updated.json()["data"]["telemetronCustomerId"] == cid
    assert sim.customers[cid]["name"] == "Jane Doe" and sim.customers[cid]["phone"] == "+1 555"

    record = http.post("/customer/queryCustomer", json={"email": "JANE@example.com"}).json()["data"]
    assert record["id"] == cid and record["organizationId"] == "org_demo" and record["devices"] == []
    assert http.get(f"/customer/getCustomer/{cid}").json()["data"]["email"] == "jane@example.com"
    assert http.post("/customer/queryCustomer", json={"email": "nobody@example.com"}).status_code == 404
    assert http.get("/customer/getCustomer/cus_missing").status_code == 404
    unknown_id = http.post("/customer/createOrUpdateCustomer", json={"email": "x@example.com",
                                                                    "telemetronCustomerId": "cus_missing"})
    assert unknown_id.status_code == 404


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"name": "no email"}, {"email": 42}])
def test_customer_bodies_missing_or_invalid_fields_are_400(sim, http, body):
    r = http.post("/customer/createOrUpdateCustomer", json=body)
    assert r.status_code == 400 and r.json()["error"]
    assert sim.customers == {}


def test_non_json_body_is_400(sim, http):
    r = http.post("/device", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json()


def test_device_create_needs_a_type_and_update_replaces_properties(sim, http):
    assert http.post("/device", json={"identifier": "d1"}).status_code == 400
    first = http.post("/device", json={"identifier": "d1", "type": "meter", "properties": {"a": 1, "b": 2}})
    assert first.status_code == 200 and first.json()["data"]["type"] == "meter"
    again = http.post("/device", json={"identifier": "d1", "properties": {"a": 3}})
    assert again.json()["data"]["deviceId"] == first.json()["data"]["deviceId"]
    assert sim.devices["d1"]["type"] == "meter" and sim.devices["d1"]["properties"] == {"a": 3}
    assert len(sim.devices) == 1


def test_assign_device_to_owners_creates_customers_and_is_idempotent(sim, http):
    missing = http.post("/deviceAssignment/assignDeviceToOwners",
                        json={"deviceIdentifier": "d1", "customerEmails": ["a@example.com"]})
    assert missing.status_code == 404
    no_type = http.post("/deviceAssignment/assignDeviceToOwners",
                        json={"deviceIdentifier": "d1", "customerEmails": ["a@example.com"], "autoCreateDevice": True})
    assert no_type.status_code == 400
    body = {"deviceIdentifier": "d1", "customerEmails": ["A@example.com", "bad email", "b@example.com"],
            "autoCreateDevice": True, "deviceType": "meter"}
    first = http.post("/deviceAssignment/assignDeviceToOwners", json=body).json()["data"]
    assert first["deviceWasCreated"] is True
    assert [(c["email"], c["wasCreated"]) for c in first["assignedCustomers"]] == [
        ("a@example.com", True), ("b@example.com", True)]
    again = http.post("/deviceAssignment/assignDeviceToOwners", json=body).json()["data"]
    assert again["deviceWasCreated"] is False and all(not c["wasCreated"] for c in again["assignedCustomers"])
    assert sim.owners_of("d1") == {"a@example.com", "b@example.com"}
    assert len(sim.assignments) == 2 and len(sim.customers) == 2 and len(sim.devices) == 1
    only_invalid = http.post("/deviceAssignment/assignDeviceToOwners",
                             json={"deviceIdentifier": "d1", "customerEmails": ["nope"]})
    assert only_invalid.status_code == 400


def test_assign_devices_to_owner_reports_already_assigned_and_skipped(sim, http):
    http.post("/device", json={"identifier": "d1", "type": "meter"})
    http.post("/deviceAssignment/assignDeviceToOwners", json={"deviceIdentifier": "d1", "customerEmails": ["o@example.com"]})
    data = http.post("/deviceAssignment/assignDevicesToOwner",
                     json={"customerEmail": "o@example.com", "deviceIdentifiers": ["d1", "d2"]}).json()["data"]
    assert data["customerWasCreated"] is False and [d["identifier"] for d in data["alreadyAssigned"]] == ["d1"]
    assert data["skipped"] == ["d2"] and data["assignedDevices"] == []
    created = http.post("/deviceAssignment/assignDevicesToOwner", json={
        "customerEmail": "o@example.com", "deviceIdentifiers": ["d2"], "autoCreateDevices": True,
        "deviceType": "meter"}).json()["data"]
    assert [d["identifier"] for d in created["assignedDevices"]] == ["d2"] and created["assignedDevices"][0]["wasCreated"]
    assert sim.owners_of("d2") == {"o@example.com"}


def test_unassign_removes_only_the_link_and_repeating_is_harmless(sim, http):
    http.post("/deviceAssignment/assignDeviceToOwners", json={
        "deviceIdentifier": "d1", "customerEmails": ["o@example.com"], "autoCreateDevice": True, "deviceType": "m"})
    body = {"deviceIdentifier": "d1", "customerEmail": "o@example.com"}
    first = http.post("/deviceAssignment/unassignDeviceFromOwner", json=body)
    again = http.post("/deviceAssignment/unassignDeviceFromOwner", json=body)
    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["data"]["devicesRemaining"] == [] and sim.assignments == set()
    assert "d1" in sim.devices and sim.customer_by_email("o@example.com") is not None
    assert http.post("/deviceAssignment/unassignDeviceFromOwner",
                     json={"deviceIdentifier": "d1", "customerEmail": "x@example.com"}).status_code == 404
    assert http.post("/deviceAssignment/unassignDeviceFromOwner",
                     json={"deviceIdentifier": "zz", "customerEmail": "o@example.com"}).status_code == 404
    http.post("/deviceAssignment/assignDeviceToOwners", json={"deviceIdentifier": "d1", "customerEmails": ["o@example.com"]})
    many = http.post("/deviceAssignment/unassignDevicesFromOwner",
                     json={"customerEmail": "o@example.com", "deviceIdentifiers": ["d1", "d9"]}).json()["data"]
    assert many["unassignedDevices"] == ["d1"] and many["skipped"] == ["d9"] and many["devicesRemaining"] == []


def test_tickets_need_a_customer_and_a_known_priority(sim, http):
    assert http.post("/ticket/createTicket", json={"title": "t"}).status_code == 400
    assert http.post("/ticket/createTicket", json={"title": "t", "customerEmail": "a@example.com",
                                                   "priority": "critical"}).status_code == 400
    assert http.post("/ticket/createTicket", json={"title": "x" * 256, "customerEmail": "a@example.com"}).status_code == 400
    assert http.post("/ticket/createTicket", json={"title": "t", "customerId": "cus_missing"}).status_code == 404
    r = http.post("/ticket/createTicket", json={"title": "Boiler hot", "customerEmail": "New@example.com",
                                                "priority": "urgent", "messages": [{"role": "bot", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["data"]["ticketId"].startswith("tkt_")
    [ticket] = sim.tickets
    assert ticket["priority"] == "urgent" and ticket["customerId"] == sim.customer_by_email("new@example.com")["id"]


def test_unknown_routes_are_404_in_the_api_shape_and_requests_are_counted(sim, http):
    r = http.post("/nope", json={})
    assert r.status_code == 404 and r.json() == {"error": "Not found"}
    http.post("/device", json={"identifier": "d1", "type": "meter"})
    http.post("/device", json={"identifier": "d2", "type": "meter"})
    assert sim.hits("/device") == 2 and sim.request_counts()[f"POST {API_PREFIX}/nope"] == 1


def test_faults_answer_in_the_error_shape(sim, http):
    sim.faults.add(status=503, times=1, path=f"{API_PREFIX}/device")
    r = http.post("/device", json={"identifier": "d1", "type": "meter"})
    assert r.status_code == 503 and "error" in r.json() and sim.devices == {}
    assert http.post("/device", json={"identifier": "d1", "type": "meter"}).status_code == 200
