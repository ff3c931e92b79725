"""The one bucketing pipeline: per label and bucket aggregates, de-duplicated, one tenant's rows only."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

import pulse.pipelines.analytics as analytics
from pulse.domain.analytics import bucket_for, bucket_text, parse_bucket
from pulse.errors import Invalid
from pulse.pipelines.analytics import csv_lines, metric_names, rollup
from pulse.pipelines.lake_lifecycle import compact_closed_days
from pulse.storage.lake.parquet import write_parquet
from tests.storage.lake.helpers import DAY1, DAY2, msg, rows, same_buckets, write_parts

ALL = ("avg", "min", "max", "p95", "sum", "count")
M = timedelta(minutes=1)


@pytest.fixture
def lake(tmp_path: Path) -> str:
    """d1: 1..4 in minute 0 and 10 in minute 1; d2: 100 in minute 0; globex's d1: 1000 in minute 0."""
    write_parquet(tmp_path, rows(*(msg("d1", DAY1 + i * timedelta(seconds=10), seq=i, temp=float(i + 1))
                                   for i in range(4)),
                                 msg("d1", DAY1 + M, seq=9, temp=10.0),
                                 msg("d2", DAY1 + timedelta(seconds=5), seq=1, temp=100.0, hum=5.0),
                                 msg("d1", DAY1, tenant="globex", seq=1, temp=1000.0)))
    return str(tmp_path)


def test_each_aggregation_per_device_and_bucket(lake: str) -> None:
    out = rollup(lake, "acme", "temp", {"d1": "d1", "d2": "d2"}, DAY1, DAY1 + 2 * M, M, ALL)
    assert out == [
        ("d1", DAY1, (2.5, 1.0, 4.0, pytest.approx(3.85), 10.0, 4)),
        ("d1", DAY1 + M, (10.0, 10.0, 10.0, 10.0, 10.0, 1)),
        ("d2", DAY1, (100.0, 100.0, 100.0, 100.0, 100.0, 1)),
    ]


def test_devices_sharing_a_label_aggregate_together_and_unlabelled_devices_are_not_read(lake: str) -> None:
    both = rollup(lake, "acme", "temp", {"d1": "all", "d2": "all"}, DAY1, DAY1 + M, M, ("avg", "count"))
    assert both == [("all", DAY1, (pytest.approx(22.0), 5))]
    only_d2 = rollup(lake, "acme", "temp", {"d2": "d2"}, DAY1, DAY1 + 2 * M, M, ("count",))
    assert only_d2 == [("d2", DAY1, (1,))]


def test_other_tenants_rows_and_the_end_of_the_range_are_excluded(lake: str) -> None:
    out = rollup(lake, "acme", "temp", {"d1": "d1"}, DAY1, DAY1 + M, timedelta(hours=1), ("max",))
    assert out == [("d1", DAY1, (4.0,))]  # not globex's 1000, not minute 1's 10
    assert rollup(lake, "globex", "temp", {"d1": "d1"}, DAY1, DAY1 + M, M, ("max",)) == [("d1", DAY1, (1000.0,))]


def test_duplicates_from_a_replay_and_unflushed_rows(lake: str) -> None:
    replay = rows(msg("d1", DAY1 + timedelta(seconds=10), seq=1, temp=2.0))
    write_parquet(lake, replay)
    pending = rows(msg("d1", DAY1 + timedelta(seconds=50), seq=5, temp=5.0))
    out = rollup(lake, "acme", "temp", {"d1": "d1"}, DAY1, DAY1 + M, M, ("sum", "count"), extra=pending)
    assert out == [("d1", DAY1, (15.0, 5))]


def test_metric_names_of_a_tenant_in_a_window(lake: str) -> None:
    assert metric_names(lake, "acme", DAY1, DAY1 + M) == ["hum", "temp"]
    assert metric_names(lake, "acme", DAY1 + M, DAY1 + 2 * M) == ["temp"]
    assert metric_names(lake, "nobody", DAY1, DAY1 + M) == []


@pytest.mark.parametrize("text,expected", [("5 minutes", timedelta(minutes=5)), ("1 hour", timedelta(hours=1)),
                                           ("30s", timedelta(seconds=30)), ("2 HOURS", timedelta(hours=2)),
                                           ("1day", timedelta(days=1)), (" 15 min ", timedelta(minutes=15))])
def test_bucket_sizes_parse(text: str, expected: timedelta) -> None:
    assert parse_bucket(text) == expected


@pytest.mark.parametrize("text", ["", "5", "minutes", "5 fortnights", "1.5 hours", "-5 minutes", "0 s",
                                  "31 days", "1 minute'; DROP TABLE x; --", "5 minutes 5 seconds"])
def test_bad_bucket_sizes_are_invalid(text: str) -> None:
    with pytest.raises(Invalid):
        parse_bucket(text)


def test_a_bucket_giving_too_many_points_is_invalid_and_defaults_follow_the_range() -> None:
    with pytest.raises(Invalid, match="points"):
        bucket_for("30d", "1 minute")
    assert bucket_for("1h", "2s") == timedelta(seconds=2)  # 1800 points
    assert [bucket_text(bucket_for(r, None)) for r in ("1h", "6h", "24h", "7d", "30d")] == [
        "1 minute", "5 minutes", "15 minutes", "1 hour", "6 hours"]


def test_csv_lines_have_one_header_and_empty_nulls() -> None:
    assert b"".join(csv_lines([])) == b"label,time,value\n"
    body = b"".join(csv_lines([("d,1", "t", 1.5), ("d2", "t", None)]))
    assert body == b'label,time,value\n"d,1",t,1.5\nd2,t,\n'


# ---- whole hours of compacted days from the hourly aggregate ------------------------------------------
DAY0 = DAY1 - timedelta(days=1)
HOURLY = ("avg", "min", "max", "sum", "count")
H = timedelta(hours=1)
EVERY_DEVICE = {f"d{d}": "all" for d in range(4)}
LABEL_SETS = [EVERY_DEVICE, {f"d{d}": f"d{d}" for d in range(4)}, {"d1": "x", "d3": "x", "nobody": "x"}]


def day_batches(day) -> list[pa.Table]:
    """A day of four devices every 7 minutes in two flushes, plus a redelivery of some of it."""
    msgs = [msg(f"d{d}", day + timedelta(minutes=7 * i, seconds=d), seq=i, temp=(i * 1.37) % 11 - d, hum=float(i))
            for i in range(206) for d in range(4)]
    return [rows(*msgs[:400]), rows(*msgs[400:], msg("d0", day + H, tenant="globex", temp=1e6)), rows(*msgs[300:500])]


@pytest.fixture
async def compacted_lake(tmp_path: Path) -> str:
    """DAY0 and DAY1 compacted (with hourly aggregates), then a late part for DAY0 (a new row and a
    redelivered one); DAY2 still open (raw parts only)."""
    lake = tmp_path / "lake"
    await write_parts(lake, *day_batches(DAY0), *day_batches(DAY1), *day_batches(DAY2))
    assert compact_closed_days(lake, DAY2.date(), grace_s=0) == 2
    late = rows(msg("d2", DAY0 + timedelta(hours=22, minutes=59), seq=999, temp=50.0),
                msg("d1", DAY0 + timedelta(minutes=7, seconds=1), seq=1, temp=(1.37 % 11) - 1, hum=1.0))
    await write_parts(lake, late)
    return str(lake)


def unflushed() -> pa.Table:
    """Rows the writer holds: on compacted DAY1 (one new, one already there), on DAY2, another tenant's."""
    return rows(msg("d3", DAY1 + timedelta(hours=5, minutes=1), seq=5000, temp=-40.0),
                msg("d0", DAY1 + timedelta(minutes=7), seq=1, temp=1.37 % 11),
                msg("d1", DAY2 + timedelta(hours=2), seq=5001, temp=8.0),
                msg("d1", DAY1 + timedelta(hours=5), tenant="globex", seq=1, temp=1e6))


def raw_answer(lake: str, labels: dict, start, end, bucket, extra=None) -> list[tuple]:
    """The raw-rows path (p95 needs the rows), without the p95."""
    out = rollup(lake, "acme", "temp", labels, start, end, bucket, (*HOURLY, "p95"), extra)
    return [(label, at, values[:-1]) for label, at, values in out]


@pytest.mark.parametrize("start,end,bucket", [
    (DAY0, DAY2 + timedelta(days=1), H),  # whole days
    (DAY0 + timedelta(hours=1, minutes=30, seconds=17), DAY2 + timedelta(hours=5, minutes=3), H),  # unaligned
    (DAY0 + timedelta(minutes=20), DAY1 + timedelta(hours=20, minutes=1), 3 * H),
    (DAY1 + timedelta(minutes=30), DAY1 + timedelta(hours=2, minutes=30), H),  # one whole hour, two halves
    (DAY1 + timedelta(minutes=10), DAY1 + timedelta(minutes=50), H),  # no whole hour
    (DAY0, DAY2, timedelta(days=1)),
    (DAY0 - timedelta(hours=7), DAY2 + timedelta(hours=7), 5 * H),  # buckets across midnight
])
@pytest.mark.parametrize("with_extra", [False, True])
async def test_hourly_rollups_of_compacted_days_answer_as_the_raw_rows_do(
    compacted_lake: str, start, end, bucket, with_extra: bool
) -> None:
    extra = unflushed() if with_extra else None
    for labels in LABEL_SETS:
        hourly = rollup(compacted_lake, "acme", "temp", labels, start, end, bucket, HOURLY, extra)
        assert hourly and same_buckets(hourly, raw_answer(compacted_lake, labels, start, end, bucket, extra))


async def test_only_a_compacted_day_without_late_or_unflushed_rows_answers_from_its_aggregate(
    compacted_lake: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[str] = []

    def recorded(parts):
        found = hourly_aggregate(parts)
        used.extend([found] if found else [])
        return found

    hourly_aggregate = analytics.hourly_aggregate
    monkeypatch.setattr(analytics, "hourly_aggregate", recorded)
    end = DAY2 + timedelta(days=1)
    rollup(compacted_lake, "acme", "temp", EVERY_DEVICE, DAY0, end, H, HOURLY)
    assert len(used) == 1 and f"date={DAY1.date()}" in used[0]  # DAY0 has a late part, DAY2 is open
    used.clear()
    rollup(compacted_lake, "acme", "temp", EVERY_DEVICE, DAY0, end, H, HOURLY, unflushed())
    assert used == []  # DAY1 has unflushed rows
    rollup(compacted_lake, "acme", "temp", EVERY_DEVICE, DAY0, end, H, (*HOURLY, "p95"))
    rollup(compacted_lake, "acme", "temp", EVERY_DEVICE, DAY0, end, timedelta(minutes=30), HOURLY)
    assert used == []  # p95 and sub-hour buckets need the rows
