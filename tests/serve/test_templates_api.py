"""Device templates and their metrics, commands and slots through the real app and store."""
import pytest

from pulse.domain.command_params import validate_params
from pulse.storage import templates as store

BASE = "/api/v1/customer/templates"
SYSTEM_SLUGS = {"lifeline-gateway-v1", "temperature-probe-pt100", "humidity-sensor-sht3x", "gps-tracker"}
NEW = {
    "name": "Boiler Controller", "category": "controller", "manufacturer": "Acme", "model": "BC-2",
    "firmware_version_pattern": r"^2\.\d+$",
    "transport_defaults": {"ingestion_protocol": "modbus_rtu", "physical_connectivity": "ethernet"},
    "metrics": [{"metric_key": "water_temp", "unit": "°C", "min_value": 0, "max_value": 120, "is_required": True},
                {"metric_key": "mode", "data_type": "enum", "enum_values": ["eco", "boost"]}],
    "commands": [{"command_key": "set_mode", "parameters_schema": {
        "type": "object", "properties": {"mode": {"type": "string", "enum": ["eco", "boost"]}}, "required": ["mode"]}}],
    "slots": [{"slot_key": "bus", "slot_type": "expansion", "interface_type": "rs485", "max_devices": None}],
}


async def system_id(api, slug: str) -> int:
    items = (await api.get(BASE, params={"search": slug})).json()["templates"]
    return next(t["id"] for t in items if t["slug"] == slug)


async def create(api, tenant: str = "acme", **overrides) -> dict:
    r = await api.post(BASE, tenant=tenant, json={**NEW, **overrides})
    assert r.status_code == 201, r.text
    return r.json()


async def test_system_templates_are_seeded_with_metrics_commands_and_slots(api):
    r = (await api.get(BASE)).json()
    assert {t["slug"] for t in r["templates"]} == SYSTEM_SLUGS and r["total"] == 4
    assert all(t["source"] == "system" and t["is_locked"] and t["tenant_id"] is None for t in r["templates"])
    gateway = (await api.get(f"{BASE}/{await system_id(api, 'lifeline-gateway-v1')}")).json()
    assert gateway["name"] == "Lifeline Gateway v1" and gateway["category"] == "gateway"
    rssi = next(m for m in gateway["metrics"] if m["metric_key"] == "signal_rssi")
    assert rssi["unit"] == "dBm" and rssi["min_value"] == -120 and rssi["is_required"] is True
    interval = next(c for c in gateway["commands"] if c["command_key"] == "set_interval")
    assert interval["parameters_schema"]["required"] == ["interval_s"]
    probe_id = await system_id(api, "temperature-probe-pt100")
    analog = next(s for s in gateway["slots"] if s["slot_key"] == "analog_1")
    assert analog["interface_type"] == "analog" and analog["compatible_templates"] == [probe_id]
    assert gateway["transport_defaults"]["ingestion_protocol"] == "mqtt_direct"


async def test_list_filters_and_paginates(api):
    await create(api)
    await create(api, tenant="globex", name="Globex Meter", slug="globex-meter")
    r = (await api.get(BASE)).json()
    assert r["total"] == 5 and "globex-meter" not in {t["slug"] for t in r["templates"]}
    assert [t["slug"] for t in (await api.get(BASE, params={"source": "tenant"})).json()["templates"]] == [
        "boiler-controller"]
    assert {t["slug"] for t in (await api.get(BASE, params={"category": "standalone_sensor"})).json()["templates"]} \
        == {"temperature-probe-pt100", "humidity-sensor-sht3x"}
    assert [t["slug"] for t in (await api.get(BASE, params={"search": "LIFELINE"})).json()["templates"]] == [
        "lifeline-gateway-v1"]
    page1 = (await api.get(BASE, params={"limit": 2})).json()
    page3 = (await api.get(BASE, params={"limit": 2, "offset": 4})).json()
    assert page1["total"] == 5 and len(page1["templates"]) == 2 and len(page3["templates"]) == 1
    assert page3["limit"] == 2 and page3["offset"] == 4
    names = [t["name"] for t in page1["templates"] + (await api.get(BASE, params={"limit": 2, "offset": 2})).json()[
        "templates"] + page3["templates"]]
    assert names == sorted(names)
    assert (await api.get(BASE, params={"category": "toaster"})).status_code == 422
    assert (await api.get(BASE, params={"limit": 0})).status_code == 422


async def test_create_tenant_template_with_its_parts(api):
    t = await create(api)
    assert t["source"] == "tenant" and t["tenant_id"] == "acme" and t["slug"] == "boiler-controller"
    assert t["is_locked"] is False and t["transport_defaults"]["physical_connectivity"] == "ethernet"
    assert [m["metric_key"] for m in t["metrics"]] == ["water_temp", "mode"]
    assert t["commands"][0]["command_key"] == "set_mode" and t["slots"][0]["max_devices"] is None
    assert (await api.get(f"{BASE}/{t['id']}")).json() == t


@pytest.mark.parametrize("body,where", [
    ({"slug": "lifeline-gateway-v1"}, "system slug"),
    ({}, "own slug"),
])
async def test_taken_slugs_are_409(api, body, where):
    await create(api)
    r = await api.post(BASE, json={**NEW, **body})
    assert r.status_code == 409 and "slug" in r.json()["detail"], where


async def test_same_slug_in_another_tenant_is_fine(api):
    await create(api)
    await create(api, tenant="globex")


@pytest.mark.parametrize("body", [
    {"category": "toaster"}, {"name": ""}, {"slug": "Not A Slug"}, {"firmware_version_pattern": "(unclosed"},
    {"transport_defaults": {"ingestion_protocol": "carrier_pigeon"}}, {"transport_defaults": {"physical_connectivity": "wifi"}},
    {"image_url": "ftp://x"},
    {"metrics": [{"metric_key": "a"}, {"metric_key": "a"}]},
    {"metrics": [{"metric_key": "bad key"}]},
    {"metrics": [{"metric_key": "m", "data_type": "enum"}]},
    {"metrics": [{"metric_key": "m", "min_value": 5, "max_value": 1}]},
    {"commands": [{"command_key": "x", "parameters_schema": {"type": "object", "patternProperties": {}}}]},
    {"commands": [{"command_key": "x", "parameters_schema": {"properties": {"a": {"type": "decimal"}}}}]},
    {"slots": [{"slot_key": "s", "slot_type": "expansion", "interface_type": "can"}]},
    {"slots": [{"slot_key": "s", "slot_type": "sensor", "interface_type": "i2c", "compatible_templates": [99999]}]},
    # ids the database cannot hold overflowed the driver (a 500)
    {"slots": [{"slot_key": "s", "slot_type": "sensor", "interface_type": "i2c", "compatible_templates": [2**31]}]},
    {"slots": [{"slot_key": "s", "slot_type": "sensor", "interface_type": "i2c", "compatible_templates": [2**63]}]},
])
async def test_invalid_templates_are_422_and_leave_nothing_behind(api, body):
    r = await api.post(BASE, json={**NEW, **body})
    assert r.status_code == 422 and r.json()["detail"], r.text
    assert (await api.get(BASE, params={"source": "tenant"})).json()["total"] == 0


async def test_update_own_template(api):
    t = await create(api)
    r = await api.request("PUT", f"{BASE}/{t['id']}", json={"name": "Boiler v2", "model": None})
    assert r.status_code == 200 and r.json()["name"] == "Boiler v2" and r.json()["model"] is None
    assert r.json()["manufacturer"] == "Acme" and len(r.json()["metrics"]) == 2
    assert (await api.request("PUT", f"{BASE}/{t['id']}", json={})).status_code == 422
    assert (await api.request("PUT", f"{BASE}/{t['id']}", json={"name": None})).status_code == 422
    other = await create(api, name="Other")
    r = await api.request("PUT", f"{BASE}/{other['id']}", json={"slug": "boiler-controller"})
    assert r.status_code == 409


async def test_system_and_locked_templates_are_read_only(api):
    gateway = await system_id(api, "lifeline-gateway-v1")
    for method, path, body in [("PUT", "", {"name": "Mine"}), ("DELETE", "", None),
                               ("POST", "/metrics", {"metric_key": "x"}), ("DELETE", "/metrics/1", None)]:
        r = await api.request(method, f"{BASE}/{gateway}{path}", json=body)
        assert r.status_code == 403 and "system template" in r.json()["detail"], (method, path)
    t = await create(api, is_locked=True)
    r = await api.request("PUT", f"{BASE}/{t['id']}", json={"name": "x"})
    assert r.status_code == 403 and "locked" in r.json()["detail"]
    metric = t["metrics"][0]["id"]
    for method, path, body in [("POST", "/metrics", {"metric_key": "x"}),
                               ("PUT", f"/metrics/{metric}", {"unit": "K"}), ("DELETE", "", None)]:
        assert (await api.request(method, f"{BASE}/{t['id']}{path}", json=body)).status_code == 403
    r = await api.request("PUT", f"{BASE}/{t['id']}", json={"is_locked": False})
    assert r.status_code == 200 and r.json()["is_locked"] is False
    assert (await api.request("PUT", f"{BASE}/{t['id']}/metrics/{metric}", json={"unit": "K"})).status_code == 200


async def test_delete_is_409_while_a_device_uses_the_template(api):
    t = await create(api)
    await api.post("/api/v1/customer/devices", json={"device_id": "d1", "template_id": t["id"]})
    r = await api.delete(f"{BASE}/{t['id']}")
    assert r.status_code == 409 and "1 device" in r.json()["detail"]
    await api.patch("/api/v1/customer/devices/d1", json={"template_id": None})
    assert (await api.delete(f"{BASE}/{t['id']}")).status_code == 204
    assert (await api.get(f"{BASE}/{t['id']}")).status_code == 404
    assert (await api.delete(f"{BASE}/{t['id']}")).status_code == 404


async def test_clone_makes_an_unlocked_tenant_copy_with_its_parts(api):
    gateway_id = await system_id(api, "lifeline-gateway-v1")
    gateway = (await api.get(f"{BASE}/{gateway_id}")).json()
    r = await api.post(f"{BASE}/{gateway_id}/clone")
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["id"] != gateway_id and copy["slug"] == "lifeline-gateway-v1-copy"
    assert copy["name"] == "Lifeline Gateway v1 (copy)" and copy["metadata"]["cloned_from"] == gateway_id
    assert (copy["source"], copy["tenant_id"], copy["is_locked"]) == ("tenant", "acme", False)
    for kind, key in (("metrics", "metric_key"), ("commands", "command_key"), ("slots", "slot_key")):
        assert [p[key] for p in copy[kind]] == [p[key] for p in gateway[kind]]
        assert {p["id"] for p in copy[kind]}.isdisjoint({p["id"] for p in gateway[kind]})
    assert copy["commands"][0]["parameters_schema"] == gateway["commands"][0]["parameters_schema"]
    again = (await api.post(f"{BASE}/{gateway_id}/clone", json={"name": "Field unit"})).json()
    assert again["slug"] == "lifeline-gateway-v1-copy-2" and again["name"] == "Field unit"
    r = await api.post(f"{BASE}/{gateway_id}/clone", json={"slug": "lifeline-gateway-v1-copy"})
    assert r.status_code == 409
    metric = copy["metrics"][0]["id"]
    r = await api.request("PUT", f"{BASE}/{copy['id']}/metrics/{metric}", json={"max_value": 30})
    assert r.status_code == 200 and r.json()["max_value"] == 30
    original = (await api.get(f"{BASE}/{gateway_id}")).json()["metrics"][0]
    assert original["max_value"] == gateway["metrics"][0]["max_value"]


async def test_metric_sub_resource(api):
    t = await create(api)
    url = f"{BASE}/{t['id']}/metrics"
    r = await api.post(url, json={"metric_key": "pressure", "unit": "bar", "min_value": 0, "max_value": 10,
                                  "precision_digits": 2})
    assert r.status_code == 201 and r.json()["data_type"] == "float" and r.json()["template_id"] == t["id"]
    pressure = r.json()["id"]
    assert (await api.post(url, json={"metric_key": "pressure"})).status_code == 409
    assert (await api.request("PUT", f"{url}/{pressure}", json={"metric_key": "water_temp"})).status_code == 409
    r = await api.request("PUT", f"{url}/{pressure}", json={"min_value": 20})
    assert r.status_code == 422 and "min_value" in r.json()["detail"]
    assert (await api.request("PUT", f"{url}/{pressure}", json={"data_type": "enum"})).status_code == 422
    r = await api.request("PUT", f"{url}/{pressure}", json={"display_name": "Pressure", "max_value": 16})
    assert r.status_code == 200 and (r.json()["display_name"], r.json()["max_value"]) == ("Pressure", 16)
    assert (await api.get(f"{BASE}/{t['id']}")).json()["updated_at"] >= t["updated_at"]
    other = await create(api, name="Other")
    assert (await api.request("PUT", f"{BASE}/{other['id']}/metrics/{pressure}", json={"unit": "x"})).status_code == 404
    assert (await api.delete(f"{url}/{pressure}")).status_code == 204
    assert (await api.delete(f"{url}/{pressure}")).status_code == 404
    assert "pressure" not in {m["metric_key"] for m in (await api.get(f"{BASE}/{t['id']}")).json()["metrics"]}


async def test_command_sub_resource_keeps_to_the_schema_subset(api):
    t = await create(api)
    url = f"{BASE}/{t['id']}/commands"
    schema = {"type": "object", "properties": {"interval_s": {"type": "integer", "minimum": 10}},
              "required": ["interval_s"], "additionalProperties": False}
    r = await api.post(url, json={"command_key": "set_interval", "display_name": "Interval", "parameters_schema": schema})
    assert r.status_code == 201 and r.json()["parameters_schema"] == schema
    cid = r.json()["id"]
    assert (await api.post(url, json={"command_key": "set_interval"})).status_code == 409
    r = await api.request("PUT", f"{url}/{cid}", json={"parameters_schema": {"type": "object", "oneOf": []}})
    assert r.status_code == 422 and "oneOf" in r.json()["detail"]
    r = await api.request("PUT", f"{url}/{cid}", json={"parameters_schema": {"type": "object"}})
    assert r.status_code == 200 and r.json()["parameters_schema"] == {"type": "object"}
    assert (await api.delete(f"{url}/{cid}")).status_code == 204


async def test_slot_sub_resource(api):
    t = await create(api)
    probe = await system_id(api, "temperature-probe-pt100")
    url = f"{BASE}/{t['id']}/slots"
    r = await api.post(url, json={"slot_key": "ain1", "slot_type": "sensor", "interface_type": "analog",
                                  "compatible_templates": [probe]})
    assert r.status_code == 201 and r.json()["max_devices"] == 1 and r.json()["compatible_templates"] == [probe]
    sid = r.json()["id"]
    assert (await api.post(url, json={"slot_key": "ain1", "slot_type": "sensor", "interface_type": "analog"})).status_code == 409
    globex = await create(api, tenant="globex")
    r = await api.request("PUT", f"{url}/{sid}", json={"compatible_templates": [globex["id"]]})
    assert r.status_code == 422
    r = await api.request("PUT", f"{url}/{sid}", json={"interface_type": "1-wire", "max_devices": 4})
    assert r.status_code == 200 and (r.json()["interface_type"], r.json()["max_devices"]) == ("1-wire", 4)
    assert (await api.delete(f"{url}/{sid}")).status_code == 204


@pytest.mark.parametrize("method,path,body", [
    ("GET", "", None), ("PUT", "", {"name": "x"}), ("DELETE", "", None), ("POST", "/clone", None),
    ("POST", "/metrics", {"metric_key": "x"}), ("PUT", "/metrics/{metric}", {"unit": "x"}),
    ("DELETE", "/metrics/{metric}", None), ("POST", "/commands", {"command_key": "x"}),
    ("POST", "/slots", {"slot_key": "x", "slot_type": "sensor", "interface_type": "gpio"}),
])
async def test_another_tenants_template_is_404(api, method, path, body):
    t = await create(api)
    r = await api.request(method, f"{BASE}/{t['id']}{path.format(metric=t['metrics'][0]['id'])}", tenant="globex",
                          json=body)
    assert r.status_code == 404, (method, path, r.text)
    assert (await api.get(f"{BASE}/{t['id']}")).json() == t


@pytest.mark.parametrize("method,path,body", [
    ("POST", "", NEW), ("PUT", "/{id}", {"name": "x"}), ("DELETE", "/{id}", None), ("POST", "/{id}/clone", None),
    ("POST", "/{id}/metrics", {"metric_key": "x"}), ("PUT", "/{id}/metrics/{metric}", {"unit": "x"}),
    ("DELETE", "/{id}/metrics/{metric}", None), ("POST", "/{id}/commands", {"command_key": "x"}),
    ("PUT", "/{id}/commands/{command}", {"display_name": "x"}), ("DELETE", "/{id}/commands/{command}", None),
    ("POST", "/{id}/slots", {"slot_key": "x", "slot_type": "sensor", "interface_type": "gpio"}),
    ("PUT", "/{id}/slots/{slot}", {"max_devices": 2}), ("DELETE", "/{id}/slots/{slot}", None),
])
async def test_viewers_can_read_but_not_write_templates(api, method, path, body):
    t = await create(api)
    ids = {"id": t["id"], "metric": t["metrics"][0]["id"], "command": t["commands"][0]["id"], "slot": t["slots"][0]["id"]}
    r = await api.request(method, BASE + path.format(**ids), role="customer_viewer", json=body)
    assert r.status_code == 403 and "templates.write" in r.json()["detail"]
    assert (await api.get(f"{BASE}/{t['id']}", role="customer_viewer")).json() == t


async def test_command_definition_and_param_validation(api):
    db = api.services.db
    gateway = await system_id(api, "lifeline-gateway-v1")
    definition = await store.command_definition(db, "acme", gateway, "set_interval")
    assert definition["command_key"] == "set_interval"
    schema = definition["parameters_schema"]
    assert validate_params(schema, {"interval_s": 60}) == []
    assert validate_params(schema, {"interval_s": 60.0}) == []
    assert validate_params(schema, {}) == ["interval_s: required"]
    assert validate_params(schema, {"interval_s": 1}) == ["interval_s: must be >= 10"]
    assert validate_params(schema, {"interval_s": "60"}) == ["interval_s: expected integer"]
    assert validate_params(schema, {"interval_s": True}) == ["interval_s: expected integer"]
    assert validate_params(schema, {"interval_s": 60, "x": 1}) == ["x: not allowed"]
    assert await store.command_definition(db, "acme", gateway, "self_destruct") is None
    own = await create(api, tenant="globex")
    assert await store.command_definition(db, "acme", own["id"], "set_mode") is None
    assert (await store.command_definition(db, "globex", own["id"], "set_mode"))["command_key"] == "set_mode"
