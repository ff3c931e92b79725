"""The one bucketing pipeline: per label and bucket aggregates, de-duplicated, one tenant's rows only."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pulse.domain.analytics import bucket_for, bucket_text, parse_bucket
from pulse.errors import Invalid
from pulse.pipelines.analytics import csv_lines, metric_names, rollup
from pulse.storage.lake.parquet import write_parquet
from tests.storage.lake.helpers import DAY1, msg, rows

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
