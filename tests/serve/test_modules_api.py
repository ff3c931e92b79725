"""Device modules in template slots through the real app and store."""
import pytest

from pulse.storage import modules
from tests.serve.helpers import telemetry

DEVICES = "/api/v1/customer/devices"
TEMPLATES = "/api/v1/customer/templates"


async def template_id(api, slug: str) -> int:
    items = (await api.get(TEMPLATES, params={"search": slug})).json()["templates"]
    return next(t["id"] for t in items if t["slug"] == slug)


async def gateway(api, device_id: str = "gw", tenant: str = "acme") -> None:
    """A device on the Lifeline Gateway template: slots rs485 (32), analog_1/2 (1, probe only), i2c (8, SHT3x)."""
    body = {"device_id": device_id, "template_id": await template_id(api, "lifeline-gateway-v1")}
    assert (await api.post(DEVICES, tenant=tenant, json=body)).status_code == 201


async def add(api, device_id: str = "gw", **body):
    return await api.post(f"{DEVICES}/{device_id}/modules", json=body)


async def test_install_list_update_a_module(api):
    await gateway(api)
    probe = await template_id(api, "temperature-probe-pt100")
    r = await add(api, slot_key="analog_1", module_template_id=probe, label="Tank probe", serial_number="TP-9",
                  metric_key_map={"ain1": "tank_temp"})
    assert r.status_code == 201, r.text
    m = r.json()
    assert (m["status"], m["slot_key"], m["metric_key_map"], m["device_id"]) == (
        "active", "analog_1", {"ain1": "tank_temp"}, "gw")
    await add(api, slot_key="rs485", bus_address="7")
    listed = (await api.get(f"{DEVICES}/gw/modules")).json()
    assert listed["total"] == 2 and [x["slot_key"] for x in listed["modules"]] == ["analog_1", "rs485"]
    r = await api.request("PUT", f"{DEVICES}/gw/modules/{m['id']}", json={"label": "Boiler probe", "status": "inactive"})
    assert r.status_code == 200 and (r.json()["label"], r.json()["status"]) == ("Boiler probe", "inactive")
    assert r.json()["serial_number"] == "TP-9"
    assert (await api.request("PUT", f"{DEVICES}/gw/modules/{m['id']}", json={})).status_code == 422
    assert (await api.request("PUT", f"{DEVICES}/gw/modules/{m['id']}", json={"status": "removed"})).status_code == 422


async def test_modules_must_fit_the_slots_of_the_device_template(api):
    await gateway(api)
    probe, humidity = await template_id(api, "temperature-probe-pt100"), await template_id(api, "humidity-sensor-sht3x")
    r = await add(api, slot_key="can_bus")
    assert r.status_code == 422 and "not a slot" in r.json()["detail"]
    r = await add(api, slot_key="analog_1", module_template_id=humidity)
    assert r.status_code == 422 and "not compatible" in r.json()["detail"]
    r = await add(api, slot_key="rs485", module_template_id=99999)
    assert r.status_code == 422 and "no such template" in r.json()["detail"]
    assert (await add(api, slot_key="analog_1", module_template_id=probe)).status_code == 201
    r = await add(api, slot_key="analog_1", module_template_id=probe)
    assert r.status_code == 409 and "at most 1" in r.json()["detail"]
    assert (await add(api, slot_key="i2c", bus_address="0x44", module_template_id=humidity)).status_code == 201
    r = await add(api, slot_key="i2c", bus_address="0x44")
    assert r.status_code == 409 and "0x44" in r.json()["detail"]
    assert (await add(api, slot_key="i2c", bus_address="0x45")).status_code == 201


async def test_a_device_without_template_takes_any_slot(api):
    assert (await api.post(DEVICES, json={"device_id": "plain"})).status_code == 201
    r = await add(api, "plain", slot_key="whatever", bus_address="1")
    assert r.status_code == 201 and r.json()["module_template_id"] is None


async def test_metric_key_maps_must_not_clash_and_merge_for_ingest(api):
    await gateway(api)
    await add(api, slot_key="rs485", bus_address="1", metric_key_map={"t": "inlet_temp", "p": "inlet_pressure"})
    r = await add(api, slot_key="rs485", bus_address="2", metric_key_map={"t": "outlet_temp"})
    assert r.status_code == 409 and "t" in r.json()["detail"]
    r = await add(api, slot_key="rs485", bus_address="2", metric_key_map={"t2": "inlet_temp"})
    assert r.status_code == 409 and "inlet_temp" in r.json()["detail"]
    r = await add(api, slot_key="rs485", bus_address="2", metric_key_map={"t2": "outlet_temp"})
    assert r.status_code == 201
    second = r.json()["id"]
    assert (await add(api, slot_key="rs485", metric_key_map={"bad key": "x"})).status_code == 422
    mapping = await modules.metric_key_map(api.services.db, "acme", "gw")
    assert mapping == {"t": "inlet_temp", "p": "inlet_pressure", "t2": "outlet_temp"}
    await api.request("PUT", f"{DEVICES}/gw/modules/{second}", json={"status": "inactive"})
    assert "t2" not in await modules.metric_key_map(api.services.db, "acme", "gw")


async def test_delete_is_soft_and_deactivates_linked_sensors(api):
    await gateway(api)
    m = (await add(api, slot_key="analog_1", label="probe")).json()
    sensor = (await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "tank_temp", "device_module_id": m["id"]})).json()
    other = (await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "flow"})).json()
    assert (await api.delete(f"{DEVICES}/gw/modules/{m['id']}")).status_code == 204
    assert (await api.get(f"{DEVICES}/gw/modules")).json()["total"] == 0
    removed = (await api.get(f"{DEVICES}/gw/modules", params={"status": "removed"})).json()["modules"]
    assert [(x["id"], x["status"]) for x in removed] == [(m["id"], "removed")]
    sensors = {s["id"]: s for s in (await api.get(f"{DEVICES}/gw/sensors")).json()["sensors"]}
    assert sensors[sensor["id"]]["status"] == "inactive" and sensors[other["id"]]["status"] == "active"
    assert (await api.delete(f"{DEVICES}/gw/modules/{m['id']}")).status_code == 409
    assert (await api.request("PUT", f"{DEVICES}/gw/modules/{m['id']}", json={"label": "x"})).status_code == 409
    assert (await add(api, slot_key="analog_1")).status_code == 201  # the slot is free again
    r = await api.post(f"{DEVICES}/gw/sensors", json={"metric_key": "t2", "device_module_id": m["id"]})
    assert r.status_code == 422


async def test_a_template_in_use_by_a_module_cannot_be_deleted(api):
    await gateway(api)
    own = (await api.post(TEMPLATES, json={"name": "Relay board", "category": "expansion_module"})).json()
    m = (await add(api, slot_key="rs485", module_template_id=own["id"])).json()
    r = await api.delete(f"{TEMPLATES}/{own['id']}")
    assert r.status_code == 409 and "1 module" in r.json()["detail"]
    await api.delete(f"{DEVICES}/gw/modules/{m['id']}")
    assert (await api.delete(f"{TEMPLATES}/{own['id']}")).status_code == 204
    removed = (await api.get(f"{DEVICES}/gw/modules", params={"status": "removed"})).json()["modules"]
    assert removed[0]["module_template_id"] is None


async def test_modules_of_a_deleted_device_go_with_it(api):
    await gateway(api)
    await add(api, slot_key="rs485")
    assert (await api.delete(f"{DEVICES}/gw")).status_code == 200
    await gateway(api)
    assert (await api.get(f"{DEVICES}/gw/modules")).json()["total"] == 0


@pytest.mark.parametrize("method,path,body", [
    ("GET", "", None), ("POST", "", {"slot_key": "rs485"}), ("PUT", "/{mid}", {"label": "x"}), ("DELETE", "/{mid}", None),
])
async def test_another_tenants_modules_are_404(api, method, path, body):
    await gateway(api)
    mid = (await add(api, slot_key="rs485")).json()["id"]
    r = await api.request(method, f"{DEVICES}/gw/modules{path.format(mid=mid)}", tenant="globex", json=body)
    assert r.status_code == 404, r.text
    assert (await api.get(f"{DEVICES}/gw/modules")).json()["modules"][0]["status"] == "active"


@pytest.mark.parametrize("method,path,body", [
    ("POST", "", {"slot_key": "rs485"}), ("PUT", "/{mid}", {"label": "x"}), ("DELETE", "/{mid}", None),
])
async def test_viewers_cannot_change_modules(api, method, path, body):
    await gateway(api)
    mid = (await add(api, slot_key="rs485")).json()["id"]
    r = await api.request(method, f"{DEVICES}/gw/modules{path.format(mid=mid)}", role="customer_viewer", json=body)
    assert r.status_code == 403 and "devices.update" in r.json()["detail"]
    assert (await api.get(f"{DEVICES}/gw/modules", role="customer_viewer")).json()["total"] == 1


async def test_module_list_paginates(api):
    await gateway(api)
    for i in range(5):
        await add(api, slot_key="rs485", bus_address=str(i))
    r = (await api.get(f"{DEVICES}/gw/modules", params={"limit": 2, "offset": 4})).json()
    assert r["total"] == 5 and [m["bus_address"] for m in r["modules"]] == ["4"]
    assert (await api.get(f"{DEVICES}/gw/modules", params={"status": "gone"})).status_code == 422


async def test_ingest_applies_the_key_map_as_soon_as_a_module_changes(api):
    await gateway(api)
    await telemetry(api, "gw", 0, t=1.0)  # the device actor is in memory before the module is installed
    r = await add(api, slot_key="rs485", bus_address="1", metric_key_map={"t": "inlet_temp"})
    assert r.status_code == 201
    await telemetry(api, "gw", 10, t=20.5)
    latest = (await api.get(f"{DEVICES}/gw/telemetry/latest")).json()
    assert latest["metrics"]["inlet_temp"]["value"] == 20.5 and latest["metrics"]["t"]["value"] == 1.0
    assert (await api.delete(f"{DEVICES}/gw/modules/{r.json()['id']}")).status_code == 204
    await telemetry(api, "gw", 20, t=3.0)
    latest = (await api.get(f"{DEVICES}/gw/telemetry/latest")).json()
    assert (latest["metrics"]["t"]["value"], latest["metrics"]["inlet_temp"]["value"]) == (3.0, 20.5)
