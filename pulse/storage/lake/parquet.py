"""The lake's Parquet files: writing rows as hive-partitioned part files, and finding them.

One place knows the layout `telemetry/tenant_id=<t>/date=YYYY-MM-DD/part-<uuid>.parquet`: the
writer and every query (DuckDB, Polars) go through these functions to name or list partitions.
Listing honours compaction journals (`_compaction-<id>.json`, written by
`pulse.storage.lake.compaction`): parts a committed compaction replaced are no longer listed.
A compacted part may have an hourly aggregate `agg-<id>.parquet` next to it; `hourly_aggregate`
says when it answers for its day.
"""
from __future__ import annotations

import json
import logging
import math
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pulse.storage.lake.durable import fsync
from pulse.storage.lake.rows import TELEMETRY_SCHEMA, conform, validate_tenant_id

log = logging.getLogger(__name__)

FILE_COLUMNS = ["device_id", "ts", "metric", "value", "seq"]
FILE_SCHEMA = pa.schema([TELEMETRY_SCHEMA.field(c) for c in FILE_COLUMNS])
STRING_KEYS = ("tenant_id", "device_id", "metric")
# Small enough that one device's rows touch few row groups (min/max pruning on device_id: 16k
# rows measured ~2x faster point reads than 128k), large enough that footers stay small.
ROW_GROUP_ROWS = 16_384
# Dictionary pages for the columns that repeat (few devices and metrics per row group). Left to
# itself the writer tries a dictionary on every column and gives it up for timestamps, values and
# sequence numbers once it grows too large: a flush of 10^6 rows wrote in 0.68 µs per message
# instead of 1.47, into a file of 7.9 MB instead of 10.0 (zstd either way; 2026-12-07).
DICTIONARY_COLUMNS = ["device_id", "metric"]
# Key/value metadata of a part file whose rows are distinct by (device_id, ts, metric, seq), as a
# compaction writes them (an ordinary part may hold duplicates after a WAL replay): a reader whose
# only source is such a file may skip de-duplicating.
DEDUPLICATED_KEY = b"pulse.deduplicated"
PART_GLOB = "part-*.parquet"
# Per (device_id, metric, hour) of a compacted part: its rows' count, sum, min and max of value.
AGGREGATE_SCHEMA = pa.schema([("device_id", pa.string()), ("metric", pa.string()),
                              ("hour", pa.timestamp("ms", tz="UTC")), ("count", pa.int64()),
                              ("sum", pa.float64()), ("min", pa.float64()), ("max", pa.float64())])
AGGREGATE_GLOB = "agg-*.parquet"
JOURNAL_GLOB = "_compaction-*.json"
TENANT_PREFIX = "tenant_id="


@dataclass(frozen=True)
class Replacement:
    """A compaction journal: part file `output` replaces the parts `inputs` once it exists."""

    output: str
    inputs: tuple[str, ...]


def telemetry_root(lake_dir: str | os.PathLike[str]) -> Path:
    return Path(lake_dir) / "telemetry"


def tenant_dir(lake_dir: str | os.PathLike[str], tenant_id: str) -> Path:
    """A tenant's directory; the id is validated, so the path never leaves the lake."""
    return telemetry_root(lake_dir) / f"tenant_id={validate_tenant_id(tenant_id)}"


def partition_dir(lake_dir: str | os.PathLike[str], tenant_id: str, day: date) -> Path:
    return tenant_dir(lake_dir, tenant_id) / f"date={day.isoformat()}"


def lake_tenants(lake_dir: str | os.PathLike[str]) -> list[str]:
    """Tenants with a directory in the lake, sorted."""
    try:
        names = [e.name for e in os.scandir(telemetry_root(lake_dir)) if e.is_dir()]
    except FileNotFoundError:
        return []
    return sorted(n[len(TENANT_PREFIX):] for n in names if n.startswith(TENANT_PREFIX))


def partition_days(
    lake_dir: str | os.PathLike[str], tenant_id: str, first: date | None = None, last: date | None = None
) -> list[date]:
    """A tenant's date partitions within [first, last] (open ends: all), oldest first; a missing
    directory is just no data."""
    try:
        entries = list(os.scandir(tenant_dir(lake_dir, tenant_id)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    days = []
    for entry in entries:
        if entry.is_dir() and entry.name.startswith("date="):
            try:
                days.append(date.fromisoformat(entry.name[5:]))
            except ValueError:
                log.warning("lake: ignoring unexpected directory %s", entry.path)
    return sorted(d for d in days if (first is None or d >= first) and (last is None or d <= last))


def part_files(lake_dir: str | os.PathLike[str], tenant_id: str, days: Iterable[date]) -> list[str]:
    """The part files of these date partitions of a tenant, in a stable order."""
    files: list[str] = []
    for day in days:
        files.extend(str(p) for p in visible_parts(partition_dir(lake_dir, tenant_id, day)))
    return files


def visible_parts(directory: Path) -> list[Path]:
    """The part files of one partition that hold its rows: every part no committed compaction
    has replaced, sorted. A reader sees a compaction's inputs or its output, never both or neither.

    Journals are read before and after the listing: a journal exists from before its output
    appears until after its inputs are deleted (a grace period later), so a listing shorter than
    that grace period cannot miss the journal on both sides."""
    before = replacements(directory)
    parts = sorted(directory.glob(PART_GLOB))
    if not parts:
        return []
    names = {p.name for p in parts}
    journals = [*before.values(), *replacements(directory).values()]
    hidden = {name for r in journals if r.output in names for name in r.inputs}
    return [p for p in parts if p.name not in hidden]


def aggregate_path(part: Path) -> Path:
    """Where the hourly aggregate of part file `part-<id>.parquet` lives: `agg-<id>.parquet`."""
    return part.with_name("agg-" + part.name.removeprefix("part-"))


def hourly_aggregate(parts: Sequence[str]) -> str | None:
    """The hourly aggregate that answers for a day whose visible parts are `parts`, or None.

    Only while the day is exactly one compacted part that has one: a later part (late rows) means
    the aggregate misses rows, so the day reads raw rows until the next compaction."""
    if len(parts) != 1:
        return None
    aggregate = aggregate_path(Path(parts[0]))
    return str(aggregate) if aggregate.exists() else None


def replacements(directory: Path) -> dict[Path, Replacement]:
    """The compaction journals of a partition (committed or not: see `visible_parts`)."""
    found: dict[Path, Replacement] = {}
    for path in directory.glob(JOURNAL_GLOB):
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:  # its compaction finished meanwhile
            continue
        found[path] = Replacement(data["output"], tuple(data["inputs"]))
    return found


def write_parquet(
    lake_dir: str | os.PathLike[str], table: pa.Table, row_group_rows: int = ROW_GROUP_ROWS
) -> list[Path]:
    """Write rows as new part files, one per (tenant, UTC date), each sorted by (device_id, ts).

    Each file is written under a temporary name, fsynced and renamed, so readers never see a
    partial file and the caller may drop the WAL once this returns."""
    table = conform(table)
    if table.num_rows == 0:
        return []
    table = table.append_column("date", pc.cast(table["ts"], pa.date32()))  # ts is UTC: the UTC date
    # The string columns dictionary-encoded once: their ranks sort the rows, the sort moves their
    # indices rather than their bytes, and Parquet writes a dictionary column as it is (a flush
    # sorts and writes every row the lake receives, in the device shards' processes).
    encoded = {c: pc.dictionary_encode(table[c].combine_chunks()) for c in STRING_KEYS}
    order = _sort_order(table, encoded)
    rows = pa.table({c: encoded[c] if c in encoded else table[c] for c in FILE_COLUMNS}).take(pa.array(order))
    tenants = encoded["tenant_id"].indices.to_numpy()[order]
    days = table["date"].combine_chunks().view(pa.int32()).to_numpy()[order]
    bounds = [0, *(np.flatnonzero((tenants[1:] != tenants[:-1]) | (days[1:] != days[:-1])) + 1).tolist(), len(order)]
    return [_write_part(partition_dir(lake_dir, table["tenant_id"][int(order[lo])].as_py(),
                                      table["date"][int(order[lo])].as_py()),
                        rows.slice(lo, hi - lo), row_group_rows)
            for lo, hi in zip(bounds, bounds[1:])]


def _sort_order(table: pa.Table, encoded: dict[str, pa.DictionaryArray] | None = None) -> np.ndarray:
    """Row order by (tenant_id, date, device_id, ts, metric), stable: what Arrow's `sort_indices`
    over those columns gives, ~7x cheaper. Each string column is replaced by the rank of its value
    (a hash pass and a sort of the distinct values: few tenants, devices and metrics), and numpy
    sorts integers (`lexsort`, stable) instead of comparing strings row by row. A flush sorts every
    row the lake receives, and this sort was most of the lake writer's CPU (bench_ingest.py).
    `encoded`: the string columns already dictionary-encoded (`write_parquet`)."""
    if encoded is None:
        encoded = {c: pc.dictionary_encode(table[c].combine_chunks()) for c in STRING_KEYS}

    def ints(column: str, width: pa.DataType) -> np.ndarray:  # timestamps and dates as their integers
        return table[column].combine_chunks().view(width).to_numpy()

    keys = (_ranks(encoded["metric"]), ints("ts", pa.int64()), _ranks(encoded["device_id"]), ints("date", pa.int32()),
            _ranks(encoded["tenant_id"]))
    return _one_key_order(keys) if len(keys[0]) else np.lexsort(keys)


def _one_key_order(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """`np.lexsort(keys)` (the last key primary) as one stable argsort over a mixed-radix int64 of
    the keys less their minimum, when it fits: a flush's rows span a few hours and tenants, devices
    and metrics are ranks, so it nearly always does (10^6 rows: 45 ms instead of 71)."""
    lows = [int(k.min()) for k in keys]
    spans = [int(k.max()) - low + 1 for k, low in zip(keys, lows)]
    if math.prod(spans) >= 2**63:
        return np.lexsort(keys)
    combined = np.zeros(len(keys[0]), np.int64)
    for key, low, span in zip(reversed(keys), reversed(lows), reversed(spans)):
        combined *= span
        combined += key.astype(np.int64) - low
    return np.argsort(combined, kind="stable")


def _ranks(encoded: pa.DictionaryArray) -> np.ndarray:
    """Each value's position among the column's distinct values in Arrow's (byte-wise) order."""
    order = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="first")
    return order.take(encoded.indices).to_numpy()


def _write_part(directory: Path, rows: pa.Table, row_group_rows: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = f"part-{uuid.uuid4().hex}.parquet"
    tmp = directory / f".{name}.tmp"
    # Without the Arrow schema in the file: it would say "dictionary", and readers would then hand
    # back dictionaries instead of the strings of FILE_SCHEMA (Parquet stores the same either way).
    pq.write_table(rows, tmp, row_group_size=row_group_rows, compression="zstd", use_dictionary=DICTIONARY_COLUMNS,
                   store_schema=False)
    fsync(tmp)
    final = directory / name
    os.replace(tmp, final)
    fsync(directory)
    return final
