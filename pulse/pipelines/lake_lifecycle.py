"""The lake's lifecycle passes, run by the scheduler: compaction of closed tenant-days and retention.

A tenant-day is *closed* once its UTC day ended `delay` ago: the writer flushes every 30 s, so by
then only late arrivals land there, as new parts that the next pass compacts again. Compaction
keeps one row per (device_id, metric, ts, seq), the identity `LakeReader` de-duplicates on (with
the same `max(value)`), so queries answer the same before and after. It also writes the day's
hourly aggregate of those rows (count, sum, min, max per device, metric and hour), which
`pipelines.analytics.rollup` reads instead of the rows while it is valid. A day is *expired* once its
last millisecond is more than the tenant's retention days old; it is deleted whole.

The file protocol that makes both crash-safe lives in `pulse.storage.lake.compaction`.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from pulse.storage.lake.compaction import (
    begin,
    commit,
    expire_day,
    lifecycle_lock,
    purge_expired,
    settle,
    write_aggregate,
    write_compacted,
)
from pulse.storage.lake.parquet import ROW_GROUP_ROWS, lake_tenants, partition_dir, partition_days

_COMPACT_SQL = (
    "SELECT device_id, ts, metric, max(value) AS value, seq FROM read_parquet($files) "
    "GROUP BY device_id, ts, metric, seq ORDER BY device_id, ts, metric, seq NULLS FIRST"
)
# Over the compacted (de-duplicated) rows; sorted by metric first: a roll-up reads one metric.
_HOURLY_SQL = (
    "SELECT device_id, metric, date_trunc('hour', ts) AS hour, count(value) AS count, sum(value) AS sum, "
    "min(value) AS min, max(value) AS max FROM read_parquet($file) "
    "GROUP BY device_id, metric, hour ORDER BY metric, device_id, hour"
)
# Background work: one thread and bounded memory (DuckDB spills the sort to disk beyond it), so a
# compaction never starves ingest of CPU or the node of memory.
_DUCKDB_CONFIG = {"threads": 1, "memory_limit": "1GB"}


def closed_before(now: datetime, delay: timedelta) -> date:
    """Days before this one are closed at `now`."""
    return (now - delay).date()


def expired_before(now: datetime, retention_days: int) -> date:
    """Days before this one hold only rows older than `retention_days` at `now`."""
    return (now - timedelta(days=retention_days)).date()


def compact_closed_days(lake_dir: str | os.PathLike[str], before: date, grace_s: float) -> int:
    """Compact every tenant-day before `before` that has two or more parts; returns the days
    compacted (0 when another lifecycle pass holds the lake)."""
    with lifecycle_lock(lake_dir) as held:
        if not held:
            return 0
        compacted = 0
        for tenant in lake_tenants(lake_dir):
            for day in partition_days(lake_dir, tenant, last=before - timedelta(days=1)):
                compacted += compact_day(lake_dir, tenant, day, grace_s)
        return compacted


def compact_day(lake_dir: str | os.PathLike[str], tenant_id: str, day: date, grace_s: float) -> bool:
    """Settle earlier compactions of a tenant-day, then compact its parts into one if needed.
    Call under `lifecycle_lock`."""
    directory = partition_dir(lake_dir, tenant_id, day)
    settle(directory, grace_s)
    plan = begin(directory)
    if plan is None:
        return False
    spill_dir = Path(lake_dir) / ".spill"
    write_compacted(plan, _deduplicated_sorted(plan.inputs, spill_dir))
    write_aggregate(plan, _hourly(plan.tmp, spill_dir))
    commit(plan)
    return True


def expire_days(
    lake_dir: str | os.PathLike[str], retention_days: Callable[[str], int], now: datetime
) -> int:
    """Delete every tenant-day older than its tenant's retention; returns the days deleted
    (0 when another lifecycle pass holds the lake)."""
    with lifecycle_lock(lake_dir) as held:
        if not held:
            return 0
        expired = 0
        for tenant in lake_tenants(lake_dir):
            purge_expired(lake_dir, tenant)
            cutoff = expired_before(now, retention_days(tenant))
            for day in partition_days(lake_dir, tenant, last=cutoff - timedelta(days=1)):
                expire_day(lake_dir, tenant, day)
                expired += 1
        return expired


def _deduplicated_sorted(files: tuple[Path, ...], spill_dir: Path) -> Iterator[pa.RecordBatch]:
    """The distinct rows of the files, sorted by (device_id, ts), streamed in batches."""
    con = _connect(spill_dir)
    try:
        result = con.sql(_COMPACT_SQL, params={"files": [str(f) for f in files]})
        yield from result.to_arrow_reader(4 * ROW_GROUP_ROWS)
    finally:
        con.close()


def _hourly(compacted: Path, spill_dir: Path) -> pa.Table:
    """The hourly aggregate of a compacted file (small: one row per device, metric and hour)."""
    con = _connect(spill_dir)
    try:
        return con.sql(_HOURLY_SQL, params={"file": str(compacted)}).to_arrow_table()
    finally:
        con.close()


def _connect(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={**_DUCKDB_CONFIG, "temp_directory": str(spill_dir)})
    con.execute("SET TimeZone = 'UTC'")
    return con
