"""The tenant SQL sandbox: only the tenant's rows, only one SELECT, no files, network or settings, bounded."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from pulse.errors import Invalid, PulseError
from pulse.pipelines.sandbox import Limits, devices_table, run_query
from pulse.storage.lake.parquet import part_files, partition_days, write_parquet
from tests.storage.lake.helpers import DAY1, DAY2, msg, rows

LIMITS = Limits(rows=100, seconds=5, memory_mb=256)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """acme: d1 over two days (one file written twice, as a WAL replay does); globex: g1."""
    day1 = rows(msg("d1", DAY1, seq=1, temp=1.0), msg("d1", DAY1 + timedelta(minutes=1), seq=2, temp=3.0))
    write_parquet(tmp_path, day1)
    write_parquet(tmp_path, day1)
    write_parquet(tmp_path, rows(msg("d1", DAY2, seq=3, temp=5.0, hum=40.0)))
    write_parquet(tmp_path, rows(msg("g1", DAY1, tenant="globex", temp=999.0)))
    return tmp_path


def query(lake: Path, sql: str, tenant: str = "acme", limits: Limits = LIMITS, extra: pa.Table | None = None,
          registry: list[dict] | None = None):
    return run_query(lake, tenant, devices_table(registry or [{"device_id": "d1", "site_id": "north"}]), sql,
                     limits, extra)


def test_telemetry_is_the_tenants_rows_without_replay_duplicates(lake: Path) -> None:
    r = query(lake, "SELECT metric, count(*), sum(value) FROM telemetry GROUP BY metric ORDER BY metric")
    assert r.rows == [["hum", 1, 40.0], ["temp", 3, 9.0]]
    assert r.columns == [("metric", "VARCHAR"), ("count_star()", "BIGINT"), ("sum(\"value\")", "DOUBLE")]
    assert query(lake, "SELECT device_id, value FROM telemetry", tenant="globex").rows == [["g1", 999.0]]


def test_unflushed_rows_join_the_files_once(lake: Path) -> None:
    pending = rows(msg("d1", DAY2, seq=3, temp=5.0, hum=40.0), msg("d1", DAY2 + timedelta(hours=1), temp=7.0))
    r = query(lake, "SELECT count(*), max(value) FROM telemetry WHERE metric = 'temp'", extra=pending)
    assert r.rows == [[4, 7.0]]


def test_devices_is_the_registry_snapshot(lake: Path) -> None:
    r = query(lake, "SELECT d.site_id, count(*) FROM telemetry t JOIN devices d USING (device_id) GROUP BY 1")
    assert r.rows == [["north", 4]]
    empty = run_query(lake, "acme", devices_table([]), "SELECT count(*) FROM devices", LIMITS)
    assert empty.rows == [[0]]


def test_rows_stop_at_the_limit(lake: Path) -> None:
    r = query(lake, "SELECT * FROM range(1000000)", limits=Limits(rows=10, seconds=5, memory_mb=256))
    assert len(r.rows) == 10 and r.truncated
    assert not query(lake, "SELECT * FROM range(100)").truncated


def test_another_tenants_rows_and_files_are_out_of_reach(lake: Path) -> None:
    assert query(lake, "SELECT * FROM telemetry WHERE device_id = 'g1' OR value = 999").rows == []
    (globex_file,) = part_files(lake, "globex", partition_days(lake, "globex"))
    for fn in ("read_parquet", "parquet_scan"):
        for path in (globex_file, f"{lake}/**/*.parquet", f"{lake}/telemetry/tenant_id=acme/**/*.parquet"):
            with pytest.raises(PulseError, match="disabled by configuration") as e:
                query(lake, f"SELECT * FROM {fn}('{path}')")
            assert e.value.status_code == 400


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM 'https://example.com/x.parquet'",
    "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')",
    "COPY telemetry TO '{out}/x.csv'",
    "COPY (SELECT 1) TO '{out}/x.csv'",
    "ATTACH '{out}/x.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "RESET lock_configuration",
    "PRAGMA threads = 1",
    "CALL pragma_version()",
    "CREATE TABLE x AS SELECT 1",
    "EXPLAIN ANALYZE SELECT 1",
    "SELECT 1; SELECT 2",
    "SELECT 1; COPY telemetry TO '{out}/x.csv'",
    "SELECT * FROM local_secret_table",  # a Python variable in scope is not a table
    "SELEC 1",
])
def test_anything_but_reading_own_data_is_refused(lake: Path, tmp_path_factory, sql: str) -> None:
    local_secret_table = pa.table({"x": [1]})  # noqa: F841 — what a Python replacement scan would find
    out = tmp_path_factory.mktemp("out")
    with pytest.raises(PulseError) as e:
        query(lake, sql.format(out=out))
    assert e.value.status_code == 400 and e.value.detail
    assert list(out.iterdir()) == []  # nothing was written


def test_a_query_past_its_time_limit_is_interrupted(lake: Path) -> None:
    with pytest.raises(Invalid, match="time limit of 0.5 s"):
        query(lake, "SELECT count(*) FROM range(100000000) a, range(100000) b",
              limits=Limits(rows=10, seconds=0.5, memory_mb=256))


def test_a_query_past_its_memory_limit_fails_cleanly(lake: Path) -> None:
    with pytest.raises(Invalid, match="memory limit of 64 MB"):
        query(lake, "SELECT list(range) FROM range(100000000)", limits=Limits(rows=10, seconds=30, memory_mb=64))


def test_a_huge_answer_within_the_row_limit_is_refused(lake: Path) -> None:
    with pytest.raises(Invalid, match="larger than 16 MB"):
        query(lake, "SELECT repeat('x', 1000000) FROM range(20)")


def test_values_come_back_as_json(lake: Path) -> None:
    r = query(lake, "SELECT 'nan'::DOUBLE, 'inf'::DOUBLE, INTERVAL 90 MINUTE, '\\x01\\x02'::BLOB, 1.25::DECIMAL(5,2), "
                    "TIMESTAMPTZ '2026-03-01 12:00:00+00', DATE '2026-03-01', [1, 2], {'a': 'b'}, MAP {1: 2}")
    assert r.rows == [[None, None, 5400.0, "AQI=", 1.25, "2026-03-01T12:00:00+00:00", "2026-03-01", [1, 2],
                       {"a": "b"}, {"1": 2}]]
