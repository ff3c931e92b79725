"""Parquet parts: partitioned by tenant and UTC date, sorted, tenant ids that cannot escape."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pulse.errors import Invalid
from pulse.storage.lake.parquet import part_files, partition_days, write_parquet
from tests.storage.lake.helpers import DAY1, DAY2, PATH_TRAVERSAL_TENANTS, msg, rows


def test_write_parquet_partitions_by_tenant_and_utc_date_sorted_by_device_and_time(tmp_path: Path) -> None:
    late = DAY2 - timedelta(milliseconds=1)
    table = rows(
        msg("d2", DAY2), msg("d2", late), msg("d1", late), msg("d1", DAY1), msg("x", DAY1, tenant="beta")
    )

    paths = write_parquet(tmp_path, table)

    rel = sorted(str(p.parent.relative_to(tmp_path)) for p in paths)
    assert rel == [
        "telemetry/tenant_id=acme/date=2026-03-01",
        "telemetry/tenant_id=acme/date=2026-03-02",
        "telemetry/tenant_id=beta/date=2026-03-01",
    ]
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in paths)
    day1 = pq.read_table(tmp_path / "telemetry/tenant_id=acme/date=2026-03-01", partitioning=None)
    assert day1.column_names == ["device_id", "ts", "metric", "value", "seq"]  # tenant/date in the path only
    assert list(zip(day1["device_id"].to_pylist(), day1["ts"].to_pylist())) == [("d1", DAY1), ("d1", late), ("d2", late)]
    stats = pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).statistics
    assert stats is not None and stats.has_min_max


def test_hive_reads_give_back_tenant_and_date(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1), msg("d9", DAY2, tenant="beta")))

    table = pq.read_table(tmp_path / "telemetry", partitioning="hive")

    pairs = sorted(zip(map(str, table["tenant_id"].to_pylist()), map(str, table["date"].to_pylist())))
    assert pairs == [("acme", "2026-03-01"), ("beta", "2026-03-02")]


@pytest.mark.parametrize("tenant", PATH_TRAVERSAL_TENANTS)
def test_path_traversal_tenant_ids_are_rejected(tmp_path: Path, tenant: str) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(Invalid):
        write_parquet(lake, rows(msg("d1", DAY1, tenant=tenant)))
    assert not any(tmp_path.rglob("*.parquet"))


def test_partition_listing_filters_days_and_ignores_foreign_directories(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1), msg("d1", DAY2), msg("d1", DAY2 + timedelta(days=1))))
    (tmp_path / "telemetry/tenant_id=acme/date=not-a-date").mkdir()

    assert partition_days(tmp_path, "acme", first=DAY2.date()) == [DAY2.date(), (DAY2 + timedelta(days=1)).date()]
    assert partition_days(tmp_path, "acme", last=DAY1.date()) == [DAY1.date()]
    assert partition_days(tmp_path, "nobody") == []
    files = part_files(tmp_path, "acme", partition_days(tmp_path, "acme", DAY1.date(), DAY2.date()))
    assert [Path(f).parent.name for f in files] == ["date=2026-03-01", "date=2026-03-02"]


def test_flush_order_is_arrows_stable_sort_by_tenant_date_device_ts_metric() -> None:
    import random

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from pulse.storage.lake.parquet import _sort_order
    from pulse.storage.lake.rows import TELEMETRY_SCHEMA

    rnd = random.Random(7)

    # times far apart (the general sort) and a few hours apart, as a flush's are (one integer key)
    spread = [0, 86_399_999, 86_400_000, 1_767_225_600_000, 10**13]
    hours = [1_767_225_600_000 + d for d in (0, 1, 3_600_000, 86_399_999, 86_400_000)]

    def chunk(n: int) -> pa.Table:  # few distinct values, so ties (kept in arrival order) are many
        pick = rnd.choice
        times = spread if n % 2 else hours
        return pa.table({
            "tenant_id": [pick(["b", "a", "ab", "Z", "é"]) for _ in range(n)],
            "device_id": [pick(["d1", "d10", "d2", "D", "d1é", ""]) for _ in range(n)],
            "ts": pa.array([pick(times) for _ in range(n)], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "metric": [pick(["m", "m2", "M", "a/b"]) for _ in range(n)],
            "value": [float(i) for i in range(n)],
            "seq": [pick([None, 1]) for _ in range(n)]}, schema=TELEMETRY_SCHEMA)

    for _ in range(20):
        table = pa.concat_tables([chunk(rnd.randint(1, 200)) for _ in range(rnd.randint(1, 4))])
        table = table.append_column("date", pc.cast(table["ts"], pa.date32()))
        keys = [(k, "ascending") for k in ("tenant_id", "date", "device_id", "ts", "metric")]
        assert np.array_equal(_sort_order(table), pc.sort_indices(table, keys).to_numpy())
