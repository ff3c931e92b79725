"""What makes lake files survive a crash: fsync for the WAL, Parquet and compaction writers, and
the advisory locks that keep one owner per WAL directory or lifecycle pass."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


def fsync(path: Path) -> None:
    """fsync a file, or a directory (so a new or renamed entry in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def try_lock(path: Path) -> int | None:
    """flock `path` exclusively without waiting: the open fd, or None when another holder has it.

    The kernel releases the lock when the holder's process dies (even kill -9), so a crash never
    leaves a stale lock behind; close the fd to release it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
