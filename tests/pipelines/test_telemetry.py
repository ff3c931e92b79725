"""Telemetry queries: tenant-scoped, de-duplicated reads of Parquet plus unflushed rows."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pulse.domain.rules import Condition, Rule
from pulse.errors import Invalid
from pulse.pipelines import telemetry
from pulse.pipelines.backtest import readings_frame
from pulse.pipelines.lake_lifecycle import compact_closed_days
from pulse.pipelines.telemetry import LakeReader
from pulse.storage.lake.parquet import part_files, write_parquet
from pulse.storage.lake.row_groups import deduplicated, device_rows
from tests.storage.lake.helpers import DAY1, DAY2, PATH_TRAVERSAL_TENANTS, msg, rows, write_parts


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


POINT_QUERIES = [
    {"start": DAY1, "end": DAY2},
    {"start": DAY1 + timedelta(minutes=10, microseconds=500), "end": DAY1 + timedelta(minutes=20, microseconds=1)},
    {"start": DAY1, "end": DAY2, "metric": "temp", "limit": 7},
    {"start": DAY1, "end": DAY2, "limit": 25, "newest": True},
    {"start": DAY1 + timedelta(minutes=30), "end": DAY2, "metric": "hum", "limit": 3, "newest": True},
]


async def compacted_day(tmp_path: Path) -> Path:
    """Day 1 in three parts with duplicates within and across them (and rows sharing a time, with and
    without seq), plus a part of day 2: the day-1 parts become one compacted file."""
    msgs = [msg(f"d{d}", DAY1 + timedelta(minutes=i), seq=i, temp=float(i), hum=float(d))
            for i in range(60) for d in range(3)]
    same_time = [msg("d9", DAY1 + timedelta(minutes=5), seq=s, temp=float(s or 0)) for s in (2, None, 1)]
    lake = tmp_path / "lake"
    await write_parts(lake, rows(*msgs[:100], *same_time), rows(*msgs[80:], same_time[1]), rows(*msgs[:20]),
                      rows(msg("d1", DAY2, temp=99.0)))
    return lake


async def test_a_compacted_day_answers_history_as_its_parts_did(tmp_path: Path, monkeypatch) -> None:
    lake = await compacted_day(tmp_path)
    reader = LakeReader(lake)
    asked = [(d, i) for d in ("d0", "d1", "d9", "nope") for i in range(len(POINT_QUERIES))]
    before = [reader.history("acme", d, **POINT_QUERIES[i]) for d, i in asked]
    assert not any(deduplicated(f) for f in part_files(lake, "acme", [DAY1.date()]))  # writer parts

    assert compact_closed_days(lake, DAY2.date(), grace_s=0) == 1
    (compacted,) = part_files(lake, "acme", [DAY1.date()])
    assert deduplicated(compacted)
    reads = []
    monkeypatch.setattr(telemetry, "device_rows", lambda *args: reads.append(args) or device_rows(*args))
    assert [reader.history("acme", d, **POINT_QUERIES[i]) for d, i in asked] == before
    assert len(reads) == len(asked)  # every one read the compacted file's row groups, not through DuckDB
    assert [(r["seq"], r["value"]) for r in before[asked.index(("d9", 0))]] == [(None, 0.0), (1, 1.0), (2, 2.0)]


async def test_unflushed_rows_in_a_compacted_day_are_read_and_de_duplicated(tmp_path: Path) -> None:
    lake = await compacted_day(tmp_path)
    compact_closed_days(lake, DAY2.date(), grace_s=0)
    reader = LakeReader(lake)
    stored = reader.history("acme", "d0", start=DAY1, end=DAY2, metric="temp")
    late = msg("d0", DAY1 + timedelta(hours=5), seq=300, temp=-1.0)
    pending = rows(msg("d0", DAY1, seq=0, temp=0.0), late)  # a redelivered stored row and a late one

    got = reader.history("acme", "d0", start=DAY1, end=DAY2, metric="temp", extra=pending)
    assert [r["value"] for r in got] == [r["value"] for r in stored] + [-1.0]
    other_device = rows(msg("d1", DAY1, seq=0, temp=55.0))
    assert reader.history("acme", "d0", start=DAY1, end=DAY2, metric="temp", extra=other_device) == stored


async def test_the_backtest_reads_a_compacted_day_as_its_parts(tmp_path: Path) -> None:
    """The backtest skips de-duplication (and, for one file, the sort) on compacted files only."""
    lake = await compacted_day(tmp_path)
    rule = Rule("r", "acme", "hot", (Condition("temp", "GT", 30),))
    ranges = [(DAY1, DAY2), (DAY1, DAY2 + timedelta(days=1)), (DAY1 + timedelta(minutes=7), DAY1 + timedelta(hours=1))]

    def frames() -> list[list[tuple]]:
        got = [readings_frame(lake, "acme", rule, start, end, devices).rows()
               for start, end in ranges for devices in (None, frozenset({"d1", "d9"}))]
        for frame in got:  # by device, time and metric (rows tied on all three: d9's, in any order)
            assert [r[:3] for r in frame] == sorted(r[:3] for r in frame)
        return [sorted(frame) for frame in got]

    before = frames()
    assert compact_closed_days(lake, DAY2.date(), grace_s=0) == 1
    assert frames() == before
    compact_closed_days(lake, (DAY2 + timedelta(days=2)).date(), grace_s=0)  # day 2 has one part: left as it is
    assert frames() == before
