"""Templates wired into devices: required sensors, command validation, sensor metadata in history,
out-of-range flags and auto-discovered (unmodeled) sensors."""
from tests.serve.helpers import telemetry

DEV = "/api/v1/customer/devices"


async def template_id(api, name: str) -> int:
    templates = (await api.get("/api/v1/customer/templates", params={"search": name})).json()["templates"]
    return templates[0]["id"]


async def sensors(api, device: str) -> dict[str, str]:
    items = (await api.get(f"{DEV}/{device}/sensors")).json()["sensors"]
    return {s["metric_key"]: s["source"] for s in items}


async def test_creating_or_retemplating_a_device_adds_required_sensors(api):
    probe = await template_id(api, "PT100")
    r = await api.post(DEV, json={"device_id": "d1", "template_id": probe})
    assert r.status_code == 201, r.text
    assert await sensors(api, "d1") == {"temperature": "required"}
    gps = await template_id(api, "GPS")
    assert (await api.patch(f"{DEV}/d1", json={"template_id": gps})).status_code == 200
    s = await sensors(api, "d1")
    assert s["latitude"] == s["longitude"] == s["battery_pct"] == "required" and "temperature" in s
    assert (await api.post(DEV, json={"device_id": "d2", "template_id": 99999})).status_code == 422
    assert (await api.get(f"{DEV}/d2")).status_code == 404  # nothing half-written


async def test_commands_are_validated_against_the_template(api):
    await api.post(DEV, json={"device_id": "d1", "template_id": await template_id(api, "PT100")})
    ok = await api.post(f"{DEV}/d1/commands", json={"type": "set_interval", "params": {"interval_s": 300}})
    assert ok.status_code == 201
    r = await api.post(f"{DEV}/d1/commands", json={"type": "set_interval", "params": {"interval_s": 5}})
    assert r.status_code == 422 and "interval_s" in r.json()["detail"]
    r = await api.post(f"{DEV}/d1/commands", json={"type": "self_destruct"})
    assert r.status_code == 422 and "no command" in r.json()["detail"]


async def test_history_carries_sensor_metadata_and_flags_out_of_range_values(api):
    await api.post(DEV, json={"device_id": "d1", "template_id": await template_id(api, "PT100")})
    await telemetry(api, "d1", 0, temperature=21.5)
    await telemetry(api, "d1", 60, temperature=300.0)  # above the probe's 250 °C: stored, flagged
    r = (await api.get(f"{DEV}/d1/telemetry/history", params={"metric": "temperature"})).json()
    assert [(p["value"], p["out_of_range"]) for p in r["points"]] == [(21.5, False), (300.0, True)]
    meta = r["sensors"]["temperature"]
    assert meta["min_range"] == -50 and meta["max_range"] == 250 and "unit" in meta and "precision_digits" in meta


async def test_metrics_seen_in_telemetry_but_not_modelled_appear_as_unmodeled_sensors(api):
    await api.post(DEV, json={"device_id": "d1", "template_id": await template_id(api, "PT100")})
    await telemetry(api, "d1", 0, temperature=20, vibration=0.3)
    await telemetry(api, "d1", 10, vibration=0.4)
    assert await sensors(api, "d1") == {"temperature": "required", "vibration": "unmodeled"}
