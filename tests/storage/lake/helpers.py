"""Telemetry rows for lake tests: messages at fixed days, as Arrow tables."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pulse.actors.lake_writer import LakeWriter
from pulse.domain.messages import Telemetry
from pulse.storage.lake.parquet import FILE_COLUMNS, FILE_SCHEMA, part_files
from pulse.storage.lake.rows import telemetry_table

DAY1 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
PATH_TRAVERSAL_TENANTS = ["../escape", "..", "a/b", "", ".hidden", "tenant_id=x", "a\x00b"]


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def msg(device: str, at: datetime, tenant: str = "acme", seq: int | None = None, **metrics: float) -> Telemetry:
    return Telemetry(tenant, device, ms(at), metrics or {"temp": 20.0}, seq)


def rows(*msgs: Telemetry) -> pa.Table:
    return telemetry_table(list(msgs))


async def write_parts(lake: Path, *tables: pa.Table) -> None:
    """Each table through the real lake writer (WAL, then one flush): one part per tenant-day."""
    writer = LakeWriter(str(lake), str(lake.parent / "wal"), flush_interval_s=3600)
    await writer.start()
    try:
        for table in tables:
            await writer.append(table)
            await writer.flush()
    finally:
        await writer.stop()


def stored_rows(lake: Path, tenant: str, day: date) -> Counter:
    """Every row the visible part files of a tenant-day hold, duplicates counted."""
    files = part_files(lake, tenant, [day])
    table = pa.concat_tables([FILE_SCHEMA.empty_table(), *(pq.read_table(f) for f in files)])
    return Counter(tuple(r.values()) for r in table.select(FILE_COLUMNS).to_pylist())


def same_buckets(got: list[tuple], want: list[tuple]) -> bool:
    """Roll-up answers `(label, time, values)` equal up to float rounding."""
    return [(label, at) for label, at, _ in got] == [(label, at) for label, at, _ in want] and all(
        values == pytest.approx(expected, rel=1e-9) for (_, _, values), (_, _, expected) in zip(got, want))
