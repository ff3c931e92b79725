"""Telemetry rows as Arrow: the lake's schema, envelopes -> rows, and the check every table
passes before the lake accepts it (columns, types, nulls, tenant ids that are safe paths)."""
from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pulse.domain.messages import Telemetry
from pulse.errors import Invalid

# Arrow fields are all nullable so tables built anywhere concatenate without schema fights;
# `conform` enforces that only `seq` may actually hold nulls.
TELEMETRY_SCHEMA = pa.schema(
    [
        pa.field("tenant_id", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("ts", pa.timestamp("ms", tz="UTC")),
        pa.field("metric", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("seq", pa.int64()),
    ]
)
REQUIRED_COLUMNS = ("tenant_id", "device_id", "ts", "metric", "value")

# Same shape the edge accepts (`pulse.domain.envelope.ID_RE`), so anything ingested is storable;
# it cannot contain '/', '=' or start with '.', so it can never leave the tenant directory.
TENANT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def telemetry_table(msgs: Sequence[Telemetry]) -> pa.Table:
    """Envelopes -> long rows (one per metric). Per-message columns are built once and repeated
    with an Arrow `take`, and so is each distinct list of metric names (a device sends the same
    metrics in the same order every time), so Python touches each value once and each name rarely."""
    if not msgs:
        return TELEMETRY_SCHEMA.empty_table()
    n = len(msgs)
    layouts: dict[tuple[str, ...], int] = {}  # metric names in message order -> their number
    layout_of = np.fromiter((layouts.setdefault(tuple(m.metrics), len(layouts)) for m in msgs), np.int64, n)
    sizes = np.fromiter(map(len, layouts), np.int64, len(layouts))
    counts = sizes[layout_of]
    total = int(counts.sum())
    # row r of message i names metric r - first_row[i] of its layout, which starts at layout_start
    first_row = np.cumsum(counts) - counts
    layout_start = np.cumsum(sizes) - sizes
    name_at = np.arange(total) + np.repeat(layout_start[layout_of] - first_row, counts)
    names = pa.array(list(chain.from_iterable(layouts)), pa.string()).take(name_at)
    # np.fromiter turns bools into 0/1 floats, which is what the lake stores for booleans.
    values = np.fromiter(chain.from_iterable(m.metrics.values() for m in msgs), np.float64, total)
    ts_ms = np.fromiter((m.ts_ms for m in msgs), np.int64, n)
    per_msg = pa.table(
        {
            "tenant_id": pa.array([m.tenant_id for m in msgs], pa.string()),
            "device_id": pa.array([m.device_id for m in msgs], pa.string()),
            "ts": pa.array(ts_ms).view(pa.timestamp("ms", tz="UTC")),
            "seq": pa.array([m.seq for m in msgs], pa.int64()),
        }
    ).take(np.repeat(np.arange(n), counts))
    return pa.table(
        [per_msg["tenant_id"], per_msg["device_id"], per_msg["ts"], names, values, per_msg["seq"]],
        schema=TELEMETRY_SCHEMA,
    )


def encode_rows(table: pa.Table, compression: str | None = "lz4") -> bytes:
    """A table -> one Arrow IPC stream: how rows cross process boundaries and what a WAL record holds.

    Between actors this is cheaper than letting Ray pickle the table (Ray copies every column
    through its own reducer, and a batch's ~300 KB of rows would go through its shared-memory
    store; lz4 IPC is ~4x smaller and is passed inline), and the lake writer can write the
    same bytes to the WAL without encoding them again."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_rows(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def validate_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not TENANT_ID_RE.match(tenant_id):
        raise Invalid(f"invalid tenant id {str(tenant_id)[:40]!r}")
    return tenant_id


def conform(table: pa.Table) -> pa.Table:
    """Any table with the lake's columns -> exactly TELEMETRY_SCHEMA, or `Invalid`.

    Runs before a WAL append: a row the lake cannot partition must be refused at the door, not
    discovered at flush time where it would block every later flush."""
    missing = [c for c in TELEMETRY_SCHEMA.names if c not in table.column_names]
    if missing:
        raise Invalid(f"telemetry table lacks columns {missing}")
    try:
        table = table.select(TELEMETRY_SCHEMA.names).cast(TELEMETRY_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise Invalid(f"telemetry table has wrong types: {exc}") from None
    nulls = [c for c in REQUIRED_COLUMNS if table[c].null_count]
    if nulls:
        raise Invalid(f"telemetry columns {nulls} contain nulls")
    for tenant_id in pc.unique(table["tenant_id"]).to_pylist():
        validate_tenant_id(tenant_id)
    return table
