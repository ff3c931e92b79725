"""Telemetry queries: tenant-scoped, de-duplicated reads of Parquet plus unflushed rows."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pulse.errors import Invalid
from pulse.pipelines.telemetry import LakeReader
from pulse.storage.lake.parquet import write_parquet
from tests.storage.lake.helpers import DAY1, DAY2, PATH_TRAVERSAL_TENANTS, msg, rows


@pytest.mark.parametrize("tenant", PATH_TRAVERSAL_TENANTS)
def test_path_traversal_tenant_ids_are_rejected(tmp_path: Path, tenant: str) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(Invalid):
        LakeReader(lake).history(tenant, "d1")
    with pytest.raises(Invalid):
        LakeReader(lake).recent(tenant, "d1")


def test_missing_lake_reads_as_empty(tmp_path: Path) -> None:
    reader = LakeReader(tmp_path / "nowhere")
    assert reader.history("acme", "d1") == []
    assert reader.recent("acme", "d1") == []


def test_reads_ignore_duplicate_rows(tmp_path: Path) -> None:
    table = rows(msg("d1", DAY1, seq=1, temp=1.0), msg("d1", DAY1 + timedelta(seconds=1), temp=2.0))
    write_parquet(tmp_path, table)
    write_parquet(tmp_path, table)  # a replay after a crash between Parquet write and WAL drop
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", extra=table)] == [1.0, 2.0]
    assert [r["value"] for r in reader.recent("acme", "d1", extra=table)] == [2.0, 1.0]


def test_unflushed_rows_are_visible_through_extra(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0)))
    pending = rows(msg("d1", DAY1 + timedelta(minutes=1), temp=2.0, hum=50.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", metric="temp", extra=pending)] == [1.0, 2.0]
    assert reader.recent("acme", "d1", limit=1, extra=pending)[0]["ts"] == DAY1 + timedelta(minutes=1)
    only_pending = LakeReader(tmp_path / "empty").history("acme", "d1", extra=pending)
    assert [(r["metric"], r["value"]) for r in only_pending] == [("hum", 50.0), ("temp", 2.0)]


def test_reads_never_return_another_tenants_rows(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0), msg("d1", DAY1, tenant="beta", temp=666.0)))
    extra = rows(msg("d1", DAY2, tenant="beta", temp=667.0, secret=1.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", extra=extra)] == [1.0]
    assert [r["value"] for r in reader.recent("acme", "d1", extra=extra)] == [1.0]
    assert [r["value"] for r in reader.history("beta", "d1", extra=extra)] == [666.0, 1.0, 667.0]


def test_history_filters_by_metric_time_range_and_limit(tmp_path: Path) -> None:
    times = [DAY1 + timedelta(hours=h) for h in range(0, 48, 6)]  # 8 points over two days
    write_parquet(tmp_path, rows(*(msg("d1", t, seq=i, temp=float(i), hum=100.0 + i) for i, t in enumerate(times))))
    reader = LakeReader(tmp_path)

    temps = reader.history("acme", "d1", metric="temp", start=times[2], end=times[6])
    assert [(r["ts"], r["value"]) for r in temps] == [(times[i], float(i)) for i in (2, 3, 4, 5)]  # end exclusive
    assert [r["seq"] for r in reader.history("acme", "d1", metric="temp", limit=3)] == [0, 1, 2]
    assert [r["seq"] for r in reader.history("acme", "d1", metric="temp", limit=3, newest=True)] == [5, 6, 7]
    assert {r["metric"] for r in reader.history("acme", "d1")} == {"temp", "hum"}
    naive_start = times[6].replace(tzinfo=None)  # naive means UTC
    assert [r["value"] for r in reader.history("acme", "d1", metric="hum", start=naive_start)] == [106.0, 107.0]
    assert reader.history("acme", "d1", limit=0) == []


def test_history_prunes_date_partitions_outside_the_range(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0), msg("d1", DAY2, temp=2.0)))
    # A file a query reading day 1 would choke on: only partition pruning keeps it unread.
    (tmp_path / "telemetry/tenant_id=acme/date=2026-03-01/part-broken.parquet").write_bytes(b"not parquet")
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", start=DAY2)] == [2.0]
    with pytest.raises(duckdb.Error):
        reader.history("acme", "d1", end=DAY2)


def test_recent_is_newest_first_and_looks_past_the_newest_partitions(tmp_path: Path) -> None:
    # d1 has old data only; newer partitions exist for another device.
    old = [DAY1 + timedelta(minutes=m) for m in range(3)]
    write_parquet(tmp_path, rows(*(msg("d1", t, temp=float(i)) for i, t in enumerate(old))))
    write_parquet(tmp_path, rows(*(msg("other", DAY1 + timedelta(days=d)) for d in range(1, 10))))
    # Unflushed rows older than the newest partition must not hide newer lake rows.
    late = rows(msg("other", DAY1 + timedelta(days=8, hours=1)), msg("other", DAY1, temp=-1.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.recent("acme", "d1", limit=2)] == [2.0, 1.0]
    newest = reader.recent("acme", "other", limit=3, extra=late)
    assert [r["ts"] for r in newest] == [
        DAY1 + timedelta(days=9),
        DAY1 + timedelta(days=8, hours=1),
        DAY1 + timedelta(days=8),
    ]
    assert len(reader.recent("acme", "other", limit=100, extra=late)) == 11
