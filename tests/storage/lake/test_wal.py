"""The write-ahead log: round trips, one writer per directory, torn tails, checksums, kill -9."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

from pulse.storage.lake.wal import Wal, WalLocked, read_wal
from tests.storage.lake.helpers import DAY1, ms, msg, rows

REPO = Path(__file__).resolve().parents[3]


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
        from pulse.storage.lake.rows import telemetry_table
        from pulse.storage.lake.wal import Wal
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
