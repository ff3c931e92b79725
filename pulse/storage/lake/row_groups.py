"""One device's rows from part files, reading only the row groups that can hold them.

Part files are sorted by (device_id, ts) in row groups of ROW_GROUP_ROWS, so a device's day sits in
one or two groups whose device_id statistics say so. pyarrow reads just those: a few ms for a
device's 14,400 rows of a 1,000-device day (879 groups), where DuckDB's `read_parquet` of the same
file takes 20+ ms even to count them (benchmarks/README.md, bench_analytics figure 3). The
dashboard's point query (`LakeReader.history` of a compacted day) reads this way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pulse.storage.lake.parquet import DEDUPLICATED_KEY, FILE_COLUMNS


@dataclass(frozen=True)
class PartIndex:
    """What a part file's footer says about its rows: per row group the device_id range (None when the
    group has no statistics: it must be read), and whether the rows are distinct (a compaction's output)."""

    device_ranges: tuple[tuple[str, str] | None, ...]
    deduplicated: bool


@lru_cache(maxsize=256)
def part_index(path: str) -> PartIndex:
    """The index of a part file, cached (~100 KB for a 1,000-device day, less for smaller ones): part
    files are immutable under unique names."""
    meta = _footer(path)
    column = FILE_COLUMNS.index("device_id")
    ranges = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(column).statistics
        ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else None)
    return PartIndex(tuple(ranges), (meta.metadata or {}).get(DEDUPLICATED_KEY) == b"true")


def deduplicated(path: str) -> bool:
    """True for a compaction's output. False too for a file whose footer does not read: the queries
    that read it report the error."""
    try:
        return part_index(path).deduplicated
    except pa.ArrowInvalid:
        return False


def compacted_only(files: list[str]) -> bool:
    """True when the files are compaction outputs of distinct date partitions: their rows are distinct
    (a row's partition is its date, and a partition shows at most one compacted file)."""
    return (bool(files) and all(deduplicated(f) for f in files)
            and len({os.path.dirname(f) for f in files}) == len(files))


def device_rows(path: str, device_id: str) -> pa.Table:
    """The file's rows of one device (FILE_COLUMNS), from the row groups that can hold it."""
    index = part_index(path)
    groups = [i for i, r in enumerate(index.device_ranges) if r is None or r[0] <= device_id <= r[1]]
    with pq.ParquetFile(path, metadata=_footer(path)) as f:
        table = f.read_row_groups(groups, columns=FILE_COLUMNS)
    return table.filter(pc.equal(table["device_id"], device_id))


@lru_cache(maxsize=8)
def _footer(path: str) -> pq.FileMetaData:
    """A part file's parsed footer. Parsing it is ~3 ms of a 1,000-device day's point query, and it
    takes ~3.5 MiB in memory: only the few files read last (a dashboard's recent days) are kept."""
    return pq.read_metadata(path)
