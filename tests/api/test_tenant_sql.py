"""Tenant SQL over HTTP (POST /api/v1/customer/analytics/sql): telemetry written through ingest, the registry snapshot, limits and refusals."""
from __future__ import annotations

import asyncio

import pytest

from tests.serve.helpers import telemetry

SQL = "/api/v1/customer/analytics/sql"
DEVICES = "/api/v1/customer/devices"


@pytest.fixture
async def fleet(api):
    """acme: d1 (site north) and d2 (site south) with temps; globex: its own g1, flushed to Parquet."""
    for device, site in (("d1", "north"), ("d2", "south")):
        assert (await api.post(DEVICES, json={"device_id": device, "site_id": site})).status_code == 201
    assert (await api.post(DEVICES, json={"device_id": "g1"}, tenant="globex")).status_code == 201
    for i in range(4):
        await telemetry(api, "d1", i * 60, seq=i, temp=20 + i, hum=50)
        await telemetry(api, "d2", i * 60, seq=i, temp=10 + i)
    await telemetry(api, "g1", 0, tenant="globex", temp=999)
    await api.services.runtime.flush()
    await telemetry(api, "d1", 0, seq=0, temp=20, hum=50)  # a redelivered duplicate, flushed again
    await api.services.runtime.flush()
    return api


async def query(api, sql: str, **kw):
    return await api.post(SQL, json={"sql": sql, **kw})


async def test_aggregates_over_the_tenants_telemetry(fleet):
    r = await query(fleet, "SELECT device_id, count(*) AS n, avg(value) AS mean, max(ts) AS last "
                           "FROM telemetry WHERE metric = 'temp' GROUP BY device_id ORDER BY device_id")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [c["name"] for c in body["columns"]] == ["device_id", "n", "mean", "last"]
    assert body["columns"][1]["type"] == "BIGINT" and body["columns"][3]["type"] == "TIMESTAMP WITH TIME ZONE"
    assert [row[:3] for row in body["rows"]] == [["d1", 4, 21.5], ["d2", 4, 11.5]]  # the duplicate counted once
    assert body["row_count"] == 2 and body["truncated"] is False and body["elapsed_ms"] >= 0


async def test_join_with_the_device_registry(fleet):
    r = await query(fleet, "WITH t AS (SELECT device_id, value FROM telemetry WHERE metric = 'temp') "
                           "SELECT d.site_id, sum(t.value) FROM t JOIN devices d USING (device_id) "
                           "GROUP BY d.site_id ORDER BY d.site_id")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["north", 86.0], ["south", 46.0]]


async def test_rows_stop_at_the_limit_and_say_so(fleet):
    r = (await query(fleet, "SELECT * FROM telemetry ORDER BY ts, device_id, metric", limit=3)).json()
    assert r["row_count"] == 3 and r["truncated"] is True
    assert (await query(fleet, "SELECT 1", limit=10_001)).status_code == 422
    assert (await query(fleet, "SELECT 1", limit=0)).status_code == 422


async def test_another_tenants_devices_are_not_there(fleet):
    for sql in ("SELECT * FROM telemetry WHERE device_id = 'g1'", "SELECT * FROM devices WHERE device_id = 'g1'",
                "SELECT * FROM telemetry WHERE value = 999"):
        r = await query(fleet, sql)
        assert r.status_code == 200 and r.json()["rows"] == [], sql
    globex = (await fleet.post(SQL, json={"sql": "SELECT device_id, value FROM telemetry"}, tenant="globex")).json()
    assert globex["rows"] == [["g1", 999.0]]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY telemetry TO '/tmp/x.csv'",
    "ATTACH '/tmp/x.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads=1",
    "SELECT * FROM telemetry; SELECT * FROM devices",
    "SELECT * FROM parquet_scan('/etc/hosts')",
    "DROP VIEW telemetry",
    "SELEC * FROM telemetry",
])
async def test_what_is_not_a_read_of_own_data_is_refused(fleet, sql):
    r = await query(fleet, sql)
    assert r.status_code == 400 and r.json()["detail"], (sql, r.text)


async def test_a_glob_over_the_lake_root_is_refused(fleet):
    root = fleet.services.lake.lake_dir
    for fn in ("read_parquet", "parquet_scan"):
        r = await query(fleet, f"SELECT * FROM {fn}('{root}/**/*.parquet')")
        assert r.status_code == 400 and "disabled" in r.json()["detail"], r.text


async def test_a_query_past_the_time_limit_is_stopped(fleet):
    fleet.services.settings.tenant_sql_timeout_s = 0.5
    r = await query(fleet, "SELECT count(*) FROM range(100000000) a, range(100000) b")
    assert r.status_code == 422 and "time limit" in r.json()["detail"]


async def test_a_viewer_may_query_and_a_body_is_bounded(fleet):
    r = await fleet.post(SQL, json={"sql": "SELECT count(*) FROM devices"}, role="customer_viewer")
    assert r.status_code == 200 and r.json()["rows"] == [[2]]
    assert (await query(fleet, "SELECT 1" + " " * 20_000)).status_code == 422
    assert (await query(fleet, "")).status_code == 422


async def test_rows_not_yet_flushed_are_counted(fleet):
    await telemetry(fleet, "d2", 600, seq=9, temp=99)  # acknowledged, still in the lake writer's buffer
    await telemetry(fleet, "g1", 600, tenant="globex", temp=5)
    r = (await query(fleet, "SELECT device_id, count(*), max(value) FROM telemetry WHERE metric = 'temp' "
                            "GROUP BY device_id ORDER BY device_id")).json()
    assert r["rows"] == [["d1", 4, 23.0], ["d2", 5, 99.0]]


async def test_queries_past_the_concurrency_are_refused_not_queued(fleet):
    fleet.services.settings.tenant_sql_timeout_s = 1.0  # two slots (the default): a third query is refused
    slow = "SELECT count(*) FROM range(100000000) a, range(100000) b"
    answers = await asyncio.gather(*(query(fleet, slow) for _ in range(3)))
    assert sorted(r.status_code for r in answers) == [422, 422, 429]
    assert (await query(fleet, "SELECT 1")).json()["rows"] == [[1]]  # the slots are free again
