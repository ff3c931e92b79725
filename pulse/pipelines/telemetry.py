"""Telemetry queries over the lake: a device's history, newest rows, metric names and exports.

DuckDB reads the part files `pulse.storage.lake.parquet` lists, unioned with rows the lake
writer has not flushed yet, and collapses the duplicates a WAL replay may leave.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pulse.storage.lake.parquet import part_files, partition_days
from pulse.storage.lake.row_groups import compacted_only, device_rows
from pulse.storage.lake.rows import conform

EXPORT_SCHEMA = pa.schema([("ts", pa.timestamp("ms", tz="UTC")), ("metric", pa.string()),
                           ("value", pa.float64()), ("seq", pa.int64())])
TENANT_EXPORT_SCHEMA = pa.schema([("device_id", pa.string()), *EXPORT_SCHEMA])
_HIVE_TYPES = "{'tenant_id': 'VARCHAR', 'date': 'DATE'}"
_SCAN = f"read_parquet($files, hive_partitioning = true, hive_types = {_HIVE_TYPES})"
_ROW_COLUMNS = "ts, metric, value, seq"
_OLDEST_FIRST = "ts ASC, seq ASC NULLS FIRST, metric ASC"
_NEWEST_FIRST = "ts DESC, seq DESC NULLS LAST, metric ASC"
# The same orders for Arrow's sort.
_OLDEST_KEYS = [("ts", "ascending", "at_start"), ("seq", "ascending", "at_start"), ("metric", "ascending", "at_start")]
_NEWEST_KEYS = [("ts", "descending", "at_end"), ("seq", "descending", "at_end"), ("metric", "ascending", "at_end")]
# Windows of newest date partitions `recent` tries before scanning a tenant's whole history.
_RECENT_WINDOWS = (1, 7, 31)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class TelemetryScope:
    """Which of a tenant's rows: ts in [start, end) (None = unbounded), of these devices and metrics
    (None = all of them; an empty device list = none)."""

    start: datetime | None = None
    end: datetime | None = None
    device_ids: Sequence[str] | None = None
    metrics: Sequence[str] | None = None


class LakeReader:
    """Tenant-scoped reads of the lake, unioned with not-yet-flushed rows (`extra`).

    DuckDB for all queries: one engine, parameter binding, row-group pruning on the
    (device_id, ts) sort, and it measured faster than Polars for these point reads (see
    benchmarks/bench_lake.py). Thread-safe: each query runs on its own cursor.

    For read-your-writes, fetch `extra` (LakeWriter.pending) *before* calling a query: rows
    that move from the buffer to Parquet in between then appear twice (and are de-duplicated)
    rather than not at all."""

    def __init__(self, lake_dir: str | os.PathLike[str]) -> None:
        self.lake_dir = Path(lake_dir)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"lake_dir": self.lake_dir}  # a DuckDB connection does not pickle; reopen lazily

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["lake_dir"])  # type: ignore[misc]

    def history(
        self,
        tenant_id: str,
        device_id: str,
        metric: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        extra: pa.Table | None = None,
        newest: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows with start <= ts < end, oldest first: the first `limit` of them, or with `newest` the last.

        When the range's only parts are compacted files and no unflushed row falls in it (a dashboard
        looking at a past day), the rows are already distinct: they are read from the device's row
        groups and sorted with Arrow, without DuckDB's de-duplicating scan (the same answer, 3-4x sooner)."""
        start, end = _utc(start), _utc(end)
        files = self._range_files(tenant_id, start, end)
        if limit > 0 and compacted_only(files) and not _in_range(extra, tenant_id, device_id, metric, start, end):
            rows = _compacted_rows(files, device_id, metric, start, end, newest, limit)
        else:
            sql, params = _device_scan(files, extra, tenant_id, device_id, _ROW_COLUMNS, metric, start, end)
            rows = self._rows(sql, params, extra, _NEWEST_FIRST if newest else _OLDEST_FIRST, limit)
        return rows[::-1] if newest else rows

    def recent(
        self, tenant_id: str, device_id: str, limit: int = 100, extra: pa.Table | None = None
    ) -> list[dict[str, Any]]:
        """The newest `limit` rows, newest first.

        Tries the newest 1, 7, 31 date partitions before all of them: rows at or after the
        oldest date scanned are complete (every file that can hold them was read), so once
        `limit` of them are found no older partition can change the answer."""
        days = partition_days(self.lake_dir, tenant_id)
        for window in (*_RECENT_WINDOWS, None):
            chosen = days[-window:] if window is not None and window < len(days) else days
            since = _midnight(chosen[0]) if chosen is not days else None
            files = part_files(self.lake_dir, tenant_id, chosen)
            sql, params = _device_scan(files, extra, tenant_id, device_id, _ROW_COLUMNS, start=since)
            rows = self._rows(sql, params, extra, _NEWEST_FIRST, limit)
            if since is None or len(rows) >= limit:
                return rows
        raise AssertionError("unreachable: the last window has no cutoff")

    def export(
        self,
        tenant_id: str,
        device_id: str,
        metric: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        extra: pa.Table | None = None,
        batch_rows: int = 50_000,
    ) -> pa.RecordBatchReader:
        """A de-duplicated, time-ordered stream of rows (ts, metric, value, seq) for exports.

        DuckDB produces the batches lazily, so an export of any length never sits in memory whole."""
        sql, params = self._range_scan(tenant_id, device_id, metric, start, end, extra)
        if sql is None:
            return pa.RecordBatchReader.from_batches(EXPORT_SCHEMA, [])
        cur = self._cursor(extra)  # owned by the reader: closed when garbage-collected
        query = _deduplicated(sql, "ts", _OLDEST_FIRST)
        return cur.sql(query, params=params).to_arrow_reader(batch_rows)  # lazy: no copy of the rows

    def tenant_export(self, tenant_id: str, scope: TelemetryScope, extra: pa.Table | None = None,
                      batch_rows: int = 50_000) -> pa.RecordBatchReader:
        """A tenant's de-duplicated rows (device_id, ts, metric, value, seq) in `scope`, by device then
        time, streamed lazily like `export` (export jobs: docs/exports.md)."""
        sql, params = self._tenant_scan(tenant_id, scope, extra)
        if sql is None:
            return pa.RecordBatchReader.from_batches(TENANT_EXPORT_SCHEMA, [])
        query = (f"SELECT device_id, ts, metric, max(value) AS value, seq FROM ({sql}) "
                 f"GROUP BY device_id, ts, metric, seq ORDER BY device_id, {_OLDEST_FIRST}")
        return self._cursor(extra).sql(query, params=params).to_arrow_reader(batch_rows)

    def tenant_count(self, tenant_id: str, scope: TelemetryScope, extra: pa.Table | None = None) -> int:
        """How many rows `tenant_export` gives for the same arguments."""
        sql, params = self._tenant_scan(tenant_id, scope, extra)
        if sql is None:
            return 0
        query = f"SELECT count(*) FROM (SELECT DISTINCT device_id, ts, metric, seq FROM ({sql}))"
        return self._fetch(query, params, extra)[0][0]

    # -- internals --
    def _tenant_scan(self, tenant_id: str, scope: TelemetryScope,
                     extra: pa.Table | None) -> tuple[str | None, dict[str, Any]]:
        """The tenant's rows in `scope` over the date partitions that can hold them, plus `extra`."""
        if scope.device_ids is not None and not scope.device_ids:
            return None, {}
        start, end = _utc(scope.start), _utc(scope.end)
        days = partition_days(self.lake_dir, tenant_id, start.date() if start else None, _last_day(end))
        files = part_files(self.lake_dir, tenant_id, days)
        where, params = _device_filter(None, start, end)
        for column, name, values in (("device_id", "devices", scope.device_ids), ("metric", "metrics", scope.metrics)):
            if values:
                where += f" AND {column} IN (SELECT unnest(${name}))"
                params[name] = list(values)
        return _union(files, extra, f"device_id, {_ROW_COLUMNS}", f"tenant_id = $tenant{where}",
                      {**params, "tenant": tenant_id})

    def _range_scan(
        self,
        tenant_id: str,
        device_id: str,
        metric: str | None,
        start: datetime | None,
        end: datetime | None,
        extra: pa.Table | None,
    ) -> tuple[str | None, dict[str, Any]]:
        """A device's rows in [start, end), reading only the date partitions that can hold them."""
        start, end = _utc(start), _utc(end)
        files = self._range_files(tenant_id, start, end)
        return _device_scan(files, extra, tenant_id, device_id, _ROW_COLUMNS, metric, start, end)

    def _range_files(self, tenant_id: str, start: datetime | None, end: datetime | None) -> list[str]:
        """The part files of the date partitions that can hold rows in [start, end) (UTC)."""
        days = partition_days(self.lake_dir, tenant_id, start.date() if start else None, _last_day(end))
        return part_files(self.lake_dir, tenant_id, days)

    def _rows(
        self, sql: str | None, params: dict[str, Any], extra: pa.Table | None, order: str, limit: int
    ) -> list[dict[str, Any]]:
        if limit <= 0 or sql is None:
            return []
        query = _deduplicated(sql, "epoch_ms(ts) AS ts_ms", order) + " LIMIT $limit"
        return _row_dicts(self._fetch(query, {**params, "limit": limit}, extra))

    def _fetch(self, sql: str, params: dict[str, Any], extra: pa.Table | None) -> list[tuple[Any, ...]]:
        cur = self._cursor(extra)
        try:
            return cur.execute(sql, params).fetchall()
        finally:
            cur.close()

    def _cursor(self, extra: pa.Table | None) -> duckdb.DuckDBPyConnection:
        """A cursor of the shared connection, with the unflushed rows as table `extra_rows`."""
        cur = self._connection().cursor()
        if extra is not None:
            cur.register("extra_rows", conform(extra))
        return cur

    def _connection(self) -> duckdb.DuckDBPyConnection:
        with self._con_lock:
            if self._con is None:
                con = duckdb.connect()
                con.execute("SET TimeZone = 'UTC'")
                # Footers of immutable part files are re-read by every point query otherwise.
                con.execute("SET parquet_metadata_cache = true")
                self._con = con
            return self._con


def _device_scan(
    files: list[str],
    extra: pa.Table | None,
    tenant_id: str,
    device_id: str,
    columns: str,
    metric: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[str | None, dict[str, Any]]:
    """SELECT `columns` of one device over part files and/or extra rows, filtered, with its
    parameters; (None, …) when there is nothing to read."""
    where, params = _device_filter(metric, start, end)
    return _union(files, extra, columns, f"tenant_id = $tenant AND device_id = $device{where}",
                  {**params, "tenant": tenant_id, "device": device_id})


def _union(files: list[str], extra: pa.Table | None, columns: str, where: str,
           params: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """SELECT `columns` WHERE `where` over part files and/or extra rows; (None, …) when there is nothing
    to read (then no parameter is bound: DuckDB refuses unused ones)."""
    parts = []
    if files:
        parts.append(f"SELECT {columns} FROM {_SCAN} WHERE {where}")
        params = {**params, "files": files}
    if extra is not None and extra.num_rows:
        parts.append(f"SELECT {columns} FROM extra_rows WHERE {where}")
    return (" UNION ALL ".join(parts), params) if parts else (None, {})


def _in_range(extra: pa.Table | None, tenant_id: str, device_id: str, metric: str | None, start: datetime | None,
              end: datetime | None) -> bool:
    """True when unflushed rows hold any of the device's rows in the range (they may repeat stored ones)."""
    if extra is None or not extra.num_rows:
        return False
    extra = conform(extra)
    mask = pc.and_(pc.equal(extra["tenant_id"], tenant_id), _scope_mask(extra, device_id, metric, start, end))
    return pc.any(mask).as_py() or False


def _compacted_rows(files: list[str], device_id: str, metric: str | None, start: datetime | None,
                    end: datetime | None, newest: bool, limit: int) -> list[dict[str, Any]]:
    """`history` over compacted (distinct) files: the device's row groups, filtered and ordered as
    the SQL path orders them (`_OLDEST_FIRST` / `_NEWEST_FIRST`), the first `limit`."""
    table = pa.concat_tables([device_rows(f, device_id) for f in files])
    table = table.filter(_scope_mask(table, device_id, metric, start, end))
    table = table.take(pc.sort_indices(table, sort_keys=_NEWEST_KEYS if newest else _OLDEST_KEYS)[:limit])
    columns = (pc.cast(table["ts"], pa.int64()), table["metric"], table["value"], table["seq"])
    return _row_dicts(list(zip(*(c.to_pylist() for c in columns))))


def _scope_mask(table: pa.Table, device_id: str, metric: str | None, start: datetime | None,
                end: datetime | None) -> pa.ChunkedArray:
    """The rows of the device (and metric) with start <= ts < end, compared at microseconds as DuckDB does."""
    ms = pc.cast(table["ts"], pa.int64())
    conditions = [pc.equal(table["device_id"], device_id)]
    if metric is not None:
        conditions.append(pc.equal(table["metric"], metric))
    if start is not None:
        conditions.append(pc.greater_equal(ms, _ceil_ms(start)))
    if end is not None:
        conditions.append(pc.less(ms, _ceil_ms(end)))
    return functools.reduce(pc.and_, conditions)


def _ceil_ms(at: datetime) -> int:
    """The first whole millisecond at or after `at` (ts >= at  <=>  ts_ms >= this, for ts in ms)."""
    return -((_EPOCH - at) // timedelta(milliseconds=1))


def _row_dicts(rows: list[tuple[int, str, float, int | None]]) -> list[dict[str, Any]]:
    """(ts_ms, metric, value, seq) rows as dicts, with one datetime per distinct time (a device-day's
    14,400 rows share 1,440): making one per row was most of a point query's time."""
    stamps = {t: _EPOCH + timedelta(milliseconds=t) for t in {row[0] for row in rows}}
    return [{"ts": stamps[t], "metric": m, "value": v, "seq": s} for t, m, v, s in rows]


def _deduplicated(sql: str, ts: str, order: str) -> str:
    """Rows of `sql` grouped by their identity columns: duplicates from WAL replay collapse to one."""
    return f"SELECT {ts}, metric, max(value) AS value, seq FROM ({sql}) GROUP BY ts, metric, seq ORDER BY {order}"


def _device_filter(
    metric: str | None, start: datetime | None, end: datetime | None
) -> tuple[str, dict[str, Any]]:
    """SQL conditions for the given filters, and only their parameters (DuckDB refuses unused ones)."""
    clauses, params = [], {}
    if metric is not None:
        clauses.append(" AND metric = $metric")
        params["metric"] = metric
    if start is not None:
        clauses.append(" AND ts >= $start")
        params["start"] = start
    if end is not None:
        clauses.append(" AND ts < $end")
        params["end"] = end
    return "".join(clauses), params


def _utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are UTC, as everywhere in Pulse."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _last_day(end: datetime | None) -> date | None:
    """Last date partition that can hold ts < end (end is exclusive, so midnight excludes its day)."""
    if end is None:
        return None
    return (end - timedelta(milliseconds=1)).date()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
