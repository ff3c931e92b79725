"""Device transports and the deprecated /connection view through the real app."""
import pytest

DEVICES = "/api/v1/customer/devices"
SUCCESSOR = '</api/v1/customer/devices/d1/transports>; rel="successor-version"'


async def device(api, device_id: str = "d1", tenant: str = "acme") -> None:
    assert (await api.post(DEVICES, tenant=tenant, json={"device_id": device_id})).status_code == 201


async def add(api, device_id: str = "d1", **body):
    return await api.post(f"{DEVICES}/{device_id}/transports", json=body)


async def listed(api, device_id: str = "d1") -> list[dict]:
    return (await api.get(f"{DEVICES}/{device_id}/transports")).json()["transports"]


async def test_first_transport_is_primary_and_one_primary_at_most(api):
    await device(api)
    r = await add(api, ingestion_protocol="mqtt_direct", physical_connectivity="cellular",
                  connectivity_config={"apn": "iot.1nce.net", "sim_iccid": "8988280666000000000"},
                  carrier_integration_id=3)
    assert r.status_code == 201, r.text
    cell = r.json()
    assert cell["is_primary"] is True and cell["status"] == "active" and cell["carrier_integration_id"] == 3
    wifi = (await add(api, ingestion_protocol="http_api", physical_connectivity="wifi")).json()
    assert wifi["is_primary"] is False and wifi["protocol_config"] == {}
    sat = (await add(api, ingestion_protocol="mqtt_direct", physical_connectivity="satellite", is_primary=True,
                     status="failover")).json()
    assert sat["is_primary"] is True
    assert [(t["id"], t["is_primary"]) for t in await listed(api)] == [(sat["id"], True), (cell["id"], False),
                                                                        (wifi["id"], False)]
    r = await api.request("PUT", f"{DEVICES}/d1/transports/{wifi['id']}", json={"is_primary": True,
                                                                               "protocol_config": {"path": "/v1"}})
    assert r.status_code == 200 and r.json()["is_primary"] is True and r.json()["protocol_config"] == {"path": "/v1"}
    assert [t["id"] for t in await listed(api) if t["is_primary"]] == [wifi["id"]]


async def test_update_and_delete_a_transport(api):
    await device(api)
    t = (await add(api, ingestion_protocol="lorawan", physical_connectivity="lora")).json()
    r = await api.request("PUT", f"{DEVICES}/d1/transports/{t['id']}", json={"status": "inactive",
                                                                            "carrier_integration_id": None})
    assert r.status_code == 200 and r.json()["status"] == "inactive" and r.json()["ingestion_protocol"] == "lorawan"
    for bad in ({}, {"status": None}, {"ingestion_protocol": "smoke_signal"}, {"is_primary": None}):
        assert (await api.request("PUT", f"{DEVICES}/d1/transports/{t['id']}", json=bad)).status_code == 422
    assert (await api.delete(f"{DEVICES}/d1/transports/{t['id']}")).status_code == 204
    assert (await api.delete(f"{DEVICES}/d1/transports/{t['id']}")).status_code == 404
    assert await listed(api) == []
    assert (await add(api, ingestion_protocol="modbus_rtu")).json()["is_primary"] is True  # none was primary


@pytest.mark.parametrize("body", [
    {}, {"ingestion_protocol": "smtp"}, {"ingestion_protocol": "mqtt_direct", "physical_connectivity": "5g"},
    {"ingestion_protocol": "mqtt_direct", "status": "broken"},
    {"ingestion_protocol": "mqtt_direct", "carrier_integration_id": 0},
    {"ingestion_protocol": "mqtt_direct", "protocol_config": "qos=1"},
])
async def test_invalid_transports_are_422(api, body):
    await device(api)
    r = await add(api, **body)
    assert r.status_code == 422 and r.json()["detail"]
    assert await listed(api) == []


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/transports", None), ("POST", "/transports", {"ingestion_protocol": "mqtt_direct"}),
    ("PUT", "/transports/{tid}", {"status": "inactive"}), ("DELETE", "/transports/{tid}", None),
    ("GET", "/connection", None), ("PUT", "/connection", {"apn": "x"}), ("DELETE", "/connection", None),
])
async def test_another_tenants_transports_are_404(api, method, path, body):
    await device(api)
    tid = (await add(api, ingestion_protocol="mqtt_direct")).json()["id"]
    r = await api.request(method, f"{DEVICES}/d1{path.format(tid=tid)}", tenant="globex", json=body)
    assert r.status_code == 404, r.text
    assert [t["status"] for t in await listed(api)] == ["active"]


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/transports", {"ingestion_protocol": "mqtt_direct"}), ("PUT", "/transports/{tid}", {"status": "inactive"}),
    ("DELETE", "/transports/{tid}", None), ("PUT", "/connection", {"apn": "x"}), ("DELETE", "/connection", None),
])
async def test_viewers_cannot_change_transports(api, method, path, body):
    await device(api)
    tid = (await add(api, ingestion_protocol="mqtt_direct")).json()["id"]
    r = await api.request(method, f"{DEVICES}/d1{path.format(tid=tid)}", role="customer_viewer", json=body)
    assert r.status_code == 403 and "devices.update" in r.json()["detail"]
    assert (await api.get(f"{DEVICES}/d1/connection", role="customer_viewer")).status_code == 200


async def test_transport_list_paginates(api):
    await device(api)
    for protocol in ("mqtt_direct", "http_api", "lorawan"):
        await add(api, ingestion_protocol=protocol)
    r = (await api.get(f"{DEVICES}/d1/transports", params={"limit": 2, "offset": 2})).json()
    assert (r["total"], r["limit"], r["offset"]) == (3, 2, 2) and [t["ingestion_protocol"] for t in r["transports"]] == [
        "lorawan"]


# ---- deprecated /connection ----------------------------------------------------------------------
def assert_deprecated(r) -> None:
    assert r.headers["Deprecation"] == "true" and r.headers["Link"] == SUCCESSOR


async def test_connection_is_the_primary_transport_in_the_legacy_shape(api):
    await device(api)
    r = await api.get(f"{DEVICES}/d1/connection")
    assert r.status_code == 404 and "no connection" in r.json()["detail"]
    assert_deprecated(r)
    r = await api.request("PUT", f"{DEVICES}/d1/connection", json={
        "connection_type": "cellular", "carrier_integration_id": 2, "apn": "iot.1nce.net",
        "sim_iccid": "8988280666000000000", "data_limit_mb": 50})
    assert r.status_code == 200, r.text
    assert_deprecated(r)
    c = r.json()
    assert (c["connection_type"], c["ingestion_protocol"], c["apn"], c["data_limit_mb"], c["msisdn"]) == (
        "cellular", "mqtt_direct", "iot.1nce.net", 50, None)
    [t] = await listed(api)
    assert t["is_primary"] and t["id"] == c["transport_id"] and t["carrier_integration_id"] == 2
    assert t["connectivity_config"] == {"apn": "iot.1nce.net", "sim_iccid": "8988280666000000000", "data_limit_mb": 50}
    r = await api.request("PUT", f"{DEVICES}/d1/connection", json={"apn": None, "msisdn": "+4915112345678"})
    assert r.json()["apn"] is None and r.json()["msisdn"] == "+4915112345678" and r.json()["data_limit_mb"] == 50
    assert r.json()["transport_id"] == t["id"]
    r = await api.get(f"{DEVICES}/d1/connection")
    assert r.status_code == 200 and r.json()["msisdn"] == "+4915112345678"
    assert_deprecated(r)
    r = await api.delete(f"{DEVICES}/d1/connection")
    assert r.status_code == 204
    assert_deprecated(r)
    assert await listed(api) == []
    r = await api.delete(f"{DEVICES}/d1/connection")
    assert r.status_code == 404
    assert_deprecated(r)


async def test_connection_follows_whichever_transport_is_primary(api):
    await device(api)
    await add(api, ingestion_protocol="mqtt_direct", physical_connectivity="ethernet")
    lora = (await add(api, ingestion_protocol="lorawan", physical_connectivity="lora", is_primary=True)).json()
    assert (await api.get(f"{DEVICES}/d1/connection")).json()["transport_id"] == lora["id"]
    r = await api.request("PUT", f"{DEVICES}/d1/connection", json={"sim_iccid": "123"})
    assert r.status_code == 422
    assert_deprecated(r)


async def test_connection_routes_are_deprecated_in_openapi(api):
    spec = (await api.client.get("/openapi.json")).json()
    ops = spec["paths"]["/api/v1/customer/devices/{device_id}/connection"]
    assert set(ops) == {"get", "put", "delete"} and all(op.get("deprecated") is True for op in ops.values())
    assert not spec["paths"]["/api/v1/customer/devices/{device_id}/transports"]["get"].get("deprecated")
