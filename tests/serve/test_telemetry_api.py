"""Telemetry (actor latest + lake history) and twin routes."""
import asyncio
import json

import pytest

from tests.serve.helpers import T0, send, telemetry, ts

BASE = "/api/v1/customer/devices"
FLEET = "/api/v1/customer/telemetry"


@pytest.fixture
async def device(api):
    assert (await api.post(BASE, json={"device_id": "d1"})).status_code == 201
    return "d1"


async def test_latest_comes_from_the_device_actor(api, device):
    await telemetry(api, device, 0, temp=20.5, hum=40)
    await telemetry(api, device, 10, temp=21.0)
    r = (await api.get(f"{BASE}/d1/telemetry/latest")).json()
    assert r["metrics"]["temp"]["value"] == 21.0 and r["metrics"]["hum"]["value"] == 40.0
    assert r["metrics"]["temp"]["ts"].startswith(ts(10)[:19])


async def test_latest_of_many_devices_in_one_request(api):
    for d in ("d1", "d2", "d3", "d4"):
        assert (await api.post(BASE, json={"device_id": d})).status_code == 201
    await telemetry(api, "d1", 0, temp=20.5, hum=40)
    await telemetry(api, "d1", 10, temp=21.0)
    await telemetry(api, "d2", 5, temp=7.0)
    await api.post(BASE, json={"device_id": "g1"}, tenant="globex")
    await telemetry(api, "g1", 0, tenant="globex", temp=999)
    shards = {api.services.runtime.devices.device_shard("acme", d) for d in ("d1", "d2", "d3", "d4")}
    assert len(shards) == 2  # the answer gathers both device shards

    r = (await api.get(f"{FLEET}/latest")).json()
    assert (r["total"], r["limit"], r["offset"]) == (4, 50, 0)
    assert [d["device_id"] for d in r["devices"]] == ["d1", "d2", "d3", "d4"]
    d1, d2, d3, _ = r["devices"]
    assert (d1["metrics"]["temp"]["value"], d1["metrics"]["hum"]["value"], d2["metrics"]["temp"]["value"]) == (21.0, 40.0, 7.0)
    assert d1["metrics"]["temp"]["ts"].startswith(ts(10)[:19]) and d3["metrics"] == {}

    # narrowed to ids: another tenant's device and unknown ids are left out, as list filters do
    r = (await api.get(f"{FLEET}/latest", params={"device_id": ["d2", "g1", "nope"]})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d2"] and r["total"] == 1
    r = (await api.get(f"{FLEET}/latest", params={"limit": 2, "offset": 2})).json()
    assert [d["device_id"] for d in r["devices"]] == ["d3", "d4"] and r["total"] == 4
    globex = (await api.get(f"{FLEET}/latest", tenant="globex")).json()
    assert [(d["device_id"], d["metrics"]["temp"]["value"]) for d in globex["devices"]] == [("g1", 999.0)]


async def test_latest_of_many_devices_validates_its_parameters(api):
    assert (await api.get(f"{FLEET}/latest", params={"limit": 1001})).status_code == 422
    assert (await api.get(f"{FLEET}/latest", params={"device_id": "bad id"})).status_code == 422
    too_many = [f"d{i}" for i in range(1001)]
    assert (await api.get(f"{FLEET}/latest", params={"device_id": too_many})).status_code == 422


async def test_history_sees_unflushed_and_flushed_rows_without_duplicates(api, device):
    for i in range(5):
        await telemetry(api, device, i * 60, seq=i, temp=20 + i, hum=50)
    r = (await api.get(f"{BASE}/d1/telemetry/history", params={"metric": "temp"})).json()
    assert [p["value"] for p in r["points"]] == [20, 21, 22, 23, 24]  # straight from the WAL buffer
    await api.services.runtime.flush()
    await telemetry(api, device, 0, seq=0, temp=20, hum=50)  # a redelivered duplicate
    r = (await api.get(f"{BASE}/d1/telemetry/history", params={"metric": "temp"})).json()
    assert [p["value"] for p in r["points"]] == [20, 21, 22, 23, 24]
    r = (await api.get(f"{BASE}/d1/telemetry/history",
                       params={"metric": "temp", "start": ts(60), "end": ts(180), "limit": 2})).json()
    assert [p["value"] for p in r["points"]] == [21, 22]
    all_rows = (await api.get(f"{BASE}/d1/telemetry/history")).json()
    assert all_rows["count"] == 10


async def test_history_validates_its_range(api, device):
    r = await api.get(f"{BASE}/d1/telemetry/history", params={"start": ts(100), "end": ts(0)})
    assert r.status_code == 422
    assert (await api.get(f"{BASE}/d1/telemetry/history", params={"start": "tuesday"})).status_code == 422
    assert (await api.get(f"{BASE}/d1/telemetry/history", params={"limit": 0})).status_code == 422


async def test_recent_rows_and_metric_names(api, device):
    await telemetry(api, device, 0, temp=1, hum=2)
    await telemetry(api, device, 5, temp=3)
    r = (await api.get(f"{BASE}/d1/telemetry", params={"limit": 2})).json()
    assert r["count"] == 2 and r["rows"][0]["value"] == 3
    names = (await api.get(f"{BASE}/d1/telemetry/metrics")).json()["metrics"]
    assert sorted(names) == ["hum", "temp"]


async def test_other_tenants_never_see_rows(api, device):
    await api.post(BASE, json={"device_id": "d1"}, tenant="globex")
    await telemetry(api, device, 0, temp=1)
    await telemetry(api, "d1", 0, tenant="globex", temp=999)
    r = (await api.get(f"{BASE}/d1/telemetry/history")).json()
    assert [p["value"] for p in r["points"]] == [1]


async def desired(api, body, version: str = "*", **kw):
    """PATCH …/twin/desired naming the version it changes (If-Match, required)."""
    headers = {**api.headers(), "If-Match": version, **kw.pop("headers", {})}
    return await api.patch(f"{BASE}/d1/twin/desired", json=body, headers=headers, **kw)


async def test_twin_desired_patch_is_versioned_published_retained_and_delta_tracks_reported(api, device, embedded_broker):
    r = await desired(api, {"interval_s": 30, "led": {"color": "red"}}, '"0"')
    assert r.status_code == 200 and r.json()["desired_version"] == 1
    r = await desired(api, {"led": {"color": "blue"}}, r.headers["ETag"])
    assert r.json()["desired_version"] == 2 and r.json()["delta"] == {"interval_s": 30, "led": {"color": "blue"}}
    await api.services.downlink.drain()
    async with embedded_broker.client() as sub:  # a late subscriber gets the retained desired state
        await sub.subscribe("tenant/acme/device/d1/shadow/desired", qos=1)
        msg = await asyncio.wait_for(anext(sub.messages), 5)
        assert json.loads(msg.payload)["version"] == 2 and msg.retain
    await send(api, "acme", "d1", "shadow/reported", {"reported": {"interval_s": 30, "fw": "1.0"}})
    delta = (await api.get(f"{BASE}/d1/twin/delta")).json()
    assert delta["delta"] == {"led": {"color": "blue"}} and delta["reported_version"] == 1
    twin = (await api.get(f"{BASE}/d1/twin")).json()
    assert twin["reported"] == {"interval_s": 30, "fw": "1.0"} and twin["desired_version"] == 2


async def test_wrapped_desired_body_replaces_the_document_and_merge_patch_media_type_merges(api, device):
    await desired(api, {"interval_s": 30, "led": {"color": "red"}})
    r = await desired(api, {"desired": {"led": {"color": "blue"}}})
    assert r.status_code == 200 and r.json()["desired"] == {"led": {"color": "blue"}}  # not stored as a key
    assert r.json()["desired_version"] == 2 and r.headers["ETag"] == '"2"'
    merge = {**api.headers(), "Content-Type": "application/merge-patch+json", "If-Match": '"2"'}
    r = await api.client.patch(f"{BASE}/d1/twin/desired", headers=merge, content=json.dumps({"desired": {"x": 1}}))
    assert r.json()["desired"] == {"led": {"color": "blue"}, "desired": {"x": 1}}
    r = await desired(api, {"desired": {}})  # the wrapped form may clear it
    assert r.status_code == 200 and r.json()["desired"] == {}
    twin = await api.get(f"{BASE}/d1/twin")
    assert twin.json()["desired_version"] == 4 and twin.headers["ETag"] == '"4"'


async def test_twin_desired_needs_the_current_version_in_if_match(api, device):
    r = await api.patch(f"{BASE}/d1/twin/desired", json={"a": 1})
    assert r.status_code == 428 and "If-Match" in r.json()["detail"]
    for bad in ('"abc"', "1.5", '"-1"', "9" * 30):
        r = await desired(api, {"a": 1}, bad)
        assert r.status_code == 400 and "If-Match" in r.json()["detail"], bad
    r = await desired(api, {"a": 1}, 'W/"0"')
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    r = await desired(api, {"a": 2}, '"0"')  # someone else wrote version 1 meanwhile
    assert r.status_code == 409 and "desired_version is 1" in r.json()["detail"]
    assert (await desired(api, {"a": 3}, "1")).json()["desired"] == {"a": 3}
    assert (await api.get(f"{BASE}/d1/twin")).json()["desired_version"] == 2
    r = await api.patch(f"{BASE}/nope/twin/desired", json={"a": 1})  # an unknown device is 404 first
    assert r.status_code == 404


async def test_twin_answers_the_documented_structured_delta_and_sync_status(api, device):
    twin = (await api.get(f"{BASE}/d1/twin")).json()
    assert twin["sync_status"] == "stale" and twin["shadow_updated_at"] is None  # never heard
    await desired(api, {"interval_s": 30, "led": "red", "mode": "eco"})
    await send(api, "acme", "d1", "shadow/reported", {"reported": {"interval_s": 30, "led": "blue", "fw": "1.0"}})
    twin = (await api.get(f"{BASE}/d1/twin")).json()
    assert twin["structured_delta"] == {"added": {"mode": "eco"}, "removed": {"fw": "1.0"},
                                        "changed": {"led": {"desired": "red", "reported": "blue"}},
                                        "unchanged_count": 1}
    assert twin["sync_status"] == "pending" and twin["shadow_updated_at"] is not None
    delta = (await api.get(f"{BASE}/d1/twin/delta")).json()
    assert delta["added"] == {"mode": "eco"} and delta["unchanged_count"] == 1 and not delta["in_sync"]
    await send(api, "acme", "d1", "shadow/reported", {"reported": {"led": "red", "mode": "eco"}})
    twin = (await api.get(f"{BASE}/d1/twin")).json()
    assert twin["sync_status"] == "synced" and twin["structured_delta"]["unchanged_count"] == 3


async def test_twin_desired_rejects_empty_non_object_and_oversized_patches(api, device):
    assert (await desired(api, {})).status_code == 422
    assert (await desired(api, [1, 2])).status_code == 422
    r = await desired(api, {"blob": "x" * 10_000})
    assert r.status_code == 422 and "larger than" in r.json()["detail"]
    assert (await api.get(f"{BASE}/d1/twin")).json()["desired_version"] == 0


async def test_state_survives_a_runtime_restart(api, device):
    from pulse.actors.runtime import LocalRuntime

    await telemetry(api, device, 0, temp=7)
    await desired(api, {"a": 1})
    await api.services.runtime.stop()  # persists snapshots, flushes the lake
    api.services.runtime = LocalRuntime(api.services.settings)
    await api.services.runtime.start()
    assert (await api.get(f"{BASE}/d1/telemetry/latest")).json()["metrics"]["temp"]["value"] == 7
    assert (await api.get(f"{BASE}/d1/twin")).json()["desired"] == {"a": 1}
    assert (await api.get(f"{BASE}/d1/telemetry/history")).json()["count"] == 1


async def test_export_streams_csv_and_parquet_for_a_range(api, device):
    import io

    import pyarrow.parquet as pq

    for i in range(5):
        await telemetry(api, device, i * 60, seq=i, temp=20 + i)
    await api.services.runtime.flush()
    await telemetry(api, device, 300, seq=5, temp=25)  # still in the writer's buffer
    r = await api.get(f"{BASE}/d1/telemetry/export", params={"start": ts(60)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert lines[0] == '"ts","metric","value","seq"' and len(lines) == 1 + 5
    r = await api.get(f"{BASE}/d1/telemetry/export", params={"format": "parquet", "metric": "temp"})
    table = pq.read_table(io.BytesIO(r.content))
    assert table.column("value").to_pylist() == [20, 21, 22, 23, 24, 25]
    empty = await api.get(f"{BASE}/d1/telemetry/export", params={"metric": "nothing"})
    assert empty.text.strip() == "ts,metric,value,seq"
    assert (await api.get(f"{BASE}/d1/telemetry/export", params={"format": "xml"})).status_code == 422
    assert (await api.get(f"{BASE}/d1/telemetry/export", tenant="globex")).status_code == 404


async def test_history_without_a_range_is_the_newest_rows_of_the_last_24_hours(api, device):
    await telemetry(api, device, -2 * 86400 + 600, seq=0, temp=1)  # two days before: outside the default range
    for i in range(1, 6):
        await telemetry(api, device, i * 60, seq=i, temp=10 + i)
    r = (await api.get(f"{BASE}/d1/telemetry/history", params={"metric": "temp", "limit": 3})).json()
    assert [p["value"] for p in r["points"]] == [13, 14, 15]  # the newest three, in time order
    assert r["start"] and r["end"] is None
    r = (await api.get(f"{BASE}/d1/telemetry/history", params={"metric": "temp"})).json()
    assert [p["value"] for p in r["points"]] == [11, 12, 13, 14, 15]
    r = (await api.get(f"{BASE}/d1/telemetry/history", params={"metric": "temp", "end": ts(-86400)})).json()
    assert [p["value"] for p in r["points"]] == [1]  # 24 hours back from `end`


async def test_metric_names_are_the_devices_sensors(api, device):
    """From device_sensors: declared sensors without data yet too, and nothing read from the lake."""
    assert (await api.post(f"{BASE}/d1/sensors", json={"metric_key": "pressure"})).status_code == 201
    await telemetry(api, device, 0, temp=1)
    r = (await api.get(f"{BASE}/d1/telemetry/metrics")).json()
    assert r == {"device_id": "d1", "metrics": ["pressure", "temp"], "total": 2}
    assert (await api.get(f"{BASE}/nope/telemetry/metrics")).status_code == 404
