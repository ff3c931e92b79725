"""Device sensors through the real app; apply_template and sensor discovery against the store."""
import asyncio

import pytest

from pulse.errors import Invalid
from pulse.storage import sensors, templates
from tests.serve.helpers import telemetry, ts

DEVICES = "/api/v1/customer/devices"
TEMPLATES = "/api/v1/customer/templates"


async def template_id(api, slug: str) -> int:
    items = (await api.get(TEMPLATES, params={"search": slug})).json()["templates"]
    return next(t["id"] for t in items if t["slug"] == slug)


async def device(api, device_id: str, slug: str | None = None, tenant: str = "acme") -> None:
    """A device created through the API; with a template, also given what the template requires."""
    body = {"device_id": device_id}
    if slug:
        body["template_id"] = await template_id(api, slug)
    assert (await api.post(DEVICES, tenant=tenant, json=body)).status_code == 201
    if slug:
        async with api.services.db.begin() as conn:
            await templates.apply_template(conn, tenant, device_id, body["template_id"])


async def by_key(api, device_id: str, tenant: str = "acme") -> dict[str, dict]:
    r = await api.get(f"{DEVICES}/{device_id}/sensors", tenant=tenant)
    assert r.status_code == 200, r.text
    return {s["metric_key"]: s for s in r.json()["sensors"]}


async def test_add_update_and_delete_an_optional_sensor(api):
    await device(api, "d1")
    r = await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "flow", "unit": "l/min", "min_range": 0,
                                                      "max_range": 50, "precision_digits": 1})
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["source"], s["status"], s["unit"], s["device_id"]) == ("optional", "active", "l/min", "d1")
    r = await api.request("PUT", f"{DEVICES}/d1/sensors/{s['id']}", json={"display_name": "Flow", "status": "error"})
    assert r.status_code == 200 and (r.json()["display_name"], r.json()["status"]) == ("Flow", "error")
    assert r.json()["unit"] == "l/min"
    assert (await api.delete(f"{DEVICES}/d1/sensors/{s['id']}")).status_code == 204
    assert (await api.delete(f"{DEVICES}/d1/sensors/{s['id']}")).status_code == 404
    assert await by_key(api, "d1") == {}


async def test_metric_key_is_unique_per_device(api):
    await device(api, "d1")
    await device(api, "d2")
    assert (await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "flow"})).status_code == 201
    r = await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "flow"})
    assert r.status_code == 409 and "flow" in r.json()["detail"]
    assert (await api.post(f"{DEVICES}/d2/sensors", json={"metric_key": "flow"})).status_code == 201


async def test_a_client_cannot_make_a_sensor_required(api):
    await device(api, "d1")
    r = await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "a", "source": "required"})
    assert r.status_code == 201 and r.json()["source"] == "optional"  # unknown on create: ignored


@pytest.mark.parametrize("body", [
    {"metric_key": "bad key"}, {"metric_key": "x" * 129}, {}, {"metric_key": "a", "status": "broken"},
    {"metric_key": "a", "min_range": 5, "max_range": 1},
    {"metric_key": "a", "template_metric_id": 1}, {"metric_key": "a", "device_module_id": 99999},
    {"metric_key": "a", "precision_digits": -1},
])
async def test_invalid_sensors_are_422(api, body):
    await device(api, "d1")
    r = await api.post(f"{DEVICES}/d1/sensors", json=body)
    assert r.status_code == 422 and r.json()["detail"], r.text


async def test_required_sensors_cannot_be_deleted_only_deactivated(api):
    await device(api, "gw", "lifeline-gateway-v1")
    rssi = (await by_key(api, "gw"))["signal_rssi"]
    r = await api.delete(f"{DEVICES}/gw/sensors/{rssi['id']}")
    assert r.status_code == 409 and "deactivate" in r.json()["detail"]
    r = await api.request("PUT", f"{DEVICES}/gw/sensors/{rssi['id']}", json={"source": "optional"})
    assert r.status_code == 409
    r = await api.request("PUT", f"{DEVICES}/gw/sensors/{rssi['id']}", json={"status": "inactive", "unit": "dB"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["source"], r.json()["unit"]) == (
        "inactive", "required", "dB")
    r = await api.request("PUT", f"{DEVICES}/gw/sensors/{rssi['id']}", json={"min_range": 10})
    assert r.status_code == 422 and "min_range" in r.json()["detail"]
    r = await api.request("PUT", f"{DEVICES}/gw/sensors/{rssi['id']}", json={"metric_key": "other"})
    assert r.status_code == 422


async def test_a_sensor_linked_to_a_template_metric_takes_its_definition(api):
    await device(api, "gw", "lifeline-gateway-v1")
    gateway = (await api.get(f"{TEMPLATES}/{await template_id(api, 'lifeline-gateway-v1')}")).json()
    cpu = next(m for m in gateway["metrics"] if m["metric_key"] == "cpu_temp")
    r = await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "cpu_temp", "template_metric_id": cpu["id"],
                                                      "precision_digits": 0})
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["unit"], s["min_range"], s["max_range"], s["display_name"]) == ("°C", -40, 125, "CPU temperature")
    assert s["precision_digits"] == 0 and s["source"] == "optional" and s["template_metric_id"] == cpu["id"]
    gps_metric = (await api.get(f"{TEMPLATES}/{await template_id(api, 'gps-tracker')}")).json()["metrics"][0]["id"]
    r = await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "lat", "template_metric_id": gps_metric})
    assert r.status_code == 422 and "template" in r.json()["detail"]


async def test_fleet_wide_list_filters_and_paginates(api):
    await device(api, "gw", "lifeline-gateway-v1")
    await device(api, "gps", "gps-tracker")
    await device(api, "other", "gps-tracker", tenant="globex")
    await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "flow", "status": "inactive"})
    url = "/api/v1/customer/sensors"
    r = (await api.get(url)).json()
    assert r["total"] == 6 and all(s["device_id"] in ("gw", "gps") for s in r["sensors"])
    assert [(s["device_id"], s["metric_key"]) for s in r["sensors"]] == sorted(
        (s["device_id"], s["metric_key"]) for s in r["sensors"])
    assert {s["metric_key"] for s in (await api.get(url, params={"device_id": "gw"})).json()["sensors"]} == {
        "supply_voltage", "signal_rssi", "flow"}
    assert [s["device_id"] for s in (await api.get(url, params={"metric_key": "latitude"})).json()["sensors"]] == ["gps"]
    assert [s["metric_key"] for s in (await api.get(url, params={"status": "inactive"})).json()["sensors"]] == ["flow"]
    assert (await api.get(url, params={"source": "required"})).json()["total"] == 5
    page = (await api.get(url, params={"limit": 4, "offset": 4})).json()
    assert len(page["sensors"]) == 2 and (page["total"], page["limit"], page["offset"]) == (6, 4, 4)
    assert (await api.get(url, params={"status": "lost"})).status_code == 422
    assert (await api.get(url, params={"device_id": "nope"})).json()["total"] == 0
    r = (await api.get(f"{DEVICES}/gw/sensors", params={"source": "optional", "limit": 1})).json()
    assert [s["metric_key"] for s in r["sensors"]] == ["flow"] and r["total"] == 1


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/sensors", None), ("POST", "/sensors", {"metric_key": "x"}),
    ("PUT", "/sensors/{sid}", {"unit": "x"}), ("DELETE", "/sensors/{sid}", None),
])
async def test_another_tenants_device_sensors_are_404(api, method, path, body):
    await device(api, "d1")
    sid = (await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "flow"})).json()["id"]
    r = await api.request(method, f"{DEVICES}/d1{path.format(sid=sid)}", tenant="globex", json=body)
    assert r.status_code == 404, r.text
    assert (await api.get("/api/v1/customer/sensors", tenant="globex")).json()["total"] == 0
    assert "flow" in await by_key(api, "d1")


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/sensors", {"metric_key": "x"}), ("PUT", "/sensors/{sid}", {"unit": "x"}),
    ("DELETE", "/sensors/{sid}", None),
])
async def test_viewers_cannot_change_sensors(api, method, path, body):
    await device(api, "d1")
    sid = (await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "flow"})).json()["id"]
    r = await api.request(method, f"{DEVICES}/d1{path.format(sid=sid)}", role="customer_viewer", json=body)
    assert r.status_code == 403 and "devices.update" in r.json()["detail"]
    assert (await api.get(f"{DEVICES}/d1/sensors", role="customer_viewer")).json()["total"] == 1
    assert (await api.get("/api/v1/customer/sensors", role="customer_viewer")).json()["total"] == 1


# ---- apply_template (called by device create/patch) ----------------------------------------------
async def test_apply_template_creates_required_sensors_and_a_primary_transport(api):
    await device(api, "gps", "gps-tracker")
    s = await by_key(api, "gps")
    assert set(s) == {"latitude", "longitude", "battery_pct"}
    assert all(x["source"] == "required" and x["status"] == "active" and x["template_metric_id"] for x in s.values())
    assert (s["latitude"]["unit"], s["latitude"]["min_range"], s["latitude"]["max_range"],
            s["latitude"]["precision_digits"]) == ("°", -90, 90, 6)
    transports = (await api.get(f"{DEVICES}/gps/transports")).json()["transports"]
    assert len(transports) == 1 and transports[0]["is_primary"] is True
    assert (transports[0]["ingestion_protocol"], transports[0]["physical_connectivity"]) == ("mqtt_direct", "cellular")
    assert transports[0]["connectivity_config"] == {"apn": "iot.1nce.net"}


async def test_apply_template_keeps_existing_sensors_and_transports(api):
    db = api.services.db
    await device(api, "d1")
    await api.post(f"{DEVICES}/d1/sensors", json={"metric_key": "latitude", "unit": "deg", "display_name": "Lat"})
    await sensors.discover_unmodeled(db, "acme", "d1", {"longitude", "rpm"})
    await api.post(f"{DEVICES}/d1/transports", json={"ingestion_protocol": "http_api"})
    gps = await template_id(api, "gps-tracker")
    for _ in range(2):  # applying twice changes nothing more
        async with db.begin() as conn:
            await templates.apply_template(conn, "acme", "d1", gps)
    s = await by_key(api, "d1")
    assert set(s) == {"latitude", "longitude", "battery_pct", "rpm"}
    assert (s["latitude"]["unit"], s["latitude"]["display_name"], s["latitude"]["source"]) == ("deg", "Lat", "required")
    assert (s["longitude"]["unit"], s["longitude"]["max_range"], s["longitude"]["source"]) == ("°", 180, "required")
    assert s["rpm"]["source"] == "unmodeled" and s["latitude"]["template_metric_id"] is not None
    transports = (await api.get(f"{DEVICES}/d1/transports")).json()["transports"]
    assert [t["ingestion_protocol"] for t in transports] == ["http_api"]


async def test_switching_templates_releases_sensors_the_new_one_does_not_require(api):
    db = api.services.db
    await device(api, "d1", "gps-tracker")
    async with db.begin() as conn:
        await templates.apply_template(conn, "acme", "d1", await template_id(api, "humidity-sensor-sht3x"))
    s = await by_key(api, "d1")
    assert {k: v["source"] for k, v in s.items()} == {
        "latitude": "optional", "longitude": "optional", "battery_pct": "optional",
        "humidity": "required", "temperature": "required"}
    assert (await api.delete(f"{DEVICES}/d1/sensors/{s['latitude']['id']}")).status_code == 204


async def test_apply_template_refuses_templates_the_tenant_cannot_see(api):
    db = api.services.db
    await device(api, "d1")
    own = (await api.post(TEMPLATES, tenant="globex", json={"name": "Secret", "category": "controller"})).json()
    for bad in (own["id"], 99999):
        with pytest.raises(Invalid):
            async with db.begin() as conn:
                await templates.apply_template(conn, "acme", "d1", bad)
    assert await by_key(api, "d1") == {}


async def test_template_metric_changes_release_required_sensors(api):
    t = (await api.post(TEMPLATES, json={"name": "Pump", "category": "controller", "metrics": [
        {"metric_key": "rpm", "is_required": True}, {"metric_key": "head", "is_required": True}]})).json()
    await api.post(DEVICES, json={"device_id": "p1", "template_id": t["id"]})
    async with api.services.db.begin() as conn:
        await templates.apply_template(conn, "acme", "p1", t["id"])
    rpm, head = t["metrics"]
    await api.request("PUT", f"{TEMPLATES}/{t['id']}/metrics/{rpm['id']}", json={"is_required": False})
    await api.delete(f"{TEMPLATES}/{t['id']}/metrics/{head['id']}")
    s = await by_key(api, "p1")
    assert (s["rpm"]["source"], s["head"]["source"], s["head"]["template_metric_id"]) == ("optional", "optional", None)


# ---- discovery and metadata (ingest and telemetry history) ---------------------------------------
async def test_discover_unmodeled_is_idempotent_and_race_safe(api):
    db = api.services.db
    await device(api, "gw", "lifeline-gateway-v1")
    assert await sensors.discover_unmodeled(db, "acme", "gw", set()) == 0
    assert await sensors.discover_unmodeled(db, "acme", "gw", {"signal_rssi", "vibration"}) == 1
    assert await sensors.discover_unmodeled(db, "acme", "gw", {"signal_rssi", "vibration"}) == 0
    keys = {f"k{i}" for i in range(20)}
    created = await asyncio.gather(*(sensors.discover_unmodeled(db, "acme", "gw", keys) for _ in range(5)))
    assert sum(created) == 20
    s = await by_key(api, "gw")
    assert s["vibration"]["source"] == "unmodeled" and s["signal_rssi"]["source"] == "required"
    assert len(s) == 2 + 1 + 20
    assert await sensors.discover_unmodeled(db, "acme", "ghost", {"x"}) == 0
    assert await sensors.discover_unmodeled(db, "globex", "gw", {"x"}) == 0


async def test_sensor_metadata_maps_metric_keys_to_units_and_ranges(api):
    db = api.services.db
    await device(api, "gps", "gps-tracker")
    await sensors.discover_unmodeled(db, "acme", "gps", {"rpm"})
    meta = await sensors.sensor_metadata(db, "acme", "gps")
    assert meta["longitude"] == {"unit": "°", "min_range": -180, "max_range": 180, "precision_digits": 6}
    assert meta["rpm"] == {"unit": None, "min_range": None, "max_range": None, "precision_digits": None}
    assert set(meta) == {"latitude", "longitude", "battery_pct", "rpm"}
    assert await sensors.sensor_metadata(db, "globex", "gps") == {}


async def test_sensors_show_the_last_value_ingest_wrote_behind(api):
    await device(api, "gw", "lifeline-gateway-v1")
    await telemetry(api, "gw", 0, supply_voltage=12.1, vibration=0.5)
    await telemetry(api, "gw", 30, supply_voltage=12.4)
    await api.services.runtime.flush()
    s = await by_key(api, "gw")
    assert (s["supply_voltage"]["last_value"], s["vibration"]["last_value"]) == (12.4, 0.5)
    assert s["supply_voltage"]["last_seen_at"].startswith(ts(30)[:19])
    assert s["signal_rssi"]["last_value"] is None and s["signal_rssi"]["last_seen_at"] is None  # never reported
    fleet = (await api.get("/api/v1/customer/sensors", params={"metric_key": "vibration"})).json()["sensors"]
    assert [(x["device_id"], x["last_value"]) for x in fleet] == [("gw", 0.5)]
