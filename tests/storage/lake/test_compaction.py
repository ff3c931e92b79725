"""Compaction: a closed tenant-day's parts become one sorted file without duplicates, readers see
the same rows throughout, ingest goes on, and kill -9 at any step loses or duplicates nothing."""
from __future__ import annotations

import asyncio
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pulse.pipelines.lake_lifecycle as lake_lifecycle
from pulse.actors.lake_writer import LakeWriter
from pulse.pipelines.analytics import rollup
from pulse.pipelines.lake_lifecycle import compact_closed_days
from pulse.pipelines.telemetry import LakeReader
from pulse.storage.lake.compaction import lifecycle_lock
from pulse.storage.lake.parquet import ROW_GROUP_ROWS, aggregate_path, hourly_aggregate, part_files, partition_dir
from tests.storage.lake.crash import run_killed_at
from tests.storage.lake.helpers import DAY1, DAY2, msg, rows, same_buckets, stored_rows, write_parts

DEVICES = [f"d{i}" for i in range(5)] + ["quiet"]
OPEN_DAY = DAY2.date()  # compaction runs for days before this one


def day1_batches() -> list[pa.Table]:
    """Three flushes of five devices, one redelivery of a third of them, and two identical
    messages without seq in one flush: duplicates within and across parts."""
    msgs = [msg(f"d{d}", DAY1 + timedelta(minutes=i), seq=i, temp=float(i), hum=float(d))
            for i in range(60) for d in range(5)]
    quiet = msg("quiet", DAY1 + timedelta(hours=3))
    return [rows(*msgs[0:100]), rows(*msgs[100:200], quiet, quiet), rows(*msgs[200:300]), rows(*msgs[50:150])]


def histories(lake: Path) -> dict[str, list[dict]]:
    reader = LakeReader(lake)
    return {d: reader.history("acme", d, limit=10_000) for d in DEVICES}


async def written_lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    await write_parts(lake, *day1_batches(), rows(msg("d1", DAY2)), rows(msg("d1", DAY2 + timedelta(minutes=1))))
    return lake


async def test_a_closed_day_becomes_one_sorted_file_without_duplicates(tmp_path: Path) -> None:
    lake = await written_lake(tmp_path)
    original = stored_rows(lake, "acme", DAY1.date())
    assert max(original.values()) == 2 and len(part_files(lake, "acme", [DAY1.date()])) == 4
    before = histories(lake)

    assert compact_closed_days(lake, OPEN_DAY, grace_s=0) == 1

    (compacted,) = part_files(lake, "acme", [DAY1.date()])
    assert stored_rows(lake, "acme", DAY1.date()) == Counter(set(original))  # all rows, once each
    table = pq.read_table(compacted)
    keys = list(zip(table["device_id"].to_pylist(), table["ts"].to_pylist()))
    assert keys == sorted(keys)
    assert histories(lake) == before
    assert len(part_files(lake, "acme", [OPEN_DAY])) == 2  # the open day is not touched

    assert compact_closed_days(lake, OPEN_DAY, grace_s=0) == 0  # nothing left to do...
    assert_settled(lake)  # ...but the replaced parts and the journal are gone


def assert_settled(lake: Path) -> None:
    """DAY1's directory holds its one compacted part and that part's hourly aggregate, nothing else."""
    (part,) = part_files(lake, "acme", [DAY1.date()])
    names = sorted(p.name for p in partition_dir(lake, "acme", DAY1.date()).iterdir())
    assert names == sorted([Path(part).name, aggregate_path(Path(part)).name])
    assert hourly_aggregate([part]) == str(aggregate_path(Path(part)))


async def test_a_compacted_day_has_an_hourly_aggregate_used_only_while_it_is_the_days_one_part(tmp_path: Path) -> None:
    lake = await written_lake(tmp_path)
    compact_closed_days(lake, OPEN_DAY, grace_s=3600)
    (first,) = part_files(lake, "acme", [DAY1.date()])
    hours = pq.read_table(hourly_aggregate([first])).to_pylist()
    compacted = pq.read_table(first).to_pylist()
    expected = Counter((r["device_id"], r["metric"], r["ts"].replace(minute=0)) for r in compacted)
    assert Counter({(h["device_id"], h["metric"], h["hour"]): h["count"] for h in hours}) == expected
    d0_temp = [h for h in hours if h["device_id"] == "d0" and h["metric"] == "temp"]
    assert d0_temp == [{"device_id": "d0", "metric": "temp", "hour": DAY1, "count": 60,
                        "sum": float(sum(range(60))), "min": 0.0, "max": 59.0}]

    await write_parts(lake, rows(msg("late", DAY1 + timedelta(hours=23))))
    assert hourly_aggregate(part_files(lake, "acme", [DAY1.date()])) is None  # it misses the late row

    assert compact_closed_days(lake, OPEN_DAY, grace_s=0) == 1
    assert compact_closed_days(lake, OPEN_DAY, grace_s=3600) == 0
    assert aggregate_path(Path(first)).exists()  # a query that chose it may finish reading it
    compact_closed_days(lake, OPEN_DAY, grace_s=0)
    assert_settled(lake)
    assert not aggregate_path(Path(first)).exists()  # gone with its part


async def test_replaced_parts_stay_hidden_on_disk_for_the_grace_period(tmp_path: Path) -> None:
    lake = await written_lake(tmp_path)
    before = histories(lake)
    assert compact_closed_days(lake, OPEN_DAY, grace_s=3600) == 1
    assert compact_closed_days(lake, OPEN_DAY, grace_s=3600) == 0
    directory = partition_dir(lake, "acme", DAY1.date())
    assert len(list(directory.glob("part-*.parquet"))) == 5  # queries that listed them may finish
    assert len(part_files(lake, "acme", [DAY1.date()])) == 1 and histories(lake) == before


async def test_a_compacted_day_lets_a_one_device_query_skip_other_row_groups(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    msgs = [msg(f"dev{d:03}", DAY1 + timedelta(seconds=30 * i), seq=i, temp=float(i), hum=1.0)
            for i in range(100) for d in range(200)]  # 40 000 rows; every part holds every device
    await write_parts(lake, *(rows(*msgs[k:k + 5000]) for k in range(0, len(msgs), 5000)))
    assert _groups_holding(part_files(lake, "acme", [DAY1.date()]), "dev042") == 4

    compact_closed_days(lake, OPEN_DAY, grace_s=0)

    (compacted,) = part_files(lake, "acme", [DAY1.date()])
    meta = pq.ParquetFile(compacted).metadata
    assert meta.num_row_groups == 3
    assert [meta.row_group(i).num_rows for i in range(2)] == [ROW_GROUP_ROWS] * 2
    assert meta.row_group(0).sorting_columns == (pq.SortingColumn(0), pq.SortingColumn(1))
    assert _groups_holding([compacted], "dev042") == 1


def _groups_holding(files: list[str], device: str) -> int:
    """Row groups whose device_id statistics do not rule the device out (what a reader must read)."""
    groups = [pq.ParquetFile(f).metadata.row_group(i) for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
    stats = [g.column(0).statistics for g in groups]
    return sum(s.min <= device <= s.max for s in stats)


async def test_parts_the_writer_adds_during_a_compaction_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = await written_lake(tmp_path)
    original = stored_rows(lake, "acme", DAY1.date())
    planned, go_on = threading.Event(), threading.Event()
    write_compacted = lake_lifecycle.write_compacted

    def write_once_a_late_part_landed(plan, batches):  # the compaction's inputs are already chosen
        planned.set()
        go_on.wait(10)
        return write_compacted(plan, batches)

    monkeypatch.setattr(lake_lifecycle, "write_compacted", write_once_a_late_part_landed)
    writer = LakeWriter(str(lake), str(tmp_path / "wal"), flush_interval_s=3600)
    await writer.start()
    compaction = asyncio.create_task(asyncio.to_thread(compact_closed_days, lake, OPEN_DAY, 0))
    await asyncio.to_thread(planned.wait, 10)
    late = rows(msg("late", DAY1 + timedelta(hours=23)))
    await writer.append(late)  # ingest is not blocked by the compaction
    await writer.flush()
    go_on.set()
    assert await compaction == 1
    await writer.stop()

    files = part_files(lake, "acme", [DAY1.date()])
    assert len(files) == 2  # the compacted file and the late part
    assert set(stored_rows(lake, "acme", DAY1.date())) == set(original) | {("late", DAY1 + timedelta(hours=23), "temp", 20.0, None)}


def test_a_second_lifecycle_pass_leaves_the_lake_to_the_first(tmp_path: Path) -> None:
    with lifecycle_lock(tmp_path) as held:
        assert held
        assert compact_closed_days(tmp_path, OPEN_DAY, grace_s=0) == 0
        with lifecycle_lock(tmp_path) as second:
            assert not second


COMPACT_TWICE = f"""
for _ in range(2):  # compact, then settle (the replaced parts go)
    compact_closed_days(lake, date.fromisoformat({OPEN_DAY.isoformat()!r}), grace_s=0)
"""


def kill_at_every_step(pristine: Path, tmp_path: Path, crashed: Callable[[Path, int], None],
                       recovered: Callable[[Path], None]) -> int:
    """Copies of `pristine` whose compaction passes are killed at their 1st, 2nd, ... file event until
    one run finishes: `crashed` checks each right after the kill, `recovered` after the restarted
    scheduler's next two passes. Returns how many runs there were."""
    kill_at, killed = 0, True
    while killed:
        kill_at += 1
        lake = tmp_path / f"run-{kill_at}"
        shutil.copytree(pristine, lake)
        killed = run_killed_at(kill_at, lake, "from pulse.pipelines.lake_lifecycle import compact_closed_days",
                               COMPACT_TWICE)
        crashed(lake, kill_at)
        compact_closed_days(lake, OPEN_DAY, grace_s=0)
        compact_closed_days(lake, OPEN_DAY, grace_s=0)
        assert_settled(lake)
        recovered(lake)
        shutil.rmtree(lake)
    return kill_at


@pytest.mark.slow
async def test_kill_9_at_any_step_of_a_compaction_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    pristine = await written_lake(tmp_path)
    original = stored_rows(pristine, "acme", DAY1.date())
    before = histories(pristine)

    def crashed(lake: Path, kill_at: int) -> None:
        rows_now = stored_rows(lake, "acme", DAY1.date())
        assert set(rows_now) == set(original), f"rows lost at event {kill_at}"
        assert rows_now in (original, Counter(set(original))), f"rows duplicated at event {kill_at}"
        assert histories(lake) == before

    def recovered(lake: Path) -> None:
        assert stored_rows(lake, "acme", DAY1.date()) == Counter(set(original))

    # the child really was stopped between every pair of steps
    assert kill_at_every_step(pristine, tmp_path, crashed, recovered) > 12


def day1_hourly(lake: Path) -> list[tuple]:
    labels = dict.fromkeys([*DEVICES, "late"], "all")
    return rollup(str(lake), "acme", "temp", labels, DAY1, DAY2, timedelta(hours=1),
                  ("avg", "min", "max", "sum", "count"))


@pytest.mark.slow
async def test_kill_9_at_any_step_of_a_recompaction_never_lets_a_stale_aggregate_answer(tmp_path: Path) -> None:
    pristine = await written_lake(tmp_path)
    compact_closed_days(pristine, OPEN_DAY, grace_s=0)  # DAY1 has an aggregate, then late rows come
    late = DAY1 + timedelta(hours=23)
    await write_parts(pristine, rows(msg("late", late), msg("d0", late, temp=99.0)))
    assert hourly_aggregate(part_files(pristine, "acme", [DAY1.date()])) is None
    expected = day1_hourly(pristine)  # from raw rows, with the late ones
    assert expected[-1][2][-1] == 2
    original = stored_rows(pristine, "acme", DAY1.date())

    def crashed(lake: Path, kill_at: int) -> None:
        assert set(stored_rows(lake, "acme", DAY1.date())) == set(original), f"rows lost at event {kill_at}"
        assert same_buckets(day1_hourly(lake), expected), f"a stale aggregate answered at event {kill_at}"

    def recovered(lake: Path) -> None:
        assert same_buckets(day1_hourly(lake), expected)

    # stopped between every pair of steps, the aggregate's and the settling of the old one too
    assert kill_at_every_step(pristine, tmp_path, crashed, recovered) > 16


async def test_kill_9_while_the_compacted_file_is_written_loses_nothing(tmp_path: Path) -> None:
    lake = await written_lake(tmp_path)
    original = stored_rows(lake, "acme", DAY1.date())
    die_after_the_first_batch = """
    real_write = lake_lifecycle.write_compacted
    def first_batch_then_die(batches):
        yield next(iter(batches))
        os.kill(os.getpid(), signal.SIGKILL)
    lake_lifecycle.write_compacted = lambda plan, batches: real_write(plan, first_batch_then_die(batches))
    lake_lifecycle.compact_closed_days(lake, date.fromisoformat(%r), grace_s=0)
    """ % OPEN_DAY.isoformat()
    assert run_killed_at(0, lake, "import pulse.pipelines.lake_lifecycle as lake_lifecycle", die_after_the_first_batch)
    assert list(partition_dir(lake, "acme", DAY1.date()).glob(".compact-*.tmp"))  # it died mid-file
    assert stored_rows(lake, "acme", DAY1.date()) == original

    compact_closed_days(lake, OPEN_DAY, grace_s=0)
    compact_closed_days(lake, OPEN_DAY, grace_s=0)
    assert stored_rows(lake, "acme", DAY1.date()) == Counter(set(original))
    assert_settled(lake)
