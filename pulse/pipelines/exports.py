"""Telemetry exports: stream a lake query out as CSV or Parquet, batch by batch."""
from __future__ import annotations

import io
import os
import tempfile
from typing import Iterator

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
