"""Time-bucketed aggregation of one metric over many devices, run by DuckDB in the lake.

The one bucketing implementation: the analytics query and export, and a device's bucketed
telemetry history, all call `rollup`. Rows are read from one tenant's part files only (plus
unflushed rows when the caller has them), de-duplicated as `LakeReader` does, joined to a
device -> label table (the devices the caller may see, and the series each belongs to) and
grouped by label and bucket. Bucket size and aggregations are bound parameters or whitelisted
SQL fragments: nothing a client typed is ever part of the SQL text.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone

import duckdb
import pyarrow as pa

from pulse.storage.lake.parquet import part_files, partition_days
from pulse.storage.lake.rows import conform

_HIVE_TYPES = "{'tenant_id': 'VARCHAR', 'date': 'DATE'}"
_SCAN = f"read_parquet($files, hive_partitioning = true, hive_types = {_HIVE_TYPES})"
_SQL: dict[str, str] = {
    "avg": "avg(value)", "min": "min(value)", "max": "max(value)",
    "p95": "quantile_cont(value, 0.95)", "sum": "sum(value)", "count": "count(value)",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Bucket = tuple[str, datetime, tuple[float | None, ...]]  # (label, bucket start, one value per aggregation)


def rollup(lake_dir: str, tenant_id: str, metric: str, labels: Mapping[str, str], start: datetime,
           end: datetime, bucket: timedelta, aggregations: Sequence[str],
           extra: pa.Table | None = None) -> list[Bucket]:
    """Per label and bucket (epoch-aligned, start inclusive) with rows in [start, end): the
    aggregations of `metric` over the labelled devices' rows, ordered by label then time.

    `labels` maps each device to read to its series label; other devices are never read."""
    sources, params = _sources(lake_dir, tenant_id, start, end, extra)
    if not sources or not labels:
        return []
    rows = " UNION ALL ".join(f"SELECT device_id, ts, seq, value FROM {s} WHERE metric = $metric AND "
                              "ts >= $start AND ts < $end" for s in sources)
    aggs = ", ".join(_SQL[a] for a in aggregations)  # KeyError on an unknown aggregation: a bug
    sql = (f"WITH unique_rows AS (SELECT device_id, ts, max(value) AS value FROM ({rows}) "
           "GROUP BY device_id, ts, seq) "
           f"SELECT l.label, (epoch_ms(r.ts) // $bucket_ms) * $bucket_ms AS bucket_ms, {aggs} "
           "FROM unique_rows r JOIN labels l ON l.device_id = r.device_id "
           "GROUP BY l.label, bucket_ms ORDER BY l.label, bucket_ms")
    label_table = pa.table({"device_id": list(labels), "label": list(labels.values())},
                           schema=pa.schema([("device_id", pa.string()), ("label", pa.string())]))
    params.update(metric=metric, start=start, end=end, bucket_ms=_ms(bucket))
    con = _connect(extra)
    try:
        con.register("labels", label_table)
        result = con.execute(sql, params).fetchall()
    finally:
        con.close()
    return [(label, _EPOCH + timedelta(milliseconds=ms), tuple(values)) for label, ms, *values in result]


def metric_names(lake_dir: str, tenant_id: str, start: datetime, end: datetime) -> list[str]:
    """The distinct metric keys of a tenant's rows in [start, end), sorted."""
    sources, params = _sources(lake_dir, tenant_id, start, end, None)
    if not sources:
        return []
    sql = f"SELECT DISTINCT metric FROM {sources[0]} WHERE ts >= $start AND ts < $end ORDER BY metric"
    con = _connect(None)
    try:
        return [m for (m,) in con.execute(sql, {**params, "start": start, "end": end}).fetchall()]
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


def _sources(lake_dir: str, tenant_id: str, start: datetime, end: datetime,
             extra: pa.Table | None) -> tuple[list[str], dict[str, object]]:
    """The tables to read (the tenant's part files of the days in range, unflushed rows) and their
    parameters. The part files are one tenant's; unflushed rows are filtered to it."""
    last_day = (end - timedelta(milliseconds=1)).date()
    files = part_files(lake_dir, tenant_id, partition_days(lake_dir, tenant_id, start.date(), last_day))
    sources: list[str] = []
    params: dict[str, object] = {}
    if files:
        sources.append(_SCAN)
        params["files"] = files
    if extra is not None and extra.num_rows:
        sources.append("(SELECT * FROM extra_rows WHERE tenant_id = $tenant)")
        params["tenant"] = tenant_id
    return sources, params


def _connect(extra: pa.Table | None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if extra is not None:
        con.register("extra_rows", conform(extra))
    return con


def _ms(duration: timedelta) -> int:
    return int(duration.total_seconds() * 1000)
