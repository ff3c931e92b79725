"""What makes a write survive a crash: the WAL and the Parquet writer both fsync through here."""
from __future__ import annotations

import os
from pathlib import Path


def fsync(path: Path) -> None:
    """fsync a file, or a directory (so a new or renamed entry in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
