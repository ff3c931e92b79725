"""The telemetry lake: rows, WAL durability, partitioned Parquet and tenant-scoped reads."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pulse.domain.messages import Telemetry
from pulse.errors import Invalid
from pulse.storage.lake import TELEMETRY_SCHEMA, LakeReader, Wal, WalLocked, read_wal, telemetry_table, write_parquet

REPO = Path(__file__).resolve().parents[2]
DAY1 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def msg(device: str, at: datetime, tenant: str = "acme", seq: int | None = None, **metrics: float) -> Telemetry:
    return Telemetry(tenant, device, ms(at), metrics or {"temp": 20.0}, seq)


def rows(*msgs: Telemetry) -> pa.Table:
    return telemetry_table(list(msgs))


# ---- rows ------------------------------------------------------------------------------------
def test_telemetry_table_makes_one_row_per_metric_with_lake_schema() -> None:
    table = rows(msg("d1", DAY1, seq=7, temp=21.5, door=True), msg("d2", DAY1 + timedelta(seconds=1), hum=40))

    assert table.schema == TELEMETRY_SCHEMA
    assert table.to_pylist() == [
        {"tenant_id": "acme", "device_id": "d1", "ts": DAY1, "metric": "temp", "value": 21.5, "seq": 7},
        {"tenant_id": "acme", "device_id": "d1", "ts": DAY1, "metric": "door", "value": 1.0, "seq": 7},
        {
            "tenant_id": "acme", "device_id": "d2", "ts": DAY1 + timedelta(seconds=1),
            "metric": "hum", "value": 40.0, "seq": None,
        },
    ]


def test_telemetry_table_of_no_messages_is_empty() -> None:
    assert telemetry_table([]).num_rows == 0


# ---- WAL -------------------------------------------------------------------------------------
def test_wal_round_trip_across_segments(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    a, b, c = rows(msg("d1", DAY1)), rows(msg("d2", DAY1)), rows(msg("d3", DAY1, seq=3))
    wal.append(a)
    wal.append(b)
    sealed = wal.rotate()
    wal.append(c)

    assert [t.to_pylist() for t in wal.replay()] == [a.to_pylist(), b.to_pylist(), c.to_pylist()]
    wal.drop([sealed])
    assert [t.to_pylist() for t in wal.replay()] == [c.to_pylist()]
    with pytest.raises(ValueError):
        wal.drop([wal.current])
    wal.close()


def test_a_second_writer_cannot_take_over_a_live_wal(tmp_path: Path) -> None:
    owner = Wal(tmp_path)
    owner.append(rows(msg("d1", DAY1)))
    with pytest.raises(WalLocked):
        Wal(tmp_path)
    assert [t["device_id"].to_pylist() for t in read_wal(tmp_path)] == [["d1"]]  # reading is fine
    owner.close()
    Wal(tmp_path).close()  # once released, a successor may start


def test_wal_replay_stops_at_torn_tail_and_goes_on_with_later_segments(tmp_path: Path) -> None:
    first = Wal(tmp_path)
    kept, torn = rows(msg("d1", DAY1)), rows(msg("d2", DAY1))
    first.append(kept)
    first.append(torn)
    first.close()
    segment = first.current
    os.truncate(segment, segment.stat().st_size - 10)  # a crash in the middle of the second write

    after_restart = Wal(tmp_path)  # a new process starts a fresh segment
    later = rows(msg("d3", DAY1))
    after_restart.append(later)

    assert [t.to_pylist() for t in after_restart.replay()] == [kept.to_pylist(), later.to_pylist()]
    after_restart.close()


def test_wal_replay_ignores_a_record_whose_checksum_fails(tmp_path: Path) -> None:
    wal = Wal(tmp_path)
    wal.append(rows(msg("d1", DAY1)))
    size = wal.current.stat().st_size
    wal.append(rows(msg("d2", DAY1)))
    with open(wal.current, "r+b") as f:  # flip one payload byte of the second record
        f.seek(size + 40)
        byte = f.read(1)
        f.seek(size + 40)
        f.write(bytes([byte[0] ^ 0xFF]))

    assert [t["device_id"].to_pylist() for t in wal.replay()] == [["d1"]]
    wal.close()


def test_acknowledged_wal_append_survives_kill_9(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pulse.domain.messages import Telemetry
        from pulse.storage.lake import Wal, telemetry_table
        wal = Wal({str(tmp_path)!r})
        wal.append(telemetry_table([Telemetry("acme", "d1", {ms(DAY1)}, {{"temp": 1.5}}, 1)]))
        print("acked", flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "acked"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    successor = Wal(tmp_path)  # the kernel released the dead writer's directory lock
    replayed = pa.concat_tables(list(successor.replay()))
    successor.close()
    assert replayed.select(["device_id", "metric", "value", "seq"]).to_pylist() == [
        {"device_id": "d1", "metric": "temp", "value": 1.5, "seq": 1}
    ]


# ---- Parquet ---------------------------------------------------------------------------------
def test_write_parquet_partitions_by_tenant_and_utc_date_sorted_by_device_and_time(tmp_path: Path) -> None:
    late = DAY2 - timedelta(milliseconds=1)
    table = rows(
        msg("d2", DAY2), msg("d2", late), msg("d1", late), msg("d1", DAY1), msg("x", DAY1, tenant="beta")
    )

    paths = write_parquet(tmp_path, table)

    rel = sorted(str(p.parent.relative_to(tmp_path)) for p in paths)
    assert rel == [
        "telemetry/tenant_id=acme/date=2026-03-01",
        "telemetry/tenant_id=acme/date=2026-03-02",
        "telemetry/tenant_id=beta/date=2026-03-01",
    ]
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in paths)
    day1 = pq.read_table(tmp_path / "telemetry/tenant_id=acme/date=2026-03-01", partitioning=None)
    assert day1.column_names == ["device_id", "ts", "metric", "value", "seq"]  # tenant/date in the path only
    assert list(zip(day1["device_id"].to_pylist(), day1["ts"].to_pylist())) == [("d1", DAY1), ("d1", late), ("d2", late)]
    stats = pq.ParquetFile(paths[0]).metadata.row_group(0).column(0).statistics
    assert stats is not None and stats.has_min_max


def test_hive_reads_give_back_tenant_and_date(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1), msg("d9", DAY2, tenant="beta")))

    table = pq.read_table(tmp_path / "telemetry", partitioning="hive")

    pairs = sorted(zip(map(str, table["tenant_id"].to_pylist()), map(str, table["date"].to_pylist())))
    assert pairs == [("acme", "2026-03-01"), ("beta", "2026-03-02")]


@pytest.mark.parametrize("tenant", ["../escape", "..", "a/b", "", ".hidden", "tenant_id=x", "a\x00b"])
def test_path_traversal_tenant_ids_are_rejected(tmp_path: Path, tenant: str) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(Invalid):
        write_parquet(lake, rows(msg("d1", DAY1, tenant=tenant)))
    with pytest.raises(Invalid):
        LakeReader(lake).history(tenant, "d1")
    with pytest.raises(Invalid):
        LakeReader(lake).recent(tenant, "d1")
    assert not any(tmp_path.rglob("*.parquet"))


# ---- reads -----------------------------------------------------------------------------------
def test_missing_lake_reads_as_empty(tmp_path: Path) -> None:
    reader = LakeReader(tmp_path / "nowhere")
    assert reader.history("acme", "d1") == []
    assert reader.recent("acme", "d1") == []
    assert reader.metrics("acme", "d1") == []


def test_reads_ignore_duplicate_rows(tmp_path: Path) -> None:
    table = rows(msg("d1", DAY1, seq=1, temp=1.0), msg("d1", DAY1 + timedelta(seconds=1), temp=2.0))
    write_parquet(tmp_path, table)
    write_parquet(tmp_path, table)  # a replay after a crash between Parquet write and WAL drop
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", extra=table)] == [1.0, 2.0]
    assert [r["value"] for r in reader.recent("acme", "d1", extra=table)] == [2.0, 1.0]
    assert reader.metrics("acme", "d1", extra=table) == ["temp"]


def test_unflushed_rows_are_visible_through_extra(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0)))
    pending = rows(msg("d1", DAY1 + timedelta(minutes=1), temp=2.0, hum=50.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", metric="temp", extra=pending)] == [1.0, 2.0]
    assert reader.recent("acme", "d1", limit=1, extra=pending)[0]["ts"] == DAY1 + timedelta(minutes=1)
    assert reader.metrics("acme", "d1", extra=pending) == ["hum", "temp"]
    only_pending = LakeReader(tmp_path / "empty").history("acme", "d1", extra=pending)
    assert [(r["metric"], r["value"]) for r in only_pending] == [("hum", 50.0), ("temp", 2.0)]


def test_reads_never_return_another_tenants_rows(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0), msg("d1", DAY1, tenant="beta", temp=666.0)))
    extra = rows(msg("d1", DAY2, tenant="beta", temp=667.0, secret=1.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", extra=extra)] == [1.0]
    assert [r["value"] for r in reader.recent("acme", "d1", extra=extra)] == [1.0]
    assert reader.metrics("acme", "d1", extra=extra) == ["temp"]
    assert [r["value"] for r in reader.history("beta", "d1", extra=extra)] == [666.0, 1.0, 667.0]


def test_history_filters_by_metric_time_range_and_limit(tmp_path: Path) -> None:
    times = [DAY1 + timedelta(hours=h) for h in range(0, 48, 6)]  # 8 points over two days
    write_parquet(tmp_path, rows(*(msg("d1", t, seq=i, temp=float(i), hum=100.0 + i) for i, t in enumerate(times))))
    reader = LakeReader(tmp_path)

    temps = reader.history("acme", "d1", metric="temp", start=times[2], end=times[6])
    assert [(r["ts"], r["value"]) for r in temps] == [(times[i], float(i)) for i in (2, 3, 4, 5)]  # end exclusive
    assert [r["seq"] for r in reader.history("acme", "d1", metric="temp", limit=3)] == [0, 1, 2]
    assert {r["metric"] for r in reader.history("acme", "d1")} == {"temp", "hum"}
    naive_start = times[6].replace(tzinfo=None)  # naive means UTC
    assert [r["value"] for r in reader.history("acme", "d1", metric="hum", start=naive_start)] == [106.0, 107.0]
    assert reader.history("acme", "d1", limit=0) == []


def test_history_prunes_date_partitions_outside_the_range(tmp_path: Path) -> None:
    write_parquet(tmp_path, rows(msg("d1", DAY1, temp=1.0), msg("d1", DAY2, temp=2.0)))
    # A file a query reading day 1 would choke on: only partition pruning keeps it unread.
    (tmp_path / "telemetry/tenant_id=acme/date=2026-03-01/part-broken.parquet").write_bytes(b"not parquet")
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.history("acme", "d1", start=DAY2)] == [2.0]
    with pytest.raises(duckdb.Error):
        reader.history("acme", "d1", end=DAY2)


def test_recent_is_newest_first_and_looks_past_the_newest_partitions(tmp_path: Path) -> None:
    # d1 has old data only; newer partitions exist for another device.
    old = [DAY1 + timedelta(minutes=m) for m in range(3)]
    write_parquet(tmp_path, rows(*(msg("d1", t, temp=float(i)) for i, t in enumerate(old))))
    write_parquet(tmp_path, rows(*(msg("other", DAY1 + timedelta(days=d)) for d in range(1, 10))))
    # Unflushed rows older than the newest partition must not hide newer lake rows.
    late = rows(msg("other", DAY1 + timedelta(days=8, hours=1)), msg("other", DAY1, temp=-1.0))
    reader = LakeReader(tmp_path)

    assert [r["value"] for r in reader.recent("acme", "d1", limit=2)] == [2.0, 1.0]
    newest = reader.recent("acme", "other", limit=3, extra=late)
    assert [r["ts"] for r in newest] == [
        DAY1 + timedelta(days=9),
        DAY1 + timedelta(days=8, hours=1),
        DAY1 + timedelta(days=8),
    ]
    assert len(reader.recent("acme", "other", limit=100, extra=late)) == 11
