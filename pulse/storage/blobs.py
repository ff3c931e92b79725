"""Blob store: named files Pulse produces or receives and serves later (export files, firmware images).

One seam, so the files can move to an S3-compatible store without touching their users. A key
is a relative path of safe segments (`exports/<tenant>/<id>.csv`); a blob becomes visible only
when its writer closes cleanly, so a reader never sees half a file and a crashed write leaves
nothing a reader could open (its remains are removed by `delete`).
"""
from __future__ import annotations

import glob
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

from pulse.config.settings import Settings

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_UNFINISHED = ".partial"


class BlobStore(Protocol):
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def open(self, key: str) -> BinaryIO: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool: ...


class LocalBlobStore:
    """Blobs as files under one directory (the data dir's `blobs/`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to write the blob into; it replaces the blob atomically when the block ends
        without an exception, and is discarded when it raises."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # its own name per writer: a stale writer of the same key (a worker that lost its job) cannot
        # remove or replace the file another one is writing
        unfinished = path.with_name(f"{path.name}.{secrets.token_hex(6)}{_UNFINISHED}")
        try:
            with open(unfinished, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(unfinished, path)
        finally:
            unfinished.unlink(missing_ok=True)

    def open(self, key: str) -> BinaryIO:
        """The blob for reading; FileNotFoundError when there is none."""
        return open(self._path(key), "rb")

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        """Remove the blob (and any unfinished write of it); False when there was no blob."""
        path = self._path(key)
        for unfinished in path.parent.glob(f"{glob.escape(path.name)}.*{_UNFINISHED}"):
            unfinished.unlink(missing_ok=True)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _path(self, key: str) -> Path:
        """The file of `key`; a key that could leave the root (absolute, `..`, odd characters) is refused:
        every segment must start with a letter or digit."""
        parts = key.split("/")
        if not all(_SEGMENT.match(p) and not p.endswith(_UNFINISHED) for p in parts):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)


def blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name: a directory in the data dir (an object store later)."""
    return LocalBlobStore(settings.data_dir / "blobs")
