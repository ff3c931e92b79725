"""Crash-safe lifecycle of lake partitions: replacing a tenant-day's part files by one compacted
file, and deleting a whole tenant-day. This module owns the file protocol; the rewrite itself
(de-duplicate, sort) is a pipeline (`pulse.pipelines.lake_lifecycle`).

Compaction of one partition directory, each step durable (fsynced) before the next:

1. `begin`: the inputs are the parts visible now; parts the writer adds later are not touched.
2. `write_compacted`: rows go to `.compact-<id>.parquet.tmp`, a name no reader lists.
   `write_aggregate`: the hourly aggregate of those rows goes to `.agg-<id>.parquet.tmp`, then is
   renamed to `agg-<id>.parquet`. Readers trust it only while `part-<id>.parquet` is the day's one
   visible part (`parquet.hourly_aggregate`), so before the commit it is never read.
3. `commit`: the journal `_compaction-<id>.json` (output name, input names) is written atomically,
   then the temporary file is renamed to `part-<id>.parquet`. That rename is the commit point:
   readers (`parquet.visible_parts`) hide the inputs of a journal whose output exists.
4. `settle`, at least `grace_s` after the commit: the inputs are deleted, then the journal. The
   grace lets queries that listed the inputs before the commit finish reading them. Aggregates
   whose part is gone (replaced inputs, or the output of a rolled-back compaction) go with them.

`kill -9` between any two steps: before the rename `settle` rolls back (drops the journal and the
temporary file; the inputs are still the truth), after it `settle` rolls forward. Whole-day
deletion renames the day out of the layout first (`.expired-…`, atomic), then removes it.

One lifecycle pass at a time: `lifecycle_lock` (an flock the kernel drops when its holder dies)
guards the lake on one host; a lake shared by several hosts relies on the single scheduler actor.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pulse.storage.lake.durable import fsync, try_lock
from pulse.storage.lake.parquet import (
    AGGREGATE_GLOB,
    AGGREGATE_SCHEMA,
    DEDUPLICATED_KEY,
    DICTIONARY_COLUMNS,
    FILE_SCHEMA,
    PART_GLOB,
    ROW_GROUP_ROWS,
    aggregate_path,
    partition_dir,
    replacements,
    telemetry_root,
    tenant_dir,
    visible_parts,
)

_TMP_GLOBS = (".compact-*.parquet.tmp", ".agg-*.parquet.tmp", "._compaction-*.json.tmp")
_EXPIRED_PREFIX = ".expired-"
# The compacted file is sorted by these (device_id, ts): recorded so engines may skip a sort.
_SORTING = [pq.SortingColumn(0), pq.SortingColumn(1)]


@dataclass(frozen=True)
class Compaction:
    """One planned compaction of a partition: these inputs become one file."""

    directory: Path
    inputs: tuple[Path, ...]
    id: str

    @property
    def tmp(self) -> Path:
        return self.directory / f".compact-{self.id}.parquet.tmp"

    @property
    def output(self) -> Path:
        return self.directory / f"part-{self.id}.parquet"

    @property
    def aggregate(self) -> Path:
        return aggregate_path(self.output)

    @property
    def journal(self) -> Path:
        return self.directory / f"_compaction-{self.id}.json"


@contextmanager
def lifecycle_lock(lake_dir: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold the lake's lifecycle lock for the block; yields False when another pass holds it."""
    root = telemetry_root(lake_dir)
    root.mkdir(parents=True, exist_ok=True)
    fd = try_lock(root / ".lifecycle.lock")
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def begin(directory: Path) -> Compaction | None:
    """Plan the compaction of a partition, or None when it has fewer than two parts or an earlier
    compaction is not settled yet (one journal per partition at a time: never a chain of them)."""
    if replacements(directory):
        return None
    inputs = visible_parts(directory)
    if len(inputs) < 2:
        return None
    return Compaction(directory, tuple(inputs), uuid.uuid4().hex)


def write_compacted(plan: Compaction, batches: Iterable[pa.RecordBatch]) -> int:
    """Write rows, already de-duplicated and sorted by (device_id, ts), to the plan's temporary
    file in row groups of ROW_GROUP_ROWS (min/max statistics let a one-device query skip the
    rest), flagged as de-duplicated (DEDUPLICATED_KEY); fsynced. Returns the rows written."""
    rows, pending = 0, FILE_SCHEMA.empty_table()
    schema = FILE_SCHEMA.with_metadata({DEDUPLICATED_KEY: b"true"})
    with pq.ParquetWriter(plan.tmp, schema, compression="zstd", use_dictionary=DICTIONARY_COLUMNS,
                          sorting_columns=_SORTING) as writer:
        for batch in batches:
            pending = pa.concat_tables([pending, pa.Table.from_batches([batch]).cast(FILE_SCHEMA)])
            full = pending.num_rows - pending.num_rows % ROW_GROUP_ROWS
            if full:  # whole row groups only, so every group but the last has ROW_GROUP_ROWS rows
                writer.write_table(pending.slice(0, full), row_group_size=ROW_GROUP_ROWS)
                pending, rows = pending.slice(full), rows + full
        if pending.num_rows:
            writer.write_table(pending, row_group_size=ROW_GROUP_ROWS)
            rows += pending.num_rows
    fsync(plan.tmp)
    return rows


def write_aggregate(plan: Compaction, table: pa.Table) -> Path:
    """Write the hourly aggregate of the plan's rows (AGGREGATE_SCHEMA columns) under its final
    name, durably; call before `commit`, so it exists whenever the output does."""
    tmp = plan.directory / f".{plan.aggregate.name}.tmp"
    pq.write_table(table.select(AGGREGATE_SCHEMA.names).cast(AGGREGATE_SCHEMA), tmp, compression="zstd")
    fsync(tmp)
    os.replace(tmp, plan.aggregate)
    fsync(plan.directory)
    return plan.aggregate


def commit(plan: Compaction) -> Path:
    """Journal the replacement, then make the output visible in one rename (the commit point)."""
    journal_tmp = plan.directory / f".{plan.journal.name}.tmp"
    journal_tmp.write_text(json.dumps({"output": plan.output.name, "inputs": [p.name for p in plan.inputs]}))
    fsync(journal_tmp)
    os.replace(journal_tmp, plan.journal)
    fsync(plan.directory)
    os.replace(plan.tmp, plan.output)
    fsync(plan.directory)
    return plan.output


def settle(directory: Path, grace_s: float) -> None:
    """Finish what earlier compactions of a partition left, whatever step they stopped at: roll
    back the uncommitted, delete the replaced inputs of those committed `grace_s` ago or more.
    Only under `lifecycle_lock`: an uncommitted journal may belong to a running compaction."""
    for journal, replacement in replacements(directory).items():
        if not (directory / replacement.output).exists():
            _remove(directory, [journal])  # crashed before the commit: the inputs stay the truth
        elif time.time() - journal.stat().st_mtime >= grace_s:
            # inputs first: a journal must outlive them, or readers would see them again
            _remove(directory, [directory / name for name in replacement.inputs])
            _remove(directory, [journal])
    parts = {aggregate_path(p).name for p in directory.glob(PART_GLOB)}
    _remove(directory, [a for a in directory.glob(AGGREGATE_GLOB) if a.name not in parts])
    _remove(directory, [tmp for pattern in _TMP_GLOBS for tmp in directory.glob(pattern)])


def expire_day(lake_dir: str | os.PathLike[str], tenant_id: str, day: date) -> None:
    """Delete a tenant-day whole: renamed out of the layout in one step, then removed."""
    source = partition_dir(lake_dir, tenant_id, day)
    doomed = source.with_name(f"{_EXPIRED_PREFIX}{day.isoformat()}-{uuid.uuid4().hex}")
    os.rename(source, doomed)
    fsync(source.parent)
    shutil.rmtree(doomed)


def purge_expired(lake_dir: str | os.PathLike[str], tenant_id: str) -> None:
    """Remove what a crash in the middle of `expire_day` left (already invisible to readers)."""
    for path in tenant_dir(lake_dir, tenant_id).glob(f"{_EXPIRED_PREFIX}*"):
        shutil.rmtree(path)


def _remove(directory: Path, paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    if paths:
        fsync(directory)
