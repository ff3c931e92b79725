"""Time-bucketed aggregation of one metric over many devices, run by DuckDB in the lake.

The one bucketing implementation: the analytics query and export, and a device's bucketed
telemetry history, all call `rollup`. Rows are read from one tenant's part files only (plus
unflushed rows when the caller has them), de-duplicated as `LakeReader` does, joined to a
device -> label table (the devices the caller may see, and the series each belongs to) and
grouped by label and bucket. Bucket size and aggregations are bound parameters or whitelisted
SQL fragments: nothing a client typed is ever part of the SQL text.

Like the documented system's continuous aggregate, a compacted day's hourly aggregate (written by
`pipelines.lake_lifecycle`) answers its whole hours when the buckets are whole hours and the
aggregations combine from partials (avg = sum of sums / sum of counts); p95 and sub-hour buckets
need the rows. Raw rows and aggregate partials per bucket are then combined in one query.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pulse.storage.lake.parquet import hourly_aggregate, part_files, partition_days
from pulse.storage.lake.rows import conform

_HIVE_TYPES = "{'tenant_id': 'VARCHAR', 'date': 'DATE'}"
_SCAN = f"read_parquet($files, hive_partitioning = true, hive_types = {_HIVE_TYPES})"
_SQL: dict[str, str] = {
    "avg": "avg(value)", "min": "min(value)", "max": "max(value)",
    "p95": "quantile_cont(value, 0.95)", "sum": "sum(value)", "count": "count(value)",
}
# Aggregations that partial results combine into exactly; their partials per label and bucket:
_PARTIALS = "count(value) AS n, sum(value) AS total, min(value) AS low, max(value) AS high"
_COMBINED: dict[str, str] = {
    "avg": "sum(total) / sum(n)", "min": "min(low)", "max": "max(high)", "sum": "sum(total)",
    "count": "CAST(sum(n) AS BIGINT)",
}
_BUCKET = "(epoch_ms({ts}) // $bucket_ms) * $bucket_ms AS bucket_ms"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
Bucket = tuple[str, datetime, tuple[float | None, ...]]  # (label, bucket start, one value per aggregation)


@dataclass
class _Reads:
    """What answers a roll-up of [start, end): the raw rows of `files`, and of `edge_files` outside
    `hours`; the hourly `aggregates` inside `hours` (the whole hours of the range)."""

    start: datetime
    end: datetime
    files: list[str] = field(default_factory=list)
    edge_files: list[str] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)

    @property
    def hours(self) -> tuple[datetime, datetime]:
        return _hour_ceil(self.start), _hour_floor(self.end)


def rollup(lake_dir: str, tenant_id: str, metric: str, labels: Mapping[str, str], start: datetime,
           end: datetime, bucket: timedelta, aggregations: Sequence[str],
           extra: pa.Table | None = None) -> list[Bucket]:
    """Per label and bucket (epoch-aligned, start inclusive) with rows in [start, end): the
    aggregations of `metric` over the labelled devices' rows, ordered by label then time.

    `labels` maps each device to read to its series label; other devices are never read. With
    whole-hour buckets and only avg/min/max/sum/count, compacted days answer their whole hours
    from the hourly aggregate written at compaction; the rest comes from raw rows."""
    if not labels:
        return []
    hourly = bucket % _HOUR == timedelta(0) and all(a in _COMBINED for a in aggregations)
    reads = _plan(lake_dir, tenant_id, metric, start, end, extra, hourly)
    raw, params = _raw_rows(reads, extra, tenant_id)
    if raw is None and not reads.aggregates:
        return []
    if reads.aggregates:
        sql = _combined_sql(raw, aggregations)
        params.update(aggregates=reads.aggregates, hours_start=reads.hours[0], hours_end=reads.hours[1])
    else:
        sql = _raw_sql(raw, aggregations)
    label_table = pa.table({"device_id": list(labels), "label": list(labels.values())},
                           schema=pa.schema([("device_id", pa.string()), ("label", pa.string())]))
    params.update(metric=metric, bucket_ms=_ms(bucket))
    con = _connect(extra)
    try:
        con.register("labels", label_table)
        result = con.execute(sql, params).fetchall()
    finally:
        con.close()
    return [(label, _EPOCH + timedelta(milliseconds=ms), tuple(values)) for label, ms, *values in result]


def metric_names(lake_dir: str, tenant_id: str, start: datetime, end: datetime) -> list[str]:
    """The distinct metric keys of a tenant's rows in [start, end), sorted."""
    files = part_files(lake_dir, tenant_id, partition_days(lake_dir, tenant_id, start.date(), _last_day(end)))
    if not files:
        return []
    sql = f"SELECT DISTINCT metric FROM {_SCAN} WHERE ts >= $start AND ts < $end ORDER BY metric"
    con = _connect(None)
    try:
        return [m for (m,) in con.execute(sql, {"files": files, "start": start, "end": end}).fetchall()]
    finally:
        con.close()


def csv_lines(rows: Iterable[tuple[str, str, float | None]]) -> Iterator[bytes]:
    """`label,time,value` CSV, one header line, a chunk per row (an empty value is null)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("label", "time", "value"))
    for row in rows:
        writer.writerow(row)
        yield buf.getvalue().encode()
        buf.seek(0)
        buf.truncate()
    if buf.tell():  # no rows: the header alone
        yield buf.getvalue().encode()


def _plan(lake_dir: str, tenant_id: str, metric: str, start: datetime, end: datetime,
          extra: pa.Table | None, hourly: bool) -> _Reads:
    """Which files answer [start, end): with `hourly`, a day with a valid hourly aggregate and no
    unflushed rows of the metric answers its whole hours in range from the aggregate, and its
    partial hours at the range ends from its raw rows; every other day from raw rows."""
    reads = _Reads(start, end)
    pending = _pending_days(extra, tenant_id, metric) if hourly else set()
    for day in partition_days(lake_dir, tenant_id, start.date(), _last_day(end)):
        files = part_files(lake_dir, tenant_id, [day])
        day_start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        lo, hi = max(day_start, reads.hours[0]), min(day_start + _DAY, reads.hours[1])
        aggregate = hourly_aggregate(files) if hourly and day not in pending and lo < hi else None
        if aggregate is None:
            reads.files += files
            continue
        reads.aggregates.append(aggregate)
        if max(start, day_start) < lo or hi < min(end, day_start + _DAY):
            reads.edge_files += files
    return reads


def _raw_rows(reads: _Reads, extra: pa.Table | None, tenant_id: str) -> tuple[str | None, dict[str, object]]:
    """The de-duplicated raw rows (device_id, ts, value) of the metric in [$start, $end) that
    `reads` leaves to raw files and unflushed rows, and their parameters; None when there are none."""
    where = "metric = $metric AND ts >= $start AND ts < $end"
    selects, params = [], {}
    if reads.files:
        selects.append(f"SELECT device_id, ts, seq, value FROM {_SCAN} WHERE {where}")
        params["files"] = reads.files
    if reads.edge_files:
        edge_scan = _SCAN.replace("$files", "$edge_files")
        selects.append(f"SELECT device_id, ts, seq, value FROM {edge_scan} WHERE {where} "
                       "AND NOT (ts >= $hours_start AND ts < $hours_end)")
        params["edge_files"] = reads.edge_files
    if extra is not None and extra.num_rows:
        selects.append(f"SELECT device_id, ts, seq, value FROM extra_rows WHERE tenant_id = $tenant AND {where}")
        params["tenant"] = tenant_id
    if not selects:
        return None, params
    params.update(start=reads.start, end=reads.end)
    return (f"SELECT device_id, ts, max(value) AS value FROM ({' UNION ALL '.join(selects)}) "
            "GROUP BY device_id, ts, seq"), params


def _raw_sql(raw: str, aggregations: Sequence[str]) -> str:
    """The aggregations per label and bucket straight from the raw rows (any aggregation)."""
    aggs = ", ".join(_SQL[a] for a in aggregations)  # KeyError on an unknown aggregation: a bug
    return (f"SELECT l.label, {_BUCKET.format(ts='r.ts')}, {aggs} FROM ({raw}) r "
            "JOIN labels l ON l.device_id = r.device_id GROUP BY l.label, bucket_ms ORDER BY l.label, bucket_ms")


def _combined_sql(raw: str | None, aggregations: Sequence[str]) -> str:
    """Partials per label and bucket from the hourly aggregates and the raw rows, combined."""
    partials = [f"SELECT l.label, {_BUCKET.format(ts='a.hour')}, a.\"count\" AS n, a.\"sum\" AS total, "
                "a.\"min\" AS low, a.\"max\" AS high FROM read_parquet($aggregates, hive_partitioning = false) a "
                "JOIN labels l ON l.device_id = a.device_id "
                "WHERE a.metric = $metric AND a.hour >= $hours_start AND a.hour < $hours_end"]
    if raw is not None:
        partials.append(f"SELECT l.label, {_BUCKET.format(ts='r.ts')}, {_PARTIALS} FROM ({raw}) r "
                        "JOIN labels l ON l.device_id = r.device_id GROUP BY l.label, bucket_ms")
    combined = ", ".join(_COMBINED[a] for a in aggregations)
    return (f"SELECT label, bucket_ms, {combined} FROM ({' UNION ALL '.join(partials)}) "
            "GROUP BY label, bucket_ms ORDER BY label, bucket_ms")


def _pending_days(extra: pa.Table | None, tenant_id: str, metric: str) -> set[date]:
    """UTC days holding unflushed rows of the tenant's metric: those read raw rows only, so an
    unflushed row is never counted beside an aggregate that may already hold it."""
    if extra is None or not extra.num_rows:
        return set()
    rows = conform(extra)
    mine = rows.filter(pc.and_(pc.equal(rows["tenant_id"], tenant_id), pc.equal(rows["metric"], metric)))
    return set(pc.unique(pc.cast(mine["ts"], pa.date32())).to_pylist())


def _hour_floor(moment: datetime) -> datetime:
    return _EPOCH + (moment - _EPOCH) // _HOUR * _HOUR


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + _HOUR


def _last_day(end: datetime) -> date:
    """The last date partition that can hold ts < end."""
    return (end - timedelta(milliseconds=1)).date()


def _connect(extra: pa.Table | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if extra is not None:
        con.register("extra_rows", conform(extra))
    return con


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)
