"""LakeWriter: acknowledged rows are durable, readable at once, flushed, and never lost."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

import pulse.actors.lake_writer as lake_writer_module
from pulse.actors.lake_writer import LakeWriter, orphan_wal_dirs, wal_dir_of
from pulse.domain.messages import Telemetry
from pulse.errors import Invalid
from pulse.pipelines.telemetry import LakeReader
from pulse.storage.lake.parquet import write_parquet
from pulse.storage.lake.rows import telemetry_table
from pulse.storage.lake.wal import read_wal

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def batch(device: str, n: int, tenant: str = "acme", start: int = 0) -> pa.Table:
    """n messages of 2 metrics each, one second apart, seq = position."""
    msgs = [
        Telemetry(tenant, device, int((T0 + timedelta(seconds=i)).timestamp() * 1000), {"temp": float(i), "on": True}, i)
        for i in range(start, start + n)
    ]
    return telemetry_table(msgs)


def lake_rows(lake: Path, device: str, tenant: str = "acme") -> list[dict]:
    return LakeReader(lake).history(tenant, device, limit=100_000)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "lake", tmp_path / "wal"


@pytest.fixture
async def writer(dirs: tuple[Path, Path]) -> AsyncIterator[LakeWriter]:
    lake, wal = dirs
    w = LakeWriter(str(lake), str(wal), flush_interval_s=3600)  # tests flush explicitly
    await w.start()
    yield w
    await w.stop()


async def test_appended_rows_are_pending_then_flushed_to_the_lake(writer: LakeWriter, dirs: tuple[Path, Path]) -> None:
    lake, _ = dirs
    assert await writer.append(batch("d1", 5)) == 10
    await writer.append(batch("d2", 1))

    pending = await writer.pending("acme", "d1")
    assert pending is not None and pending.num_rows == 10
    assert await writer.pending("acme", "nobody") is None
    assert len(LakeReader(lake).history("acme", "d1", extra=pending)) == 10  # read-your-writes
    assert lake_rows(lake, "d1") == []

    assert await writer.flush() == 12
    assert await writer.pending("acme", "d1") is None
    assert len(lake_rows(lake, "d1")) == 10
    stats = await writer.stats()
    assert stats["rows_appended"] == 12 and stats["rows_flushed"] == 12
    assert stats["files_written"] == 1 and stats["last_flush_at"] is not None
    assert stats["wal_bytes"] == 0  # flushed segments are dropped


async def crash_with_rows_in_the_wal(lake: Path, wal: Path) -> None:
    """3 messages appended, then no stop() and no flush: the process "dies" with the rows only in
    the WAL, and the OS closes its files (releasing the WAL directory lock)."""
    crashed = LakeWriter(str(lake), str(wal), flush_interval_s=3600)
    await crashed.start()
    await crashed.append(batch("d1", 3))
    crashed._wal.close()  # type: ignore[union-attr]
    crashed._loop_task.cancel()  # type: ignore[union-attr]  # the dead process's timer goes with it


async def test_unflushed_rows_survive_a_crash_and_are_replayed_on_start(dirs: tuple[Path, Path]) -> None:
    lake, wal = dirs
    await crash_with_rows_in_the_wal(lake, wal)

    restarted = LakeWriter(str(lake), str(wal), flush_interval_s=3600)
    await restarted.start()
    try:
        assert [r["seq"] for r in lake_rows(lake, "d1") if r["metric"] == "temp"] == [0, 1, 2]
        assert (await restarted.stats())["rows_replayed"] == 6
        assert list(read_wal(wal)) == []  # replayed segments were dropped
    finally:
        await restarted.stop()


async def test_a_writer_ray_restarted_recovers_the_wal_on_its_first_call(dirs: tuple[Path, Path]) -> None:
    """Ray's restart of a crashed actor runs only __init__: nobody awaits start() again."""
    lake, wal = dirs
    await crash_with_rows_in_the_wal(lake, wal)
    restarted = LakeWriter(str(lake), str(wal), flush_interval_s=3600)  # no start()
    try:
        assert await restarted.pending("acme", "d1") is None  # the old rows are in Parquet by now
        assert [r["seq"] for r in lake_rows(lake, "d1") if r["metric"] == "temp"] == [0, 1, 2]
        assert await restarted.append(batch("d1", 1, start=3)) == 2
        assert (await restarted.stats())["rows_replayed"] == 6
    finally:
        await restarted.stop()


async def test_crash_after_parquet_write_before_wal_drop_only_duplicates(dirs: tuple[Path, Path]) -> None:
    lake, wal = dirs
    rows = batch("d1", 4)
    crashed = LakeWriter(str(lake), str(wal), flush_interval_s=3600)
    await crashed.start()
    await crashed.append(rows)
    write_parquet(lake, rows)  # the flush wrote Parquet, then the process died
    crashed._wal.close()  # type: ignore[union-attr]
    crashed._loop_task.cancel()  # type: ignore[union-attr]  # the dead process's timer goes with it

    restarted = LakeWriter(str(lake), str(wal), flush_interval_s=3600)
    await restarted.start()
    await restarted.stop()

    assert len(list((lake / "telemetry").rglob("*.parquet"))) == 2  # the rows are stored twice
    assert len(lake_rows(lake, "d1")) == 8  # but read once


async def test_appends_during_a_slow_flush_are_not_lost(
    writer: LakeWriter, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, _ = dirs
    writing, release = threading.Event(), threading.Event()
    real_write = lake_writer_module.write_parquet

    def slow_write(lake_dir: str, table: pa.Table) -> list[Path]:
        writing.set()
        release.wait(5)
        return real_write(lake_dir, table)

    monkeypatch.setattr(lake_writer_module, "write_parquet", slow_write)
    await writer.append(batch("d1", 10))
    flushing = asyncio.create_task(writer.flush())
    await asyncio.to_thread(writing.wait, 5)

    await writer.append(batch("d1", 5, start=10))  # lands while the first flush is writing
    in_flight = await writer.pending("acme", "d1")
    assert in_flight is not None and in_flight.num_rows == 30  # flushing + new rows both visible
    release.set()
    assert await flushing == 20
    assert await writer.flush() == 10

    assert [r["seq"] for r in lake_rows(lake, "d1") if r["metric"] == "temp"] == list(range(15))


async def test_a_failed_flush_keeps_rows_pending_and_durable(
    writer: LakeWriter, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, wal = dirs
    real_write = lake_writer_module.write_parquet

    def disk_full(lake_dir: str, table: pa.Table) -> list[Path]:
        raise OSError(28, "No space left on device")

    await writer.append(batch("d1", 3))
    monkeypatch.setattr(lake_writer_module, "write_parquet", disk_full)
    with pytest.raises(OSError):
        await writer.flush()
    pending = await writer.pending("acme", "d1")
    assert pending is not None and pending.num_rows == 6
    assert sum(t.num_rows for t in read_wal(wal)) == 6  # still in the WAL

    monkeypatch.setattr(lake_writer_module, "write_parquet", real_write)
    await writer.append(batch("d1", 1, start=3))
    assert await writer.flush() == 8
    assert len(lake_rows(lake, "d1")) == 8
    assert (await writer.stats())["wal_bytes"] == 0


async def test_background_loop_flushes_on_interval_and_on_row_threshold(dirs: tuple[Path, Path]) -> None:
    lake, wal = dirs
    by_time = LakeWriter(str(lake), str(wal), flush_interval_s=0.05)
    await by_time.start()
    try:
        await by_time.append(batch("d1", 2))
        await _eventually(lambda: len(lake_rows(lake, "d1")) == 4)
    finally:
        await by_time.stop()

    by_rows = LakeWriter(str(lake), str(wal), flush_interval_s=3600, flush_rows=10)
    await by_rows.start()
    try:
        await by_rows.append(batch("d2", 5))  # 10 rows reach the threshold
        await _eventually(lambda: len(lake_rows(lake, "d2")) == 10)
    finally:
        await by_rows.stop()


async def test_stop_flushes_what_is_buffered(dirs: tuple[Path, Path]) -> None:
    lake, wal = dirs
    w = LakeWriter(str(lake), str(wal), flush_interval_s=3600)
    await w.start()
    await w.append(batch("d1", 2, tenant="beta"))
    await w.stop()

    assert len(lake_rows(lake, "d1", tenant="beta")) == 4
    assert lake_rows(lake, "d1", tenant="acme") == []
    with pytest.raises(RuntimeError):
        await w.append(batch("d1", 1))


async def test_rows_the_lake_cannot_store_are_refused_before_the_wal(
    writer: LakeWriter, dirs: tuple[Path, Path]
) -> None:
    _, wal = dirs
    with pytest.raises(Invalid):
        await writer.append(batch("d1", 1, tenant="../../etc"))
    with pytest.raises(Invalid):
        await writer.append(batch("d1", 1).drop_columns(["ts"]))
    assert list(read_wal(wal)) == []
    assert (await writer.stats())["rows_appended"] == 0


async def _eventually(check: object, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_writer_adopts_wal_directories_no_writer_owns(dirs: tuple[Path, Path]) -> None:
    """Shard 0's writer replays the pre-shard WAL (segments at the root) and that of a shard the node
    no longer runs, then lets them go; a directory still in use is left to its writer."""
    lake, wal = dirs
    await crash_with_rows_in_the_wal(lake, wal)  # the root: one writer per node, before shards had their own
    await crash_with_rows_in_the_wal(lake, wal_dir_of(wal, 2))
    busy = LakeWriter(str(lake), str(wal_dir_of(wal, 3)), flush_interval_s=3600)
    await busy.start()
    await busy.append(batch("d9", 1))
    assert orphan_wal_dirs(wal, 2) == [wal, wal_dir_of(wal, 2), wal_dir_of(wal, 3)]

    w = LakeWriter(str(lake), str(wal_dir_of(wal, 0)), flush_interval_s=3600, orphans_of=(str(wal), 2))
    await w.start()
    assert (await w.stats())["rows_replayed"] == 12
    assert len(lake_rows(lake, "d1")) == 6  # the same 3 messages x 2 metrics in both: read once
    assert orphan_wal_dirs(wal, 2) == [wal_dir_of(wal, 3)]
    assert (await busy.pending("acme", "d9")).num_rows == 2
    await busy.stop()
    await w.stop()
    assert orphan_wal_dirs(wal, 2) == []
