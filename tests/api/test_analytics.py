"""Analytics over telemetry sent through the ingest pipeline: exact aggregates per bucket, labels per
grouping, tenant isolation, bad bucket sizes and ranges, the CSV export and bucketed device history."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from tests.serve.helpers import send

URL = "/api/v1/customer/analytics"
DEVICES = "/api/v1/customer/devices"
Q = 15 * 60  # the 24h range's default bucket, in seconds
# Two whole 15-minute buckets, A and B, well inside the last 24 hours.
A = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
B = A + timedelta(seconds=Q)
# (tenant, device, seconds after A, temp): d1 and d2 at site s1, d3 without a site.
ROWS = [("acme", "d1", 0, 10.0), ("acme", "d1", 60, 20.0), ("acme", "d1", 120, 30.0), ("acme", "d1", Q, 40.0),
        ("acme", "d2", 30, 50.0), ("acme", "d2", Q + 60, 60.0), ("acme", "d2", Q + 120, 80.0),
        ("acme", "d3", 300, 1.0), ("globex", "d1", 0, 1000.0), ("globex", "g9", 0, 2000.0)]


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@pytest.fixture
async def fleet(api):
    for tenant, device, site in (("acme", "d1", "s1"), ("acme", "d2", "s1"), ("acme", "d3", None),
                                 ("globex", "d1", "s1"), ("globex", "g9", None)):
        r = await api.post(DEVICES, tenant=tenant, json={"device_id": device, "site_id": site})
        assert r.status_code == 201
    for seq, (tenant, device, at, temp) in enumerate(ROWS):
        metrics = {"temp": temp, **({"hum": 5} if device == "d2" else {}), **({"pressure": 1} if tenant == "globex" else {})}
        body = {"version": "1", "ts": (A + timedelta(seconds=at)).isoformat(), "seq": seq, "metrics": metrics}
        await send(api, tenant, device, "telemetry", body)
    await api.services.runtime.flush()
    return api


async def query(api, tenant: str = "acme", **body):
    return await api.post(f"{URL}/query", tenant=tenant, json={"metric": "temp", **body})


def points(answer: dict) -> dict[str, list[tuple[str, float | None]]]:
    return {s["label"]: [(p["time"], p["value"]) for p in s["points"]] for s in answer["series"]}


@pytest.mark.parametrize("aggregation,d1,d2,d3", [
    ("avg", (20.0, 40.0), (50.0, 70.0), 1.0),
    ("min", (10.0, 40.0), (50.0, 60.0), 1.0),
    ("max", (30.0, 40.0), (50.0, 80.0), 1.0),
    ("p95", (29.0, 40.0), (50.0, 79.0), 1.0),
    ("sum", (60.0, 40.0), (50.0, 140.0), 1.0),
    ("count", (3.0, 1.0), (1.0, 2.0), 1.0),
])
async def test_each_aggregation_per_device_and_bucket(fleet, aggregation, d1, d2, d3):
    r = await query(fleet, aggregation=aggregation, group_by="device")
    assert r.status_code == 200, r.text
    got = points(r.json())
    assert got == {"d1": [(iso(A), pytest.approx(d1[0])), (iso(B), pytest.approx(d1[1]))],
                   "d2": [(iso(A), pytest.approx(d2[0])), (iso(B), pytest.approx(d2[1]))],
                   "d3": [(iso(A), pytest.approx(d3))]}


async def test_an_acknowledged_message_counts_before_the_lake_writer_flushes_it(fleet):
    pending = {"version": "1", "ts": (B + timedelta(seconds=60)).isoformat(), "seq": 98, "metrics": {"temp": 50.0}}
    await send(fleet, "acme", "d1", "telemetry", pending)
    got = points((await query(fleet, aggregation="count", group_by="device", device_ids=["d1"])).json())
    assert got == {"d1": [(iso(A), 3.0), (iso(B), 2.0)]}


async def test_summary_over_every_point(fleet):
    r = (await query(fleet, group_by="device")).json()
    assert r["summary"] == {"min": 1.0, "max": 70.0, "avg": 36.2, "total_points": 5}


async def test_group_by_site_none_and_group(fleet):
    by_site = points((await query(fleet, group_by="site")).json())
    assert by_site == {"s1": [(iso(A), 27.5), (iso(B), 60.0)], "unknown": [(iso(A), 1.0)]}
    overall = points((await query(fleet)).json())
    assert overall == {"all": [(iso(A), pytest.approx(22.2)), (iso(B), 60.0)]}
    group = (await fleet.post("/api/v1/customer/device-groups", json={"name": "pair"})).json()["group_id"]
    for device in ("d1", "d3"):
        assert (await fleet.client.put(f"/api/v1/customer/device-groups/{group}/devices/{device}",
                                       headers=fleet.headers())).status_code == 200
    by_group = points((await query(fleet, group_by="group", group_id=group)).json())
    assert by_group == {"d1": [(iso(A), 20.0), (iso(B), 40.0)], "d3": [(iso(A), 1.0)]}
    dynamic = (await fleet.post("/api/v1/customer/device-groups",
                                json={"name": "s1", "query": {"site_id": "s1"}})).json()["group_id"]
    assert points((await query(fleet, group_id=dynamic, aggregation="count")).json()) == {
        "all": [(iso(A), 4.0), (iso(B), 3.0)]}


async def test_device_ids_narrow_the_devices_and_bucket_size_is_parsed(fleet):
    r = (await query(fleet, device_ids=["d2"], bucket_size="1 hour", aggregation="sum")).json()
    assert points(r) == {"all": [(iso(A), 190.0)]}
    r = (await query(fleet, device_ids=["d1"], bucket_size="1m", group_by="device", time_range="6h")).json()
    assert points(r)["d1"] == [(iso(A), 10.0), (iso(A + timedelta(minutes=1)), 20.0),
                              (iso(A + timedelta(minutes=2)), 30.0), (iso(B), 40.0)]


async def test_other_tenants_devices_never_appear_even_when_asked_for(fleet):
    r = (await query(fleet, device_ids=["d1", "g9"], group_by="device", aggregation="max")).json()
    assert points(r) == {"d1": [(iso(A), 30.0), (iso(B), 40.0)]}  # acme's d1, not globex's 1000; no g9
    only_foreign = (await query(fleet, device_ids=["g9"])).json()
    assert only_foreign == {"series": [], "summary": {"min": None, "max": None, "avg": None, "total_points": 0}}
    theirs = points((await query(fleet, tenant="globex", group_by="device")).json())
    assert theirs == {"d1": [(iso(A), 1000.0)], "g9": [(iso(A), 2000.0)]}
    acme_group = (await fleet.post("/api/v1/customer/device-groups", json={"name": "mine"})).json()["group_id"]
    assert (await query(fleet, tenant="globex", group_id=acme_group)).status_code == 404


async def test_metrics_are_the_tenants_own_sorted(fleet):
    assert (await fleet.get(f"{URL}/metrics")).json() == {"metrics": ["hum", "temp"]}
    assert (await fleet.get(f"{URL}/metrics", tenant="globex")).json() == {"metrics": ["pressure", "temp"]}
    assert (await fleet.get(f"{URL}/metrics", role="customer_viewer")).status_code == 200


@pytest.mark.parametrize("body", [
    {"bucket_size": "fortnight"}, {"bucket_size": "5 parsecs"}, {"bucket_size": "1 minute; DROP TABLE devices"},
    {"bucket_size": "0 seconds"}, {"bucket_size": "1 second", "time_range": "30d"}, {"bucket_size": "x" * 41},
    {"time_range": "2h"}, {"aggregation": "median"}, {"group_by": "planet"}, {"metric": ""}, {"metric": "m" * 101},
])
async def test_bad_queries_are_422_with_a_detail(fleet, body):
    r = await query(fleet, **body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


async def test_unknown_group_is_404_and_no_token_is_401(fleet):
    assert (await query(fleet, group_id="grp-nothere")).status_code == 404
    assert (await fleet.client.post(f"{URL}/query", json={"metric": "temp"})).status_code == 401


async def test_export_streams_the_query_as_csv(fleet):
    r = await fleet.get(f"{URL}/export", params={"metric": "temp", "aggregation": "max", "group_by": "bogus",
                                                 "device_ids": "d1, d2,g9"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="analytics_temp_max_24h.csv"'
    assert r.text.splitlines()[0] == "label,time,value"
    got = [(row["label"], datetime.fromisoformat(row["time"]), float(row["value"]))
           for row in csv.DictReader(io.StringIO(r.text))]
    assert got == [("all", A, 50.0), ("all", B, 80.0)]
    by_device = await fleet.get(f"{URL}/export", params={"metric": "temp", "group_by": "device", "time_range": "7d"})
    assert [row["label"] for row in csv.DictReader(io.StringIO(by_device.text))] == ["d1", "d2", "d3"]
    assert "analytics_temp_avg_7d.csv" in by_device.headers["content-disposition"]
    assert (await fleet.get(f"{URL}/export", params={"metric": "temp", "time_range": "1y"})).status_code == 422
    assert (await fleet.get(f"{URL}/export")).status_code == 422
    r = await fleet.get(f"{URL}/export", params={"metric": "temp", "device_ids": "d1,../x"})
    assert r.status_code == 422 and "device_ids" in r.json()["detail"]


async def test_device_history_gains_range_presets_and_buckets(fleet):
    pending = {"version": "1", "ts": (B + timedelta(seconds=300)).isoformat(), "seq": 99, "metrics": {"temp": 46.0}}
    await send(fleet, "acme", "d1", "telemetry", pending)  # not flushed: still counted
    r = await fleet.get(f"{DEVICES}/d1/telemetry/history", params={"metric": "temp", "range": "24h"})
    assert r.status_code == 200, r.text
    h = r.json()
    assert (h["range"], h["bucket_size"], h["precision_digits"], h["count"]) == ("24h", "15 minutes", 2, 2)
    assert h["points"] == [{"time": iso(A), "avg": 20.0, "min": 10.0, "max": 30.0, "count": 3},
                           {"time": iso(B), "avg": 43.0, "min": 40.0, "max": 46.0, "count": 2}]
    hourly = (await fleet.get(f"{DEVICES}/d1/telemetry/history",
                              params={"metric": "temp", "range": "7d", "bucket_size": "1 hour"})).json()
    assert hourly["points"] == [{"time": iso(A), "avg": 29.2, "min": 10.0, "max": 46.0, "count": 5}]
    raw = (await fleet.get(f"{DEVICES}/d1/telemetry/history", params={"metric": "temp"})).json()
    assert raw["count"] == 5 and "value" in raw["points"][0]  # today's raw rows stay the default
    for params in ({"metric": "temp", "range": "2h"}, {"range": "24h"}, {"metric": "temp", "bucket_size": "soon"},
                   {"metric": "temp", "range": "24h", "start": iso(A)}):
        r = await fleet.get(f"{DEVICES}/d1/telemetry/history", params=params)
        assert r.status_code == 422 and r.json()["detail"], params
    assert (await fleet.get(f"{DEVICES}/g9/telemetry/history", params={"metric": "temp", "range": "1h"})).status_code == 404
