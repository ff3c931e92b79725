"""Telemetry exports: stream a lake query out as CSV or Parquet, batch by batch."""
from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def csv_chunks(reader: pa.RecordBatchReader) -> Iterator[bytes]:
    """CSV with one header line; each Arrow batch becomes one chunk of the HTTP response."""
    header = True
    for batch in reader:
        buf = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), buf,
                        write_options=pacsv.WriteOptions(include_header=header))
        header = False
        yield buf.getvalue()
    if header:  # no rows at all: still a valid CSV with its header
        yield (",".join(reader.schema.names) + "\n").encode()


def parquet_file(reader: pa.RecordBatchReader, directory: str | None = None) -> str:
    """Write the stream to a temporary Parquet file (Parquet needs its footer last); returns its path."""
    fd, path = tempfile.mkstemp(suffix=".parquet", dir=directory)
    os.close(fd)
    with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch)
    return path


def _cell(value: Any) -> Any:
    """A value as a CSV cell shows it: times in ISO 8601, a list as its items joined with commas."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def rows_reader(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                batch_rows: int = 10_000) -> pa.RecordBatchReader:
    """Rows read from the SQL store (quick exports) as an Arrow stream of `columns`, for `csv_chunks`."""
    table = pa.table({c: [_cell(r[c]) for r in rows] for c in columns})
    return table.to_reader(max_chunksize=batch_rows)
