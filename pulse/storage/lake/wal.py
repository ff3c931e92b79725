"""The lake's write-ahead log: telemetry is durable once appended here, before it is Parquet.

Segments of framed records (magic, length, CRC32, Arrow IPC payload), one fsync per append. A
torn or corrupt record ends its segment on replay; later segments were started afresh and count.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from pulse.storage.lake.durable import fsync, try_lock
from pulse.storage.lake.rows import decode_rows, encode_rows

log = logging.getLogger(__name__)

_MAGIC = b"PWL1"
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32(payload)
_SEGMENT_RE = re.compile(r"^wal-(\d{16})\.log$")


class Wal:
    """Append-only segments of framed Arrow IPC records; one fsync per `append`.

    A new `Wal` always starts a fresh segment, never appends to an old one: an old segment may
    end in a torn record, and anything written after it would be unreachable on replay."""

    def __init__(self, wal_dir: str | os.PathLike[str], compression: str | None = "lz4") -> None:
        # lz4 by default: 4x fewer bytes to fsync (15 vs 57 B/row) and measured faster end to end
        # than uncompressed IPC, compression included (benchmarks/bench_lake.py).
        self.dir = Path(wal_dir)
        self.compression = compression
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock_dir(self.dir)
        self._lock = threading.Lock()  # appends, rotations and drops come from worker threads
        existing = self.segments()
        self._next = (_segment_number(existing[-1]) + 1) if existing else 1
        self._sizes = {p: p.stat().st_size for p in existing}
        self._fd = -1
        self.current = self._open_segment()

    def segments(self) -> list[Path]:
        return wal_segments(self.dir)

    @property
    def size_bytes(self) -> int:
        """Bytes of WAL on disk: the data not yet known to be in the lake."""
        return sum(self._sizes.values())

    def append(self, table: pa.Table) -> None:
        self.append_encoded([encode_rows(table, self.compression)])

    def append_encoded(self, payloads: list[bytes]) -> None:
        """Records already encoded by `rows.encode_rows` (one each), with one fsync for all."""
        record = b"".join(_HEADER.pack(_MAGIC, len(p), zlib.crc32(p)) + p for p in payloads)
        with self._lock:
            _write_all(self._fd, record)
            os.fdatasync(self._fd)  # the caller acknowledges on return: must be on disk now
            self._sizes[self.current] += len(record)

    def rotate(self) -> Path:
        """Seal the current segment (everything appended so far) and start a new one."""
        with self._lock:
            sealed = self.current
            os.close(self._fd)
            self.current = self._open_segment()
            return sealed

    def replay(self, segments: Iterable[Path] | None = None) -> Iterator[pa.Table]:
        """Every intact record, oldest first. A segment is read up to its first bad record (the
        tail a crash tore); later segments were started afresh after that crash, so go on."""
        yield from _replay(self.segments() if segments is None else segments)

    def drop(self, segments: Iterable[Path]) -> None:
        with self._lock:
            for path in segments:
                if path == self.current:
                    raise ValueError("cannot drop the open WAL segment; rotate first")
                path.unlink(missing_ok=True)
                self._sizes.pop(path, None)
            fsync(self.dir)

    def close(self) -> None:
        """Close the segment and release the directory (what process death does too)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def _open_segment(self) -> Path:
        while True:
            path = self.dir / f"wal-{self._next:016d}.log"
            self._next += 1
            try:
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
                break
            except FileExistsError:  # never reuse a name: it may hold unreplayed records
                continue
        fsync(self.dir)  # the directory entry must survive too, or the segment vanishes
        self._sizes[path] = 0
        return path


class WalLocked(RuntimeError):
    """Another live `Wal` owns the directory: two writers would drop each other's segments."""


def read_wal(wal_dir: str | os.PathLike[str]) -> Iterator[pa.Table]:
    """Every intact record of a WAL directory, without taking it over (tools, tests)."""
    return _replay(wal_segments(Path(wal_dir)))


def wal_segments(wal_dir: Path) -> list[Path]:
    try:
        names = sorted(e.name for e in os.scandir(wal_dir) if _SEGMENT_RE.match(e.name))
    except FileNotFoundError:
        return []
    return [wal_dir / n for n in names]


def _replay(segments: Iterable[Path]) -> Iterator[pa.Table]:
    for path in segments:
        yield from _read_segment(path)


def _lock_dir(directory: Path) -> int:
    """One live writer per directory: the kernel releases the lock when it dies (even kill -9)."""
    fd = try_lock(directory / "LOCK")
    if fd is None:
        raise WalLocked(f"WAL directory {directory} is in use by another writer")
    return fd


def _segment_number(path: Path) -> int:
    match = _SEGMENT_RE.match(path.name)
    assert match is not None
    return int(match.group(1))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_segment(path: Path) -> Iterator[pa.Table]:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        offset = 0
        while header := f.read(_HEADER.size):
            table = _decode_record(header, f)
            if table is None:
                log.warning("WAL %s: torn or corrupt record at byte %d; ignoring the rest", path, offset)
                return
            offset = f.tell()
            yield table


def _decode_record(header: bytes, f: Any) -> pa.Table | None:
    if len(header) < _HEADER.size:
        return None
    magic, length, crc = _HEADER.unpack(header)
    if magic != _MAGIC:
        return None
    payload = f.read(length)
    if len(payload) < length or zlib.crc32(payload) != crc:
        return None
    try:
        return decode_rows(payload)
    except pa.ArrowInvalid:
        return None
