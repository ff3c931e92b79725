"""Export encoders: every format is a valid file for no rows, one batch, or empty batches among full ones."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pulse.pipelines.exports import ALERT_SCHEMA, Encoder, batch_of

ROW = {"alert_id": 7, "device_id": "d1", "alert_type": "THRESHOLD", "severity": 4, "status": "OPEN",
       "created_at": datetime(2026, 12, 5, 12, 0, 0, 123000, tzinfo=timezone.utc), "summary": 'hot, "very"\nhot'}


def encode(fmt: str, batches: list[list[dict]]) -> bytes:
    enc = Encoder(fmt, ALERT_SCHEMA)
    return b"".join(enc.encode(batch_of(rows, ALERT_SCHEMA)) for rows in batches) + enc.finish()


def parse(fmt: str, data: bytes) -> list[dict]:
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    if fmt == "json":
        return json.loads(data)
    return pq.read_table(io.BytesIO(data)).to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
@pytest.mark.parametrize("batches", [[], [[]], [[], [ROW], [], [ROW, ROW]]], ids=["none", "empty", "mixed"])
def test_every_format_round_trips(fmt, batches):
    data = encode(fmt, batches)
    rows = parse(fmt, data)
    assert len(rows) == sum(len(b) for b in batches)
    for row in rows:
        assert row["summary"] == ROW["summary"] and int(row["alert_id"]) == 7
    if fmt == "csv":
        assert data.decode().splitlines()[0].replace('"', "").split(",") == ALERT_SCHEMA.names
    if fmt == "parquet":
        assert pq.read_schema(io.BytesIO(data)).names == ALERT_SCHEMA.names


def test_times_are_iso_in_json_and_batches_are_cast_to_the_file_schema():
    rows = parse("json", encode("json", [[ROW]]))
    assert rows[0]["created_at"] == "2026-12-05T12:00:00.123+00:00" and rows[0]["closed_at"] is None
    micro = pa.schema([f.with_type(pa.timestamp("us", tz="Etc/UTC")) if f.name == "created_at" else f
                       for f in ALERT_SCHEMA])
    enc = Encoder("parquet", ALERT_SCHEMA)
    data = enc.encode(pa.RecordBatch.from_pylist([ROW], schema=micro)) + enc.finish()
    assert pq.read_schema(io.BytesIO(data)).field("created_at").type == pa.timestamp("ms", tz="UTC")
