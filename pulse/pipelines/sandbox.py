"""Tenant SQL: one read-only DuckDB query over a tenant's own telemetry and device registry.

The query runs on a fresh in-memory DuckDB connection that sees only what is registered on it
before it is locked: the tenant's part files plus the lake writer's unflushed rows as one Arrow
dataset (so DuckDB itself never opens a path) behind the view `telemetry`, and a registry
snapshot as `devices`. Then file system and
network access, extension loading and Python replacement scans are switched off and the
configuration is locked, so `read_csv`, `COPY … TO`, `ATTACH`, `INSTALL`, `SET` and globs over
the lake fail inside DuckDB whatever the parser lets through. On top of that only one SELECT
statement is accepted (DuckDB's own parser decides), a timer interrupts a query past its time
limit, and at most `limit` rows are fetched from a streaming result.
"""
from __future__ import annotations

import base64
import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pulse.errors import Invalid, PulseError
from pulse.storage.lake.parquet import FILE_COLUMNS, part_files, partition_days
from pulse.storage.lake.rows import TELEMETRY_SCHEMA

PART_SCHEMA = pa.schema([TELEMETRY_SCHEMA.field(name) for name in FILE_COLUMNS])
_TS = TELEMETRY_SCHEMA.field("ts").type
DEVICE_SCHEMA = pa.schema([
    ("device_id", pa.string()), ("name", pa.string()), ("site_id", pa.string()), ("status", pa.string()),
    ("template_id", pa.int64()), ("parent_device_id", pa.string()), ("model", pa.string()),
    ("manufacturer", pa.string()), ("serial_number", pa.string()), ("fw_version", pa.string()),
    ("created_at", _TS), ("updated_at", _TS), ("decommissioned_at", _TS),
])
# A few long strings can make an answer huge within the row limit; this bounds the response.
RESULT_CHARS = 16 * 2**20
# Rows stored twice by a WAL replay collapse to one, as in every other lake read.
_TELEMETRY_VIEW = ("CREATE VIEW telemetry AS SELECT device_id, ts, metric, max(value) AS value, seq "
                   "FROM telemetry_parts GROUP BY device_id, ts, metric, seq")
# Applied in this order; `lock_configuration` last, so no query can undo any of them.
_LOCKDOWN = (
    "SET TimeZone = 'UTC'",
    "SET temp_directory = ''",  # no spilling to disk: a query that outgrows memory_limit fails
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET python_enable_replacements = false",  # else any Python variable name in scope is a table
)
# Errors that mean "the query was refused or is wrong", i.e. the caller's fault.
_CALLER_ERRORS = (duckdb.ProgrammingError, duckdb.DataError, duckdb.NotSupportedError, duckdb.IntegrityError,
                  duckdb.PermissionException, duckdb.IOException)


@dataclass(frozen=True)
class Limits:
    rows: int
    seconds: float
    memory_mb: int
    threads: int = 2


@dataclass
class QueryResult:
    columns: list[tuple[str, str]]  # (name, DuckDB type)
    rows: list[list[Any]]  # JSON-ready values
    truncated: bool  # the query had more rows than the limit
    elapsed_ms: float


def devices_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The registry snapshot as the `devices` table (only the columns in DEVICE_SCHEMA)."""
    return pa.Table.from_pylist([{k: r.get(k) for k in DEVICE_SCHEMA.names} for r in rows], schema=DEVICE_SCHEMA)


def run_query(lake_dir: str | os.PathLike[str], tenant_id: str, devices: pa.Table, sql: str, limits: Limits,
              extra: pa.Table | None = None) -> QueryResult:
    """Run `sql` (one SELECT) over the tenant's `telemetry` and `devices`; refusals are PulseErrors.

    `extra`: the tenant's unflushed rows, fetched before this call (see `LakeReader`)."""
    started = time.monotonic()
    con = _sandbox(_telemetry(lake_dir, tenant_id, extra), devices, limits)
    try:
        statement = _single_select(con, sql)
        columns, rows, truncated = _fetch(con, statement, limits)
    finally:
        con.close()
    values = [[_json_value(v) for v in row] for row in rows]
    if len(json.dumps(values, separators=(",", ":"))) > RESULT_CHARS:
        raise Invalid(f"the result is larger than {RESULT_CHARS // 2**20} MB of JSON: select fewer or smaller values")
    return QueryResult(columns, values, truncated, round((time.monotonic() - started) * 1000, 1))


def _telemetry(lake_dir: str | os.PathLike[str], tenant_id: str, extra: pa.Table | None) -> ds.Dataset:
    """The tenant's part files, scanned lazily, and its unflushed rows: nothing of another tenant."""
    files = ds.dataset(part_files(lake_dir, tenant_id, partition_days(lake_dir, tenant_id)),
                       schema=PART_SCHEMA, format="parquet")
    if extra is None or extra.num_rows == 0:
        return files
    return ds.dataset([files, ds.dataset(extra.select(PART_SCHEMA.names).cast(PART_SCHEMA))])


def _sandbox(telemetry: ds.Dataset, devices: pa.Table, limits: Limits) -> duckdb.DuckDBPyConnection:
    """An in-memory connection holding only what it is given, locked down."""
    con = duckdb.connect(":memory:")
    con.register("telemetry_parts", telemetry)
    con.register("devices", devices)
    con.execute(_TELEMETRY_VIEW)
    for setting in (*_LOCKDOWN, f"SET memory_limit = '{int(limits.memory_mb)}MB'",
                    f"SET threads = {int(limits.threads)}", "SET lock_configuration = true"):
        con.execute(setting)
    return con


def _single_select(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The one SELECT statement `sql` holds, as DuckDB parsed it; anything else is refused."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise PulseError(_message(e)) from None
    if len(statements) != 1:
        raise PulseError(f"exactly one statement is accepted, got {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise PulseError(f"only SELECT queries are accepted, not {statements[0].type.name}")
    return statements[0]


def _fetch(con: duckdb.DuckDBPyConnection, statement: Any,
           limits: Limits) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]], bool]:
    """Columns, at most `limits.rows` rows, and whether there were more; interrupted past the time limit."""
    deadline = _Deadline(con, limits.seconds)
    try:
        cur = con.execute(statement)
        rows = cur.fetchmany(limits.rows + 1)  # the result streams: only these rows are computed
        columns = [(d[0], str(d[1])) for d in cur.description]
    except duckdb.InterruptException:
        raise Invalid(f"the query ran longer than the time limit of {limits.seconds:g} s") from None
    except duckdb.OutOfMemoryException:
        raise Invalid(f"the query needs more than the memory limit of {limits.memory_mb} MB") from None
    except _CALLER_ERRORS as e:
        raise PulseError(_message(e)) from None
    finally:
        deadline.cancel()
    return columns, rows[:limits.rows], len(rows) > limits.rows


class _Deadline:
    """Interrupts the connection once `seconds` pass, unless cancelled first (never after)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self._con = con
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if not self._done:
                self._con.interrupt()

    def cancel(self) -> None:
        with self._lock:  # after this, `_expire` cannot touch a connection about to be closed
            self._done = True
        self._timer.cancel()


def _message(e: duckdb.Error) -> str:
    """DuckDB's message without the query excerpt it appends (the caller sent the query)."""
    return str(e).split("\n\nLINE ", 1)[0].strip()[:500]


def _json_value(value: Any) -> Any:
    """A DuckDB result value as JSON: times ISO 8601, intervals in seconds, NaN/±inf null, BLOB base64."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date, clock)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    return str(value)
